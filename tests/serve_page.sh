#!/bin/bash
# The page of `train serve` in headless Chromium (Debian's chromium; skipped
# without it): with a job running, the DOM has the job's row with its
# status and progress, the loss and learning-rate curves and the hardware
# summary; a pipeline job is followed to its end.  Set
# TRAIN_SERVE_SCREENSHOT=FILE.png to keep a screenshot.
. "${top_srcdir:-.}/tests/lib.sh"

B=$(command -v chromium || command -v chromium-browser || true)
[ -n "$B" ] || { echo "SKIP: no chromium"; exit 77; }
command -v curl >/dev/null || { echo "SKIP: no curl"; exit 77; }
export TRAIN_RECIPE_PATH="$top_srcdir/tests/data/serve"
P="$(plugin_dir testparts.so)"
ST="$WORK/state"
"$TRAIN" serve --listen 127.0.0.1:0 --state "$ST" --plugin-path "$P" >"$WORK/server.log" 2>&1 &
SPID=$!
trap 'kill $SPID 2>/dev/null; wait $SPID 2>/dev/null; rm -rf "$WORK"' EXIT
for _ in $(seq 1 200); do [ -s "$ST/address" ] && break; sleep 0.05; done
BASE="http://$(cat "$ST/address")"
ADMIN=$(grep -A2 '"admin-1"' "$ST/tokens.json" | grep '"token"' | cut -d'"' -f4)
H="Authorization: Bearer $ADMIN"
curl -s -H "$H" -o "$WORK/resp" --data-binary \
	'{"target": "steps", "settings": {"model": {"value": "p"}, "training": {"steps": 60, "sleep_ms": 30000}}}' \
	"$BASE/api/training/jobs/basic"
J=$(grep -o '"id":"job-[0-9]*"' "$WORK/resp" | cut -d'"' -f4)
check "a job made ($J)" test -n "$J"
curl -s -H "$H" -X POST -o /dev/null "$BASE/api/training/jobs/$J/start"
for _ in $(seq 1 100); do
	curl -s -H "$H" -o "$WORK/resp" "$BASE/api/training/jobs/$J"
	grep -q '"step":[3-9]' "$WORK/resp" && break
	sleep 0.1
done

# Chromium as root needs --no-sandbox; its profile goes to $WORK.
C=("$B" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run
	--user-data-dir="$WORK/chrome" --window-size=1100,1000 --virtual-time-budget=5000)
timeout 60 "${C[@]}" --dump-dom "$BASE/#token=$ADMIN" >"$WORK/dom.html" 2>"$WORK/chrome.log" || true
check "the DOM has the job's row" grep -q "id=\"job-row-$J\" data-status=\"running\"" "$WORK/dom.html"
check "with its progress bar" grep -q '<span class="bar"><i style="width: [0-9]*%;">' "$WORK/dom.html"
check "the loss curve is drawn" grep -q '<polyline points="[0-9.]*,[0-9.]* [0-9.]*,[0-9.]*[^>]*id="loss-line"' "$WORK/dom.html"
check "the learning-rate curve beside it" grep -q '<polyline points="[0-9.]*,[0-9.]* [0-9.]*,[0-9.]*[^>]*id="lr-line"' "$WORK/dom.html"
check "the hardware summary" grep -q 'cores / [0-9]* threads' "$WORK/dom.html"
check "no error shown" grep -q '<span id="err"></span>' "$WORK/dom.html"
if [ -n "${TRAIN_SERVE_SCREENSHOT:-}" ]; then
	timeout 60 "${C[@]}" --screenshot="$TRAIN_SERVE_SCREENSHOT" "$BASE/#token=$ADMIN" \
		>/dev/null 2>&1 || true
	check "screenshot written" test -s "$TRAIN_SERVE_SCREENSHOT"
fi
# Without a token (a fresh profile: the page keeps a token in localStorage)
# the page shows no data.
timeout 60 "${C[@]}" --user-data-dir="$WORK/chrome2" --dump-dom "$BASE/" >"$WORK/dom2.html" 2>/dev/null || true
check "without a token: no job rows" test -z "$(grep -o 'id="job-row-' "$WORK/dom2.html" || true)"
curl -s -H "$H" -X POST -o /dev/null "$BASE/api/training/jobs/$J/cancel"

# A pipeline job (tests/data/serve/two-steps.yml, two stages) followed to
# its end: its row succeeded at 100 %, its detail names the last stage.
for _ in $(seq 1 100); do
	curl -s -H "$H" -o "$WORK/resp" "$BASE/api/training/jobs/$J"
	grep -q '"status":"canceled"' "$WORK/resp" && break
	sleep 0.1
done
curl -s -H "$H" -o "$WORK/resp" --data-binary \
	'{"target": "two-steps", "settings": {"first": {"model": {"value": "a"}, "training": {"steps": 3, "sleep_ms": 300}}, "second": {"model": {"value": "b"}, "training": {"steps": 3, "sleep_ms": 300}}}}' \
	"$BASE/api/training/jobs/basic"
J2=$(grep -o '"id":"job-[0-9]*"' "$WORK/resp" | cut -d'"' -f4)
check "a pipeline job made ($J2)" test -n "$J2"
curl -s -H "$H" -X POST -o /dev/null "$BASE/api/training/jobs/$J2/start"
for _ in $(seq 1 200); do
	curl -s -H "$H" -o "$WORK/resp" "$BASE/api/training/jobs/$J2"
	grep -q '"status":"succeeded"' "$WORK/resp" && break
	sleep 0.1
done
timeout 60 "${C[@]}" --dump-dom "$BASE/#token=$ADMIN" >"$WORK/dom3.html" 2>>"$WORK/chrome.log" || true
check "the pipeline job's row: succeeded" grep -q "id=\"job-row-$J2\" data-status=\"succeeded\"" "$WORK/dom3.html"
check "at 100 %" grep -q "id=\"job-row-$J2\"[^>]*>.*<i style=\"width: 100%;\">" "$WORK/dom3.html"
check "its detail names the last stage" grep -q '"stage": "second (2/2)"' "$WORK/dom3.html"
finish
