#!/bin/bash
# End to end: `train` trains, caches, dry-runs, lists plugins, inspects and
# predicts, as a user runs it.
. "${top_srcdir:-.}/tests/lib.sh"

P=$(plugin_dir testparts.so)
R="$WORK/recipe.yml"
write_recipe() {
	cat >"$R" <<YML
version: 1
name: cli
train:
  targets: [e]
  nodes:
    a: {component: Source, config: {value: A$1}}
    b: {component: Echo, needs: {in: a}, config: {suffix: B}}
    c: {component: Source, config: {value: C}}
    d: {component: Join, needs: {a: b, b: c}}
    e: {component: Echo, needs: {in: d}, config: {suffix: E}}
predict:
  inputs: [text]
  targets: [shout]
  nodes:
    shout: {component: Echo, resource: e, needs: {in: \$input.text}, config: {suffix: '!'}}
YML
}
write_recipe ""
T=("$TRAIN" --recipe "$R" --plugin-path "$P" --cache-dir "$WORK/cache" --out "$WORK/models" -q)

status_is 3 "dry run, no model and empty cache" "${T[@]}" --dry-run
status_is 0 "first run" "${T[@]}" --report "$WORK/r1.json"
check "first run trained 5 nodes" test "$(count_status "$WORK/r1.json" trained)" -eq 5
check "one model written" test "$(ls "$WORK/models" | wc -l)" -eq 1
status_is 0 "dry run, nothing changed" "${T[@]}" --dry-run
status_is 0 "second run" "${T[@]}" --report "$WORK/r2.json"
check "second run trained nothing" test "$(count_status "$WORK/r2.json" cached)" -eq 5
check "second run wrote a model" test "$(ls "$WORK/models" | wc -l)" -eq 2

write_recipe 2
status_is 1 "dry run, one node changed" "${T[@]}" --dry-run
"$TRAIN" graph --recipe "$R" --plugin-path "$P" --cache-dir "$WORK/cache" --out "$WORK/models" \
	--dot "$WORK/g.dot" >"$WORK/plan" 2>"$WORK/err" && ok "graph" || fail "graph"
check "plan lists a b d e to train" test "$(grep -c '^trained' "$WORK/plan")" -eq 4
check "plan lists c cached" grep -q '^cached   c ' "$WORK/plan"
check "dot file" grep -q '"a" -> "b"' "$WORK/g.dot"
status_is 0 "third run" "${T[@]}" --report "$WORK/r3.json"
check "third run trained exactly a b d e" test "$(count_status "$WORK/r3.json" trained)" -eq 4
status_is 2 "dry run, fresh --out" "$TRAIN" --recipe "$R" --plugin-path "$P" \
	--cache-dir "$WORK/cache" --out "$WORK/other" -q --dry-run
status_is 5 "dry run, --force" "${T[@]}" --dry-run --force
status_is 0 "--fixed-model-name" "${T[@]}" --fixed-model-name fixed
check "fixed name used" test -f "$WORK/models/fixed.tar.gz"

# Inspect and predict.
status_is 0 "inspect" "$TRAIN" inspect "$WORK/models/fixed.tar.gz"
check "inspect shows node fingerprints" grep -q '"fingerprint"' "$WORK/out"
check "inspect shows the predict schema" grep -q '"shout"' "$WORK/out"
status_is 0 "predict" "$TRAIN" predict "$WORK/models/fixed.tar.gz" --plugin-path "$P" text=hey
check "predict output" grep -qx 'shout: hey!' "$WORK/out"
status_is 0 "predict with no texts reads none from an empty stdin" "$TRAIN" predict \
	"$WORK/models/fixed.tar.gz" --plugin-path "$P" </dev/null
check "and prints nothing" test ! -s "$WORK/out"

# Plugins: bad ones are refused with their reason, the rest still load.
B=$(plugin_dir testparts.so wrongabi.so newminor.so nosymbol.so)
echo "not a shared object" >"$B/junk.so"
status_is 0 "plugins" "$TRAIN" plugins --plugin-path "$B"
check "testparts listed" grep -q '^testparts 1.0.0' "$WORK/out"
check "wrong ABI refused" grep -q "^refused $B/wrongabi.so: .*ABI 2\.[0-9]" "$WORK/out"
check "newer minor refused" grep -q "^refused $B/newminor.so: " "$WORK/out"
check "missing symbol refused" grep -q "^refused $B/nosymbol.so: .*train_plugin_descriptor" "$WORK/out"
check "junk refused" grep -q "^refused $B/junk.so: " "$WORK/out"
status_is 0 "train with refused plugins around" "$TRAIN" --recipe "$R" --plugin-path "$B" \
	--cache-dir "$WORK/cache" --out "$WORK/models"
check "refusals are warned about" grep -q 'plugin refused: .*wrongabi.so' "$WORK/err"

# TRAIN_PLUGIN_PATH is searched too.
status_is 0 "TRAIN_PLUGIN_PATH" env TRAIN_PLUGIN_PATH="$P" "$TRAIN" --recipe "$R" \
	--cache-dir "$WORK/cache" --out "$WORK/models" -q --dry-run

# Two runs at once on one cache: both succeed, and a third finds all cached.
sed 's/value: A/value: P/' "$R" >"$WORK/par1.yml"
sed 's/value: A/value: Q/' "$R" >"$WORK/par2.yml"
"$TRAIN" --recipe "$WORK/par1.yml" --plugin-path "$P" --cache-dir "$WORK/cache" --out "$WORK/m1" -q &
p1=$!
"$TRAIN" --recipe "$WORK/par2.yml" --plugin-path "$P" --cache-dir "$WORK/cache" --out "$WORK/m2" -q &
p2=$!
check "first of two concurrent runs" wait "$p1"
check "second of two concurrent runs" wait "$p2"
status_is 0 "both concurrent results are cached" "$TRAIN" --recipe "$WORK/par2.yml" \
	--plugin-path "$P" --cache-dir "$WORK/cache" --out "$WORK/m2" -q --dry-run

# The cache commands.
status_is 0 "cache stats" "$TRAIN" cache stats --cache-dir "$WORK/cache"
check "cache stats counts nodes" grep -Eq '^nodes: +[1-9]' "$WORK/out"
status_is 0 "cache clear" "$TRAIN" cache clear --cache-dir "$WORK/cache"
status_is 1 "after clear everything would train" "${T[@]}" --dry-run
status_is 64 "cache with a bad action" "$TRAIN" cache nonsense --cache-dir "$WORK/cache"

status_is 0 "hardware" "$TRAIN" hardware --dir "$WORK"
check "hardware names the cpu and the precision" grep -q "recommended precision: \(bf16\|fp32\)" "$WORK/out"
status_is 0 "hardware --json" "$TRAIN" hardware --json
check "hardware --json has the fields" grep -q '"recommended_precision": "\(bf16\|fp32\)"' "$WORK/out"
status_is 64 "hardware with an argument" "$TRAIN" hardware extra

# OpenMP's waiting: chosen by the load when the caller set neither variable
# (TRAIN_DEBUG says which), the caller's choice kept otherwise.
status_is 64 "a kernels command re-executes itself" \
	env -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT TRAIN_DEBUG=1 "$TRAIN" core extra-argument
check "it names the OpenMP waiting it chose" \
	grep -Eq 'OpenMP threads wait with (GOMP_SPINCOUNT=10000|OMP_WAIT_POLICY=passive) \(1-minute load' "$WORK/err"
status_is 64 "a caller's OMP_WAIT_POLICY" \
	env -u GOMP_SPINCOUNT OMP_WAIT_POLICY=active TRAIN_DEBUG=1 "$TRAIN" core extra-argument
check "is kept" sh -c "! grep -q 'OpenMP threads wait' '$WORK/err'"
status_is 64 "a caller's GOMP_SPINCOUNT" \
	env -u OMP_WAIT_POLICY GOMP_SPINCOUNT=100 TRAIN_DEBUG=1 "$TRAIN" core extra-argument
check "is kept" sh -c "! grep -q 'OpenMP threads wait' '$WORK/err'"

status_is 0 "--version" "$TRAIN" --version
check "version text" grep -q '^train (libtrain) ' "$WORK/out"
status_is 64 "unknown option" "$TRAIN" --recipe "$R" --bogus
status_is 64 "unknown command" "$TRAIN" bogus
finish
