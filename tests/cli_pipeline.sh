#!/bin/bash
# End to end (issue 9): `train --target full-pipeline` on tiny settings
# (tests/data/pipeline/tiny.yml, about a second a stage): the data checks,
# Mamba, BERT, the RAG index and PPO, exported with a manifest whose
# checksums sha256sum confirms; a rerun trains nothing; a run killed with
# -9 in stage 3 (transformer) and run again trains only stages 3 onward
# (from --report); --stages and --skip-data-prep; a bad data line stops the
# run in the data stage; --device cuda, an unknown stage and an unknown
# settings section are clear errors.
. "${top_srcdir:-.}/tests/lib.sh"

L=$top_builddir/plugins
P="$L/pipeline/.libs:$L/mamba/.libs:$L/bert/.libs:$L/rag/.libs:$L/envs/.libs:$L/ppo/.libs"
export TRAIN_RECIPE_PATH="$top_srcdir/recipes"
S="$top_srcdir/tests/data/pipeline/tiny.yml"
T=("$TRAIN" --target full-pipeline --plugin-path "$P" --threads 1)

# stage_result REPORT STAGE: the stage's "result" in a pipeline report
stage_result() {
	grep -A1 "\"stage\": \"$2\",\$" "$1" | sed -n 's/.*"result": "\([^"]*\)".*/\1/p'
}

# verify_manifest DIR: every model's size and SHA-256 as the manifest says
verify_manifest() {
	local d=$1 n=0 path sum
	while read -r path sum; do
		[ "$(sha256sum "$d/$path" | cut -d' ' -f1)" = "$sum" ] || return 1
		n=$((n + 1))
	done < <(grep -o '"path": "[^"]*"\|"sha256": "[^"]*"' "$d/manifest.json" |
		sed 's/.*: "\(.*\)"/\1/' | paste - -)
	[ "$n" -eq "${2:-4}" ]
}

# The whole pipeline.
status_is 0 "the full pipeline" "${T[@]}" --config "$S" --cache-dir "$WORK/c1" \
	--output-dir "$WORK/models" --report "$WORK/r1.json" --progress "$WORK/p1.jsonl" --device cpu
for m in mamba transformer rag rl; do
	check "$m exported" test -s "$WORK/models/$m.tar.gz"
done
check "the data stage exports no model" test ! -e "$WORK/models/data.tar.gz"
check "the manifest's SHA-256 sums are the files'" verify_manifest "$WORK/models"
check "the manifest names libtrain's version" grep -q '"libtrain_version": "' "$WORK/models/manifest.json"
check "Mamba's metrics in the manifest" grep -q '"best.loss": ' "$WORK/models/manifest.json"
check "BERT's metrics in the manifest" grep -q '"val_accuracy": ' "$WORK/models/manifest.json"
check "PPO's metrics in the manifest" grep -q '"mean_return_100": ' "$WORK/models/manifest.json"
check "the data checks' counts in the manifest" grep -q '"records": 24' "$WORK/models/manifest.json"
check "no temporary file left" test -z "$(ls -A "$WORK/models" | grep -v '^[a-z]*\.tar\.gz$\|^manifest\.json$')"
check "26 nodes trained" test "$(count_status "$WORK/r1.json" trained)" -eq 26
for s in data mamba transformer rag rl; do
	check "stage $s trained" test "$(stage_result "$WORK/r1.json" $s)" = trained
done
check "rlhf (optional) not run without its section" test "$(stage_result "$WORK/r1.json" rlhf)" = "not selected"
check "the progress stream names stage 3" \
	grep -q '"event": "stage", "stage": "transformer", "index": 3, "stages": 5' "$WORK/p1.jsonl"
status_is 0 "the RAG model answers" "$TRAIN" query "$WORK/models/rag.tar.gz" --plugin-path "$P" \
	"Which emperor completed the Colosseum?" -k 1
check "with the right document" grep -q '"id": "rome"' "$WORK/out"
status_is 0 "the policy plays" "$TRAIN" test rl "$WORK/models/rl.tar.gz" --episodes 2 --plugin-path "$P"

status_is 0 "a rerun" "${T[@]}" --config "$S" --cache-dir "$WORK/c1" --output-dir "$WORK/models" \
	--report "$WORK/r2.json"
check "trains nothing" test "$(count_status "$WORK/r2.json" trained)" -eq 0
check "the same models" verify_manifest "$WORK/models"

# --set in a pipeline: STAGE.SECTION.KEY; a stage's key changed retrains
# that stage's node only; --num-rl-steps is the rlhf stage's key (that
# stage's plugins are not loaded here: it fails there).
status_is 0 "--set the file's value: nothing would train" "${T[@]}" --config "$S" \
	--cache-dir "$WORK/c1" --output-dir "$WORK/models" --dry-run -q --set rl.training.total_timesteps=4096
status_is 1 "--set a new total_timesteps" "${T[@]}" --config "$S" --cache-dir "$WORK/c1" \
	--output-dir "$WORK/models" --dry-run \
	--set rl.training.total_timesteps=2048
check "only rl's policy would train" test "$(grep '^trained' "$WORK/out" | awk '{print $2}')" = rl/policy
status_is 65 "--set an unknown key of a stage" "${T[@]}" --config "$S" --cache-dir "$WORK/c1" \
	--dry-run -q --set rl.training.nope=1
check "names the flag and the stage" grep -q "^train: --set rl.training.nope=1: stage 'rl': unknown key 'training.nope'" "$WORK/err"
status_is 65 "--set an unknown stage section" "${T[@]}" --config "$S" --cache-dir "$WORK/c1" \
	--dry-run -q --set rll.training.x=1
check "names the flag" grep -q "^train: --set rll.training.x=1: unknown section 'rll'" "$WORK/err"
status_is 69 "--num-rl-steps selects the rlhf stage" "${T[@]}" --config "$S" --cache-dir "$WORK/c1" \
	--dry-run --num-rl-steps 2
check "stage 6 is rlhf" grep -q "stage 6/6: rlhf" "$WORK/err"

# --stages: what they need comes along (from the cache); the manifest has
# the models of this run.
status_is 0 "--stages transformer" "${T[@]}" --config "$S" --cache-dir "$WORK/c1" \
	--output-dir "$WORK/sub" --stages transformer --report "$WORK/r3.json"
check "it ran the data stage (needed) from the cache" test "$(stage_result "$WORK/r3.json" data)" = cached
check "and the transformer from the cache" test "$(stage_result "$WORK/r3.json" transformer)" = cached
check "not mamba" test "$(stage_result "$WORK/r3.json" mamba)" = "not selected"
check "one model" test "$(ls "$WORK/sub"/*.tar.gz | wc -l)" -eq 1
check "in the manifest" verify_manifest "$WORK/sub" 1
status_is 0 "--stages rl,mamba --skip-data-prep" "${T[@]}" --config "$S" --cache-dir "$WORK/c1" \
	--output-dir "$WORK/sub2" --stages rl,mamba --skip-data-prep --report "$WORK/r4.json"
check "no data stage" test "$(stage_result "$WORK/r4.json" data)" = "not selected"
check "two models" test "$(ls "$WORK/sub2"/*.tar.gz | wc -l)" -eq 2

# kill -9 in stage 3, then a rerun trains stages 3 to 5 only.  The
# classifier trains longer here, so that the kill lands inside it.
sed 's/num_epochs: 3,/num_epochs: 60,/' "$S" >"$WORK/long.yml"
sed -i "s|\.\./|$top_srcdir/tests/data/|g" "$WORK/long.yml"
"${T[@]}" --config "$WORK/long.yml" --cache-dir "$WORK/c2" --output-dir "$WORK/k" -q \
	--progress "$WORK/p2.jsonl" 2>/dev/null &
pid=$!
for _ in $(seq 1500); do
	grep -q '"event": "step", "node": "classifier"' "$WORK/p2.jsonl" 2>/dev/null && break
	sleep 0.02
done
kill -9 "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
check "killed inside stage 3" grep -q '"stage": "transformer", "index": 3' "$WORK/p2.jsonl"
check "before stage 4" test -z "$(grep '"stage": "rag"' "$WORK/p2.jsonl")"
check "no manifest from the killed run" test ! -e "$WORK/k/manifest.json"
status_is 0 "the rerun" "${T[@]}" --config "$WORK/long.yml" --cache-dir "$WORK/c2" \
	--output-dir "$WORK/k" --report "$WORK/r5.json"
check "stage 1 came from the cache" test "$(stage_result "$WORK/r5.json" data)" = cached
check "stage 2 came from the cache" test "$(stage_result "$WORK/r5.json" mamba)" = cached
check "stage 3 trained" test "$(stage_result "$WORK/r5.json" transformer)" = trained
check "the classifier trained" grep -B4 '"status": "trained"' "$WORK/r5.json" | grep -q '"name": "classifier"'
check "stage 4 trained" test "$(stage_result "$WORK/r5.json" rag)" = trained
check "stage 5 trained" test "$(stage_result "$WORK/r5.json" rl)" = trained
check "no data check or Mamba node trained" test -z "$(grep -A7 '"status": "trained"' "$WORK/r5.json" | grep '"stage": "\(data\|mamba\)"$')"
check "and its manifest" verify_manifest "$WORK/k"

# Errors.
status_is 69 "--device cuda" "${T[@]}" --config "$S" --cache-dir "$WORK/c1" --device cuda
check "says there is no GPU backend" grep -q "no GPU backend in this build" "$WORK/err"
status_is 65 "an unknown stage" "${T[@]}" --config "$S" --cache-dir "$WORK/c1" --stages mamba,bogus
check "lists the stages" grep -q "unknown stage 'bogus'.*data, mamba, transformer, rag, rl" "$WORK/err"
printf 'mamba: {}\nmamba2: {model: {d_model: 8}}\n' >"$WORK/badsec.yml"
status_is 65 "an unknown settings section" "${T[@]}" --config "$WORK/badsec.yml" --cache-dir "$WORK/c1"
check "at its line, with the sections" grep -q "badsec.yml:2:1: unknown section 'mamba2'.*mamba, transformer, rag, rl" "$WORK/err"
status_is 64 "--stages on a target without stages" "$TRAIN" --target rl --stages rl --plugin-path "$P"
cp "$top_srcdir/tests/data/bert/train.jsonl" "$WORK/bad.jsonl"
sed -i '3s/, "label": "weather"//' "$WORK/bad.jsonl"
sed "s|train_file: ../bert/train.jsonl|train_file: $WORK/bad.jsonl|; s|\.\./|$top_srcdir/tests/data/|g" \
	"$S" >"$WORK/baddata.yml"
status_is 70 "a bad data line" "${T[@]}" --config "$WORK/baddata.yml" --cache-dir "$WORK/c3" \
	--output-dir "$WORK/bd"
check "stops in the data stage at its line" grep -q "stage 'data'.*bad.jsonl:3: no \"label\" field" "$WORK/err"
check "before Mamba trains" test -z "$(grep 'stage 2/5' "$WORK/err")"

finish
