#!/bin/bash
# End to end: `train serve` on a free loopback port, driven with curl.
# Jobs are tests/data/target/hello.yml (naive Bayes, a fraction of a second)
# and tests/data/serve/steps.yml (testparts' Source reporting steps with a
# loss over a set time: cancel, restart and crash happen midway).
. "${top_srcdir:-.}/tests/lib.sh"

command -v curl >/dev/null || { echo "SKIP: no curl"; exit 77; }
export TRAIN_RECIPE_PATH="$top_srcdir/tests/data/target:$top_srcdir/tests/data/serve:$top_srcdir/recipes"
P="${TRAIN_BASIC_PLUGINS:-$top_builddir/plugins/basic/.libs}:$(plugin_dir testparts.so):$top_builddir/plugins/bert/.libs"
ST="$WORK/state"
mkdir -p "$WORK/datasets"
cp "$top_srcdir/examples/hello/intents.tsv" "$WORK/datasets/"
cp "${TRAIN_TEST_DATA:-$top_srcdir/tests/data}/bert/train.jsonl" "$WORK/datasets/"

SPID=
stop_server() {
	if [ -n "$SPID" ]; then
		kill "$SPID" 2>/dev/null || true
		wait "$SPID" 2>/dev/null || true
		SPID=
	fi
}
trap 'stop_server; rm -rf "$WORK"' EXIT

start_server() {
	rm -f "$ST/address"
	"$TRAIN" serve --listen 127.0.0.1:0 --state "$ST" --data "$WORK/datasets" \
		--plugin-path "$P" --max-body 4096 "$@" >>"$WORK/server.log" 2>&1 &
	SPID=$!
	for _ in $(seq 1 200); do
		[ -s "$ST/address" ] && break
		sleep 0.05
	done
	URL="http://$(cat "$ST/address")/api/training"
}

# api METHOD PATH [BODY] [TOKEN]: the HTTP status; the body in $WORK/resp
api() {
	local tok=${4-$ADMIN} args=()
	[ -n "$tok" ] && args+=(-H "Authorization: Bearer $tok")
	[ -n "${3-}" ] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
	[ "$1" = POST ] && echo "$2" >>"$WORK/posts"
	curl -s --path-as-is -o "$WORK/resp" -w '%{http_code}' -X "$1" "${args[@]}" "$URL/$2"
}
# api_is CODE DESCRIPTION METHOD PATH [BODY] [TOKEN]
api_is() {
	local want=$1 what=$2 got
	shift 2
	got=$(api "$@")
	if [ "$got" = "$want" ]; then ok "$what ($got)"; else
		fail "$what: HTTP $got, expected $want"
		sed 's/^/  | /' "$WORK/resp" >&2
	fi
}
resp_has() { grep -q -- "$1" "$WORK/resp"; }
field() { grep -o "\"$1\":\"[^\"]*\"" "$WORK/resp" | head -1 | sed 's/.*:"\(.*\)"/\1/'; }
# wait_for JOB STATUS [SECONDS]: poll the job until it has that status
wait_for() {
	local n=$(( ${3:-30} * 10 ))
	for _ in $(seq 1 "$n"); do
		api GET "jobs/$1" >/dev/null
		[ "$(field status)" = "$2" ] && return 0
		sleep 0.1
	done
	echo "job $1 is $(field status), not $2" >&2
	return 1
}
# wait_step JOB N: until the job has reported step N or more
wait_step() {
	for _ in $(seq 1 300); do
		api GET "jobs/$1" >/dev/null
		local s
		s=$(grep -o '"step":[0-9]*' "$WORK/resp" | cut -d: -f2)
		[ -n "$s" ] && [ "$s" -ge "$2" ] && return 0
		sleep 0.1
	done
	return 1
}
n_jobs() { api GET jobs >/dev/null; grep -o '"id":"job-[0-9]*"' "$WORK/resp" | wc -l; }

# ---- the runner's progress stream, which the server reads
cat >"$WORK/steps.yml" <<'YML'
model: {value: v}
training: {steps: 4, sleep_ms: 80}
YML
status_is 0 "train --progress" "$TRAIN" --target steps --config "$WORK/steps.yml" \
	--plugin-path "$P" --cache-dir "$WORK/c0" --out "$WORK/m0" --progress "$WORK/p0.jsonl" -q
check "progress: the plan" grep -q '^{"t": [0-9.]*, "cpu": [0-9.]*, "event": "plan", "nodes": 3}$' "$WORK/p0.jsonl"
check "progress: four steps with a loss and a learning rate" \
	test "$(grep -c '"event": "step", "node": "slow", "step": [1-4], "total": 4, "loss": [0-9.]*, "lr": [0-9.e-]*}$' "$WORK/p0.jsonl")" -eq 4
check "progress: the learning rate of step 1" grep -q '"step": 1, "total": 4, "loss": [0-9.]*, "lr": 0.001}$' "$WORK/p0.jsonl"
check "progress: each node" test "$(grep -c '"event": "node"' "$WORK/p0.jsonl")" -eq 3
check "progress: the end, last" test "$(tail -1 "$WORK/p0.jsonl" | grep -c '"event": "end", "status": "ok"}$')" -eq 1
# a pipeline (tests/data/serve/two-steps.yml): a stage event before each
# stage's own events, "t" growing over the whole run, and one end, last
cat >"$WORK/two.yml" <<'YML'
first: {model: {value: a}, training: {steps: 3, sleep_ms: 60}}
second: {model: {value: b}, training: {steps: 3, sleep_ms: 60}}
YML
status_is 0 "train --progress on a pipeline" "$TRAIN" --target two-steps --config "$WORK/two.yml" \
	--plugin-path "$P" --cache-dir "$WORK/c0" --out "$WORK/m0" --progress "$WORK/pp.jsonl" -q
check "pipeline progress: two stages" test "$(grep -c '"event": "stage"' "$WORK/pp.jsonl")" -eq 2
check "pipeline progress: stage 2 of 2" grep -q '"event": "stage", "stage": "second", "index": 2, "stages": 2}$' "$WORK/pp.jsonl"
check "pipeline progress: one end" test "$(grep -c '"event": "end"' "$WORK/pp.jsonl")" -eq 1
check "pipeline progress: the end, last" test "$(tail -1 "$WORK/pp.jsonl" | grep -c '"event": "end", "status": "ok"}$')" -eq 1
check "pipeline progress: t never goes back" awk -F'[:,]' '{ if ($2 + 0 < t) exit 1; t = $2 + 0 }' "$WORK/pp.jsonl"
sed -i 's/second: {model: {value: b}, training: {/&bogus: 1, /' "$WORK/two.yml"
status_is 65 "a pipeline whose stage 2 fails" "$TRAIN" --target two-steps --config "$WORK/two.yml" \
	--plugin-path "$P" --cache-dir "$WORK/c0" --out "$WORK/m0" --progress "$WORK/pf.jsonl" -q
check "its stream: one end, failed, naming the stage" test "$(grep -c '"event": "end", "status": "failed", "error": "stage .second.: .*bogus' "$WORK/pf.jsonl")" -eq 1
check "last" test "$(tail -1 "$WORK/pf.jsonl" | grep -c '"event": "end"')" -eq 1
printf 'model: {value: v}\ntraining: {steps: 4, sleep_ms: 80, crash_at: 0, bogus: 1}\n' >"$WORK/bad.yml"
status_is 65 "a run that fails before the plan" "$TRAIN" --target steps --config "$WORK/bad.yml" \
	--plugin-path "$P" --cache-dir "$WORK/c0" --out "$WORK/m0" --progress "$WORK/p1.jsonl" -q
status_is 74 "--progress into a missing folder" "$TRAIN" --target steps --config "$WORK/steps.yml" \
	--plugin-path "$P" --cache-dir "$WORK/c0" --out "$WORK/m0" --progress "$WORK/no/p.jsonl" -q

start_server
check "the server wrote its address" test -s "$ST/address"
check "tokens file is mode 0600" test "$(stat -c %a "$ST/tokens.json")" = 600
ADMIN=$(grep -A2 '"admin-1"' "$ST/tokens.json" | grep '"token"' | cut -d'"' -f4)
VIEWER=$(grep -A2 '"viewer-1"' "$ST/tokens.json" | grep '"token"' | cut -d'"' -f4)
check "two tokens made" test ${#ADMIN} -eq 64 -a ${#VIEWER} -eq 64

# ---- authentication and roles
api_is 401 "no token" GET jobs "" ""
check "401 says a token is needed" resp_has "bearer token is needed"
api_is 401 "a wrong token" GET jobs "" "0123456789abcdef0123456789abcdef"
api_is 200 "viewer reads the job list" GET jobs "" "$VIEWER"
HELLO='{"target": "hello", "settings": {"model": {"alpha": 0.5}, "data": {"train_file": {"dataset": "intents.tsv"}}}}'
api_is 403 "viewer cannot create a job" POST jobs/basic "$HELLO" "$VIEWER"
check "403 names the role" resp_has "viewer-1 is a viewer"
api_is 401 "no token, creating" POST jobs/basic "$HELLO" ""

# ---- reading
api_is 200 "hardware" GET hardware
check "hardware: cpu and precision" resp_has '"recommended_precision"'
api_is 200 "trainable models and targets" GET models/trainable
check "lists the hello target and the data set" \
	grep -q '"id":"hello".*"datasets":\[.*{"id":"intents.tsv"}' "$WORK/resp"
# ---- the compatibility check (train check's verdict)
mkdir -p "$ST/models"
cp -r "$top_srcdir/tests/fixtures/bert-tiny-hf" "$ST/models/"
api_is 200 "compatibility check of an HF model" POST compatibility/check \
	'{"model": "bert-tiny-hf", "training_type": "fine-tune", "batch_size": 4, "max_length": 16, "dataset": "intents.tsv"}' "$VIEWER"
check "the verdict" resp_has '"verdict": *"compatible"'
check "parameters and memory" grep -q '"total": *[1-9].*"peak": *[1-9]' <(tr -d '\n' <"$WORK/resp")
check "the time of a step" grep -q '"step_seconds": *[0-9.e-]*[1-9]' "$WORK/resp"
api_is 200 "LoRA on BERT (issue 10): compatible" POST compatibility/check \
	'{"model": "bert-tiny-hf", "training_type": "lora", "lora_r": 4, "gradient_checkpointing": true}'
check "compatible" resp_has '"verdict": *"compatible"'
api_is 200 "past the positions: not compatible, with the reason" POST compatibility/check \
	'{"model": "bert-tiny-hf", "training_type": "fine-tune", "max_length": 64}'
check "not compatible" resp_has '"verdict": *"not compatible"'
check "the reason" resp_has 'max_length 64 is past the model.s 16 positions'
api_is 400 "compatibility: bad fields" POST compatibility/check \
	'{"model": "../etc", "training_type": "sideways", "batch_size": -1, "colour": 1}'
for f in model training_type batch_size colour; do
	check "compatibility: the field $f named" grep -q "\"field\": *\"$f\"" "$WORK/resp"
done
api_is 400 "compatibility: an unknown model" POST compatibility/check '{"model": "gpt9", "training_type": "lora"}'
check "says no such model" resp_has "no model 'gpt9'"
api_is 400 "compatibility: malformed JSON" POST compatibility/check '{"model":'
mkdir -p "$ST/models/broken"
echo '{"model_type": "t5"}' >"$ST/models/broken/config.json"
api_is 422 "compatibility: a model this build cannot train" POST compatibility/check \
	'{"model": "broken", "training_type": "full"}'
check "names the model_type" resp_has 't5'
check "no server path in the message" test -z "$(grep -o "$ST" "$WORK/resp")"
api_is 405 "compatibility: GET" GET compatibility/check

# ---- bad requests: a 4xx with a message, and nothing changes
api_is 400 "malformed JSON" POST jobs/basic '{"target": "hello",'
check "says where the JSON breaks" resp_has "malformed JSON at line 1"
api_is 400 "not an object" POST jobs/basic '[1, 2]'
api_is 400 "empty body" POST jobs/basic ''
api_is 400 "wrong types" POST jobs/advanced '{"target": 7, "settings": 5, "threads": "two", "force": 1}'
check "a message per bad field" test "$(grep -o '"field"' "$WORK/resp" | wc -l)" -eq 4
check "names target, settings, threads, force" \
	grep -q '"field":"target".*"field":"threads".*"field":"force".*"field":"settings"' "$WORK/resp"
api_is 400 "an unknown field" POST jobs/basic '{"target": "hello", "gpus": 8}'
check "names the unknown field and the known ones" resp_has "unknown field for a basic job; known: target"
api_is 400 "advanced fields in a basic job" POST jobs/basic '{"target": "hello", "threads": 2}'
api_is 400 "an unknown target" POST jobs/basic '{"target": "nosuch"}'
api_is 400 "no settings: the target's required path is missing" POST jobs/basic '{"target": "hello"}'
check "the target's message" resp_has "missing required key 'path'"
api_is 400 "'..' in a data set id" POST jobs/basic \
	'{"target": "hello", "settings": {"data": {"train_file": {"dataset": "../datasets/intents.tsv"}}}}'
check "says it is not a data set id" resp_has "is not a dataset id"
api_is 400 "a path in a setting" POST jobs/basic \
	'{"target": "hello", "settings": {"data": {"train_file": "/etc/passwd"}}}'
check "paths are not taken" resp_has "paths are not taken from clients"
api_is 400 "a data set that is not there" POST jobs/basic \
	'{"target": "hello", "settings": {"data": {"train_file": {"dataset": "nope.tsv"}}}}'
api_is 400 "a settings key the target does not know" POST jobs/basic \
	'{"target": "hello", "settings": {"training": {"learning_rate": 0.1}, "data": {"train_file": {"dataset": "intents.tsv"}}}}'
check "the target's own message" resp_has "unknown key 'training.learning_rate' for target hello"
api_is 400 "a setting of the wrong type for the target" POST jobs/basic \
	'{"target": "hello", "settings": {"model": {"alpha": "lots"}, "data": {"train_file": {"dataset": "intents.tsv"}}}}'
check "names the key" resp_has "alpha"
big=$(head -c 6000 /dev/zero | tr '\0' 'a')
api_is 413 "a body over --max-body" POST jobs/basic "{\"target\": \"hello\", \"name\": \"$big\"}"
api_is 404 "an unknown job id" GET jobs/job-999999
api_is 404 "start an unknown job" POST jobs/job-999999/start '{}'
api_is 400 "'..' as a job id" GET jobs/..
api_is 400 "a job id with '..' inside" POST "jobs/job-1..%2f..%2fx/start" '{}'
api_is 400 "an unknown status filter" GET "jobs?status=bogus"
api_is 404 "an unknown endpoint" GET nosuch
api_is 405 "GET on a POST endpoint" GET jobs/basic
check "no job was made by the bad requests" test "$(n_jobs)" -eq 0
check "no job folder either" test -z "$(ls -A "$ST/jobs")"

# ---- create -> start -> progress -> finish
api_is 201 "create a hello job" POST jobs/basic "$HELLO"
J1=$(field id)
check "created, not started" test "$(field status)" = created
api_is 403 "viewer cannot start it" POST "jobs/$J1/start" '{}' "$VIEWER"
api_is 200 "start it" POST "jobs/$J1/start" '{}'
check "the hello job succeeds" wait_for "$J1" succeeded 60
check "progress 1 at the end" grep -q '"progress":1' "$WORK/resp"
check "the model is named" resp_has "\"model\":\"jobs/$J1/model/"
check "the model is there" test -f "$ST/$(field model)"
status_is 0 "predict with the job's model" "$TRAIN" predict "$ST/$(field model)" \
	--plugin-path "$P" "hello there"
api_is 409 "a finished job cannot be canceled" POST "jobs/$J1/cancel" '{}'
api_is 200 "filter by status" GET "jobs?status=succeeded" "" "$VIEWER"
check "the filter finds it" resp_has "\"id\":\"$J1\""
api_is 200 "filter by another status" GET "jobs?status=running"
check "and not there" test -z "$(grep "$J1" "$WORK/resp" || true)"

# ---- a pipeline job: its progress runs over both stages, to the end
TWO='{"target": "two-steps", "settings": {"first": {"model": {"value": "a"}, "training": {"steps": 4, "sleep_ms": 800}}, "second": {"model": {"value": "b"}, "training": {"steps": 4, "sleep_ms": 800}}}}'
api_is 201 "create a pipeline job (a section per stage)" POST jobs/basic "$TWO"
J5=$(field id)
api_is 200 "start it" POST "jobs/$J5/start" '{}'
in_stage2() {
	for _ in $(seq 1 200); do
		api GET "jobs/$J5" >/dev/null
		resp_has '"stage":"second"' && resp_has '"step":[1-9]' && return 0
		sleep 0.05
	done
	return 1
}
check "the job reaches stage 2 of 2" in_stage2
check "named in its record" resp_has '"stage_index":2,"stages":2'
p=$(grep -o '"progress":[0-9.e-]*' "$WORK/resp" | cut -d: -f2)
check "progress past the first stage, below 1 ($p)" awk -v p="$p" 'BEGIN { exit !(p > 0.5 && p < 1) }'
check "the pipeline job succeeds" wait_for "$J5" succeeded 60
check "progress 1 at its end" grep -q '"progress":1' "$WORK/resp"
check "the stream had one end" test "$(grep -c '"event": "end"' "$ST/jobs/$J5/progress.jsonl")" -eq 1
api_is 400 "a pipeline stage's settings below a value" POST jobs/basic \
	'{"target": "two-steps", "settings": {"first": {"model": {"value": {"x": 1}}}}}'
check "says what an object there must be" resp_has 'settings.first.model.value'

# ---- a slow job: progress with loss, then cancel
STEPS='{"target": "steps", "settings": {"model": {"value": "s"}, "training": {"steps": 40, "sleep_ms": 6000}}}'
api_is 201 "create a slow job" POST jobs/advanced "${STEPS%\}}, \"threads\": 1}"
J2=$(field id)
api_is 200 "start the slow job" POST "jobs/$J2/start" '{}'
check "it reports steps" wait_step "$J2" 3
check "running" test "$(field status)" = running
check "with a loss" grep -q '"loss":[0-9]' "$WORK/resp"
check "with an ETA" grep -q '"eta_seconds":[0-9]' "$WORK/resp"
p=$(grep -o '"progress":[0-9.e-]*' "$WORK/resp" | cut -d: -f2)
check "progress between 0 and 1 ($p)" awk -v p="$p" 'BEGIN { exit !(p > 0 && p < 1) }'
api_is 200 "its loss curve" GET "jobs/$J2/curve" "" "$VIEWER"
check "the curve has points" grep -q '"points":\[\[' "$WORK/resp"
check "the curve's columns end with lr" resp_has '"columns":"t,loss,node,step,total,lr"'
check "each point has its learning rate" grep -q '"points":\[\[[0-9.]*,[0-9.]*,"slow",1,[0-9]*,0.001\]' "$WORK/resp"
api_is 200 "cancel it" POST "jobs/$J2/cancel" '{}'
check "it stops as canceled" wait_for "$J2" canceled 20
check "the run stopped cleanly (interrupted, not killed)" \
	grep -q "interrupted" "$ST/jobs/$J2/train.log"
check "no model from the canceled run" test -z "$(ls "$ST/jobs/$J2/model" 2>/dev/null || true)"

# ---- one job at a time: the next waits in the queue
api_is 200 "start the canceled job again" POST "jobs/$J2/start" '{}'
check "it runs again" wait_step "$J2" 1
api_is 201 "another job" POST jobs/basic "$HELLO"
J3=$(field id)
api_is 200 "start it while the other runs" POST "jobs/$J3/start" '{}'
api GET "jobs/$J3" >/dev/null
check "it is queued" test "$(field status)" = queued
api_is 200 "cancel the queued job" POST "jobs/$J3/cancel" '{}'
check "canceled at once" test "$(field status)" = canceled

# ---- the server dies mid-job: interrupted, then resumed from the cache
check "the slow job is running" wait_step "$J2" 2
kill -9 "$SPID"
wait "$SPID" 2>/dev/null || true
SPID=
start_server
api_is 200 "the new server answers" GET "jobs?status=interrupted"
check "the running job is interrupted" resp_has "\"id\":\"$J2\""
check "with a reason" resp_has "the server stopped while the job ran"
check "the others kept their state" test "$(n_jobs)" -eq 4
api_is 200 "start it again" POST "jobs/$J2/start" '{}'
check "it finishes" wait_for "$J2" succeeded 60
check "it resumed: the finished node came from the cache" \
	grep -q '"node": "first", "status": "cached"' "$ST/jobs/$J2/progress.jsonl"
check "three attempts" resp_has '"attempts":3'

# ---- a job that crashes: failed, with its last log lines
CRASH='{"target": "steps", "settings": {"model": {"value": "c"}, "training": {"steps": 10, "sleep_ms": 500, "crash_at": 3}}}'
api_is 201 "create a job that crashes" POST jobs/basic "$CRASH"
J4=$(field id)
api_is 200 "start it" POST "jobs/$J4/start" '{}'
check "it fails" wait_for "$J4" failed 30
check "the error says how it ended" grep -q '"error":"train was killed by signal 6' "$WORK/resp"
check "the last log lines are kept" resp_has "crashing at step 3 as asked"

# ---- a fine-tuning job: a model and a data set by id, the current tool's keys (train finetune)
api_is 400 "fine-tuning: bad fields" POST jobs/basic \
	'{"model": "../bert-tiny-hf", "dataset": 3, "type": "fast", "gpus": 1}'
check "fine-tuning: a message per bad field" test "$(grep -o '"field"' "$WORK/resp" | wc -l)" -eq 4
api_is 400 "fine-tuning: an advanced key in a basic job" POST jobs/basic \
	'{"model": "bert-tiny-hf", "dataset": "train.jsonl", "config": {"weight_decay": 0.1}}'
check "fine-tuning: train finetune's message names the key" resp_has "weight_decay"
FT='{"model": "bert-tiny-hf", "dataset": "train.jsonl", "config": {"num_epochs": 1, "learning_rate": 0.001, "batch_size": 4}}'
api_is 201 "create a basic fine-tuning job" POST jobs/basic "$FT"
J5=$(field id)
check "shown as target finetune" test "$(field target)" = finetune
check "with its base model and data set" grep -q '"base_model":"bert-tiny-hf","dataset":"train.jsonl","type":"fine-tune"' "$WORK/resp"
api_is 200 "start the fine-tuning job" POST "jobs/$J5/start" '{}'
check "the fine-tuning job succeeds" wait_for "$J5" succeeded 120
check "a fine-tuned model" test -f "$ST/$(field model)"
check "the settings train finetune wrote" test -s "$ST/jobs/$J5/model/finetune-settings.yml"

# ---- the audit log: every POST, as JSON Lines
n_post=$(grep -c '"method":"POST"' "$ST/audit.jsonl")
check "the audit log has every POST ($n_post)" test "$n_post" -eq "$(wc -l <"$WORK/posts")"
check "audit: token id, path, job, result" \
	grep -q "\"token_id\":\"admin-1\",\"role\":\"admin\",\"method\":\"POST\",\"path\":\"/api/training/jobs/$J2/cancel\",\"job\":\"$J2\",\"status\":200,\"result\":\"ok\"" "$ST/audit.jsonl"
check "audit: refusals too" grep -q '"token_id":"viewer-1".*"status":403' "$ST/audit.jsonl"
check "audit: no token" grep -q '"token_id":null,"role":null,"method":"POST","path":"/api/training/jobs/basic","job":null,"status":401' "$ST/audit.jsonl"
check "no GET is audited" test -z "$(grep '"method":"GET"' "$ST/audit.jsonl" || true)"

# ---- the page and a clean stop
code=$(curl -s -o "$WORK/page.html" -w '%{http_code}' "${URL%/api/training}/")
check "the page is served ($code)" test "$code" = 200
check "the page has no external assets" test -z "$(grep -E '(src|href)="(https?:)?//' "$WORK/page.html" || true)"
kill "$SPID"
set +e
wait "$SPID"
st=$?
set -e
SPID=
check "SIGTERM stops the server cleanly (exit $st)" test "$st" -eq 0
check "tokens file still mode 0600" test "$(stat -c %a "$ST/tokens.json")" = 600
chmod 644 "$ST/tokens.json"
status_is 65 "a tokens file others can read is refused" \
	"$TRAIN" serve --listen 127.0.0.1:0 --state "$ST"
check "says so" grep -q "readable by others" "$WORK/err"
status_is 64 "a bad --listen" "$TRAIN" serve --listen nowhere --state "$WORK/s2"
finish
