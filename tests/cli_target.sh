#!/bin/bash
# End to end: `train --target NAME --config SETTINGS` runs the recipe
# NAME.yml with the settings file's values in place of its `$config.`
# references (tests/data/target/hello.yml), and --set SECTION.KEY=VALUE.
. "${top_srcdir:-.}/tests/lib.sh"

export TRAIN_RECIPE_PATH="$top_srcdir/tests/data/target"
B="${TRAIN_BASIC_PLUGINS:-$top_builddir/plugins/basic/.libs}"
mkdir -p "$WORK/proj/data"
cp "$top_srcdir/examples/hello/intents.tsv" "$WORK/proj/data/"
S="$WORK/proj/settings.yml"
cat >"$S" <<'YML'
model: {alpha: 0.5, lowercase: true, n_heads: 8}
training: {num_epochs: 1}
data: {train_file: data/intents.tsv}
YML
# Run from elsewhere: data/intents.tsv is relative to the settings file.
cd "$WORK"
T=("$TRAIN" --target hello --plugin-path "$B" --cache-dir "$WORK/cache" --out "$WORK/models")

status_is 0 "train a target with its settings" "${T[@]}" --config "$S" --report "$WORK/r1.json"
check "the ignored key is noted with its reason" grep -q "model.n_heads.*no attention heads" "$WORK/err"
check "three nodes trained" test "$(count_status "$WORK/r1.json" trained)" -eq 3
status_is 0 "nothing changed: nothing would train" "${T[@]}" --config "$S" -q --dry-run
status_is 0 "predict with the target's model" "$TRAIN" predict "$WORK/models/"*.tar.gz \
	--plugin-path "$B" "hello there"

# One setting of the classifier changed: only the classifier retrains.
sed -i 's/alpha: 0.5/alpha: 0.25/' "$S"
status_is 0 "alpha changed" "${T[@]}" --config "$S" -q --report "$WORK/r2.json"
check "only the classifier trained" test "$(count_status "$WORK/r2.json" trained)" -eq 1

# A relative --config: its paths are still the settings file's.
status_is 0 "relative --config path" "${T[@]}" --config proj/settings.yml -q --dry-run
cat >"$WORK/proj/missing.yml" <<'YML'
data: {train_file: data/nothing.tsv}
YML
status_is 65 "a settings path that names nothing" "${T[@]}" --config proj/missing.yml -q
check "the error is at the settings file's line" grep -q "proj/missing.yml:1:20: .*nothing.tsv" "$WORK/err"

# Without settings, every reference falls back to the component's default
# (train_file has none: a required key).
status_is 65 "no settings: the required path is missing" "${T[@]}" -q
check "names the missing key" grep -q "missing required key 'path'" "$WORK/err"

cat >"$WORK/bad1.yml" <<'YML'
model: {alpha: 0.5}
training: {num_epochs: 1, learning_rate: 0.1}
data: {train_file: proj/data/intents.tsv}
YML
status_is 65 "an unknown settings key" "${T[@]}" --config "$WORK/bad1.yml" -q
check "unknown key: file:line:col and the known keys" \
	grep -q "bad1.yml:2:27: unknown key 'training.learning_rate' for target hello; known keys: data.train_file, model.alpha, model.lowercase, training.num_epochs" "$WORK/err"

cat >"$WORK/bad2.yml" <<'YML'
model:
  alpha: lots
data: {train_file: proj/data/intents.tsv}
YML
status_is 65 "a setting of the wrong type" "${T[@]}" --config "$WORK/bad2.yml" -q
check "wrong type: at the settings file's line" grep -q "bad2.yml:2:10: .*alpha" "$WORK/err"

printf 'model: [1, 2]\n' >"$WORK/bad3.yml"
status_is 65 "a section that is not a map" "${T[@]}" --config "$WORK/bad3.yml" -q
printf '[1, 2]\n' >"$WORK/bad4.yml"
status_is 65 "settings that are not a map" "${T[@]}" --config "$WORK/bad4.yml" -q
printf 'model: {alpha: [1\n' >"$WORK/bad5.yml"
status_is 65 "settings that are not YAML" "${T[@]}" --config "$WORK/bad5.yml" -q
check "YAML error names the file" grep -q "bad5.yml:" "$WORK/err"
status_is 65 "settings file missing" "${T[@]}" --config "$WORK/nope.yml" -q

# --set SECTION.KEY=VALUE: one settings key from the command line, over the
# file's or without a file; the fingerprints are the file's for the same
# value (the classifier's alpha is 0.25 in the file by now).
fps() { grep -o '"fingerprint": "[0-9a-f]*"' "$1" | sort; }
status_is 0 "--set to the file's value: nothing would train" "${T[@]}" --config "$S" -q --dry-run \
	--set model.alpha=0.25
status_is 0 "--set a new alpha" "${T[@]}" --config "$S" -q --set model.alpha=0.125 --report "$WORK/s1.json"
check "only the classifier trained" test "$(count_status "$WORK/s1.json" trained)" -eq 1
sed -i 's/alpha: 0.25/alpha: 0.125/' "$S"
status_is 0 "the same alpha in the file" "${T[@]}" --config "$S" -q --report "$WORK/s2.json"
check "nothing trained" test "$(count_status "$WORK/s2.json" trained)" -eq 0
check "the same fingerprints from the file as from --set" test "$(fps "$WORK/s1.json")" = "$(fps "$WORK/s2.json")"
status_is 0 "every key by --set, no file (a path from the working folder)" "${T[@]}" -q \
	--report "$WORK/s3.json" --set model.alpha=0.125 --set model.lowercase=true \
	--set training.num_epochs=1 --set data.train_file=proj/data/intents.tsv
check "nothing trained" test "$(count_status "$WORK/s3.json" trained)" -eq 0
check "the file's fingerprints" test "$(fps "$WORK/s1.json")" = "$(fps "$WORK/s3.json")"
status_is 1 "the last --set wins" "${T[@]}" --config "$S" -q --dry-run --set model.alpha=0.125 \
	--set model.alpha=0.75
status_is 65 "--set an unknown key" "${T[@]}" --config "$S" -q --set model.alfa=1
check "names the flag and the known keys" grep -q "^train: --set model.alfa=1: unknown key 'model.alfa' for target hello; known keys: data.train_file, model.alpha" "$WORK/err"
status_is 65 "--set an unknown section, no file" "${T[@]}" -q --set modle.alpha=1
check "names the flag" grep -q "^train: --set modle.alpha=1: unknown key 'modle'" "$WORK/err"
status_is 65 "--set a value of the wrong type" "${T[@]}" --config "$S" -q --set model.alpha=lots
check "names the flag and the key" grep -q "^train: --set model.alpha=lots: 'alpha' must be a number" "$WORK/err"
status_is 65 "--set a list" "${T[@]}" --config "$S" -q --set "model.alpha=[1, 2]"
check "wants a scalar" grep -q "is a list; give one scalar" "$WORK/err"
status_is 65 "--set text that is not YAML" "${T[@]}" --config "$S" -q --set "model.alpha=[1"
check "says so at the flag" grep -q "^train: --set model.alpha=\[1: the value '\[1' is not a YAML scalar" "$WORK/err"
status_is 65 "--set below a value" "${T[@]}" --config "$S" -q --set model.alpha.x=1
check "says where the value is" grep -q "'model.alpha' is not a section (.*settings.yml:1 sets it to a value)" "$WORK/err"
status_is 65 "--set without a section" "${T[@]}" -q --set alpha=1
check "asks for SECTION.KEY" grep -q "'alpha' is not a settings key (write SECTION.KEY=VALUE" "$WORK/err"
status_is 64 "--set without =" "${T[@]}" -q --set model.alpha
status_is 64 "--set without --target" "$TRAIN" --plugin-path "$B" --set model.alpha=1
status_is 65 "--num-rl-steps on a target without it" "${T[@]}" --config "$S" -q --num-rl-steps 3
check "names the flag" grep -q "^train: --num-rl-steps 3: unknown key 'training.num_rl_steps' for target hello" "$WORK/err"
status_is 64 "--num-rl-steps not a count" "${T[@]}" --config "$S" -q --num-rl-steps -2
check "says so" grep -q "num-rl-steps: '-2' is not a count" "$WORK/err"

status_is 64 "an unknown target" "$TRAIN" --target nosuch --plugin-path "$B"
check "lists the targets found" grep -q "targets found:.* hello" "$WORK/err"
status_is 64 "a target name with a slash" "$TRAIN" --target ../hello --plugin-path "$B"
status_is 64 "--target and --recipe together" "${T[@]}" --recipe x.yml
finish
