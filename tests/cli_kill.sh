#!/bin/bash
# kill -9 in the middle of a run: the rerun succeeds, reuses what finished
# before the kill, the cache opens, and no partial model is left behind.
. "${top_srcdir:-.}/tests/lib.sh"

P=$(plugin_dir testparts.so)
R="$WORK/recipe.yml"
cat >"$R" <<'YML'
version: 1
name: kill
train:
  targets: [j]
  nodes:
    fast1: {component: Source, config: {value: one}}
    fast2: {component: Source, config: {value: two}}
    slow: {component: Source, config: {value: three, sleep_ms: 4000}}
    j1: {component: Join, needs: {a: fast1, b: fast2}}
    j: {component: Join, needs: {a: j1, b: slow}}
YML
T=("$TRAIN" --recipe "$R" --plugin-path "$P" --cache-dir "$WORK/cache" --out "$WORK/models" --threads 2)

"${T[@]}" >"$WORK/kill.log" 2>&1 &
pid=$!
# Wait until the fast nodes have finished (they are logged), then kill.
for _ in $(seq 1 100); do
	grep -q '^train: j1 ' "$WORK/kill.log" 2>/dev/null && break
	sleep 0.05
done
sleep 0.3
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
check "the killed run had trained j1" grep -q '^train: j1 ' "$WORK/kill.log"
check "no model after the kill" test -z "$(ls -A "$WORK/models" 2>/dev/null | grep -v '^\.' || true)"
check "the killed run left its staging folder" test -n "$(ls "$TMPDIR" | grep "^train-staging-$pid-" || true)"

status_is 0 "rerun after kill -9" "${T[@]}" --report "$WORK/r.json"
check "fast nodes came from the cache" test "$(count_status "$WORK/r.json" cached)" -eq 3
check "slow nodes trained" test "$(count_status "$WORK/r.json" trained)" -eq 2
check "exactly one model" test "$(ls -A "$WORK/models" | wc -l)" -eq 1
check "no temporary files in models/" test -z "$(ls -A "$WORK/models" | grep '^\.' || true)"
check "the stale staging folder is gone" test -z "$(ls "$TMPDIR" | grep "^train-staging-$pid-" || true)"
status_is 0 "cache stats after the kill" "$TRAIN" cache stats --cache-dir "$WORK/cache"
check "model archive is whole" tar -tzf "$(ls "$WORK"/models/*.tar.gz)"
finish
