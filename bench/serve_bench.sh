#!/bin/bash
# bench/serve_bench.sh BUILDDIR SRCDIR: requests per second of `train serve`
# for GET /api/training/jobs/ID with 64 concurrent keep-alive clients over
# loopback for 10 s (bench/serve_bench.c) while a CPU-bound job runs, and
# how much that job slows down against the same job run alone just before.
# The job is testparts' Source with `work` (tests/data/serve/steps.yml).
# Targets (issue 11): >= 5,000 status requests/s, the job < 5 % slower.
set -eu
B=${1:-.}
S=${2:-.}
TRAIN="$B/train"
W=$(mktemp -d "${TMPDIR:-/tmp}/serve-bench-XXXXXX")
SPID=
trap '[ -n "$SPID" ] && kill $SPID 2>/dev/null; wait 2>/dev/null; rm -rf "$W"' EXIT
mkdir -p "$W/plugins"
ln -s "$(cd "$B/tests/plugins/.libs" && pwd)/testparts.so" "$W/plugins/"
export TRAIN_RECIPE_PATH="$S/tests/data/serve"
CLIENTS=${SERVE_BENCH_CLIENTS:-64}
SECONDS_=${SERVE_BENCH_SECONDS:-10}
STEPS=${SERVE_BENCH_STEPS:-300}
WORK_M=${SERVE_BENCH_WORK:-40}

"$TRAIN" serve --listen 127.0.0.1:0 --state "$W/state" --plugin-path "$W/plugins" \
	--job-threads 1 >"$W/server.log" 2>&1 &
SPID=$!
for _ in $(seq 1 200); do [ -s "$W/state/address" ] && break; sleep 0.05; done
ADDR=$(cat "$W/state/address")
PORT=${ADDR##*:}
TOK=$(grep -A2 '"admin-1"' "$W/state/tokens.json" | grep '"token"' | cut -d'"' -f4)
H="Authorization: Bearer $TOK"
API="http://$ADDR/api/training"

job() { # make and start a job; its id
	local id
	id=$(curl -s -H "$H" --data-binary "{\"target\": \"steps\", \"name\": \"$1\", \"settings\": {\"model\": {\"value\": \"$1\"}, \"training\": {\"steps\": $STEPS, \"work\": $WORK_M}}}" \
		"$API/jobs/basic" | grep -o '"id":"job-[0-9]*"' | cut -d'"' -f4)
	curl -s -H "$H" -X POST -o /dev/null "$API/jobs/$id/start"
	[ -n "$id" ] || { echo "serve bench: cannot make a job" >&2; exit 1; }
	echo "$id"
}
step_of() { curl -s -H "$H" "$API/jobs/$1" | grep -o '"step":[0-9]*' | cut -d: -f2; }
status_of() { curl -s -H "$H" "$API/jobs/$1" | grep -o '"status":"[a-z]*"' | cut -d'"' -f4; }
now() { date +%s.%N; }
# steps/s of a job over a window: poll step counts around `sleep N` or the load
rate_while() { # JOB CMD...: run CMD, steps/s of JOB meanwhile
	local j=$1 s0 s1 t0 t1
	shift
	local n=0
	while [ -z "$(step_of "$j")" ] || [ "$(step_of "$j")" -lt 3 ]; do
		sleep 0.1
		n=$((n + 1))
		[ "$n" -lt 600 ] || { echo "serve bench: job $j does not run" >&2; exit 1; }
	done
	s0=$(step_of "$j"); t0=$(now)
	"$@"
	s1=$(step_of "$j"); t1=$(now)
	awk -v a="$s0" -v b="$s1" -v t0="$t0" -v t1="$t1" 'BEGIN { printf "%.3f", (b - a) / (t1 - t0) }'
}

echo "serve bench: $CLIENTS clients, ${SECONDS_} s; job: $STEPS steps of ${WORK_M}M LCG steps, 1 thread; $(nproc) cores"
J1=$(job alone)
alone=$(rate_while "$J1" sleep "$SECONDS_")
curl -s -H "$H" -X POST -o /dev/null "$API/jobs/$J1/cancel"
for _ in $(seq 1 300); do [ "$(status_of "$J1")" = canceled ] && break; sleep 0.1; done
J2=$(job loaded)
load() { "$B/bench/serve_bench" "$PORT" "/api/training/jobs/$J2" "$TOK" "$CLIENTS" "$SECONDS_" >"$W/bench.out"; }
loaded=$(rate_while "$J2" load)
echo "flat out: $(cat "$W/bench.out")"
curl -s -H "$H" -X POST -o /dev/null "$API/jobs/$J2/cancel"
for _ in $(seq 1 300); do [ "$(status_of "$J2")" = canceled ] && break; sleep 0.1; done
# The target's case: 5,000 requests/s (paced), the job's slowdown then.
J3=$(job paced)
pace() { "$B/bench/serve_bench" "$PORT" "/api/training/jobs/$J3" "$TOK" "$CLIENTS" "$SECONDS_" 5000 >"$W/paced.out"; }
paced=$(rate_while "$J3" pace)
echo "paced:    $(cat "$W/paced.out")"
curl -s -H "$H" -X POST -o /dev/null "$API/jobs/$J3/cancel"
rps=$(awk '{ print $8 }' "$W/bench.out")
errs=$(awk '{ print $4 }' "$W/bench.out")
prps=$(awk '{ print $8 }' "$W/paced.out")
echo "job steps/s: alone $alone, while serving flat out $loaded, while serving $prps req/s $paced"
awk -v r="$rps" -v e="$errs" -v a="$alone" -v l="$loaded" -v p="$paced" -v pr="$prps" 'BEGIN {
	slow = a > 0 ? 100 * (a - l) / a : 0
	pslow = a > 0 ? 100 * (a - p) / a : 0
	printf "bench serve-status: ours %.0f req/s (%d errors, 64 clients flat out), target 5000 req/s, ratio %.2f; job slowdown %.1f %% flat out, %.1f %% at %.0f req/s (target < 5 %%)\n", r, e, r / 5000, slow, pslow, pr }'
