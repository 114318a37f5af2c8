#!/bin/bash
# import_bench.sh BUILDDIR SRCDIR: import + validation of a Rasa project
# against PyYAML's C loader merely loading the same files, in one run.
#
# Two projects: CLINC150 converted to Rasa (bench/clinc_to_rasa.py: every
# split, 23,700 examples, 151 intents; written to a scratch folder and
# removed) and the largest example bot, financial-demo.  "ours" is
# bench/import_bench (the library: every file read, checked, sorted into
# NLU/stories/domain, validated as `train data validate` validates, and
# turned into fingerprinted values), timed in-process; the whole `train
# data validate` run is timed too (a "-cli" line: process start, import,
# validation and printing the findings).  "pyyaml-cload" is
# yaml.load(f, Loader=yaml.CSafeLoader) of each of the same files, timed
# inside Python around the loads only.  The two alternate, 5 rounds of 3
# runs each; the medians are compared.  ratio = ours / pyyaml-cload: the
# target is at most 0.2 (ours at least 5x faster).
#
# BENCH_INSTR=1 adds a line per project with the instructions per import
# of each side, counted by valgrind's callgrind (slow, but not moved by the
# load of a shared machine).
#
# Needs python3 with PyYAML built against libyaml (Debian: python3-yaml) and
# the shared data folder (../shared/data from the source tree, or
# $TRAIN_SHARED_DATA).
set -eu
build=${1:-.}
src=${2:-.}
data=${TRAIN_SHARED_DATA:-$src/../shared/data}
PY=${PYTHON:-/usr/bin/python3}
DRIVER="$build/bench/import_bench"
if [ -x "$build/bench/.libs/import_bench" ]; then
	DRIVER="$build/bench/.libs/import_bench"
	export LD_LIBRARY_PATH="$build/libtrain/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
TRAIN="$build/train"
[ -x "$build/.libs/train" ] && TRAIN="$build/.libs/train"
# Importing does no linear algebra: keep OpenBLAS's idle worker threads,
# started when libtrain loads, from competing for the two cores.
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1

if ! "$PY" -c 'import yaml; yaml.CSafeLoader' 2>/dev/null; then
	echo "bench import: skipped, PyYAML with libyaml missing (apt-get install -y python3-yaml)" >&2
	exit 0
fi
if [ ! -f "$data/clinc150/data_full.json" ] || [ ! -d "$data/rasa/financial-demo" ]; then
	echo "bench import: skipped, no data in $data (set TRAIN_SHARED_DATA)" >&2
	exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/train-import-bench-XXXXXX")
trap 'rm -rf "$work"' EXIT
"$PY" "$src/bench/clinc_to_rasa.py" "$data/clinc150/data_full.json" "$work/clinc150" >/dev/null

# PyYAML: print the time of loading every file, once per run.
pyyaml_runs() { # REPS FILE...
	"$PY" - "$@" <<'PY'
import sys, time, yaml
reps, files = int(sys.argv[1]), sys.argv[2:]
for _ in range(reps):
    total = 0.0
    for f in files:
        with open(f, encoding="utf-8") as fh:
            t0 = time.perf_counter()
            yaml.load(fh, Loader=yaml.CSafeLoader)
            total += time.perf_counter() - t0
    print(f"{total * 1e3:.3f}")
PY
}

# bash's own clock, for timing a whole `train` process.
now_ms() { local t=${EPOCHREALTIME/[.,]/}; echo "$((t / 1000)).$(printf '%03d' $((t % 1000)))"; }
has_validate=no
if "$TRAIN" data validate --help >/dev/null 2>&1; then
	has_validate=yes
fi

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# bench NAME DOMAIN DATA_DIR
bench() {
	local name=$1 domain=$2 dir=$3 files
	files=$(find "$domain" "$dir" -type f \( -name '*.yml' -o -name '*.yaml' \) | sort)
	: >"$work/ours" ; : >"$work/py" ; : >"$work/cli"
	"$DRIVER" -n 1 "$domain" "$dir" >/dev/null 2>&1 # warm-up (page cache, first touch)
	for round in 1 2 3 4 5; do
		"$DRIVER" -n 3 "$domain" "$dir" 2>/dev/null | grep -v = >>"$work/ours"
		# shellcheck disable=SC2086
		pyyaml_runs 3 $files >>"$work/py"
		if [ "$has_validate" = yes ]; then
			local t0 t1
			t0=$(now_ms)
			"$TRAIN" data validate --domain "$domain" --data "$dir" >/dev/null 2>&1 || true
			t1=$(now_ms)
			awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }' >>"$work/cli"
		fi
	done
	local ours py what
	ours=$(median <"$work/ours")
	py=$(median <"$work/py")
	what=$("$DRIVER" -n 1 "$domain" "$dir" 2>/dev/null | grep =)
	echo "bench import-$name: ours $ours ms, pyyaml-cload $py ms, ratio $(awk -v a="$ours" -v b="$py" 'BEGIN { printf "%.3f", a / b }')"
	echo "  ($what; $(echo "$files" | wc -l) files, $(cat $files | wc -c) bytes)"
	if [ "$has_validate" = yes ]; then
		local cli
		cli=$(median <"$work/cli")
		echo "bench import-$name-cli: ours $cli ms, pyyaml-cload $py ms, ratio $(awk -v a="$cli" -v b="$py" 'BEGIN { printf "%.3f", a / b }')"
	fi
	echo "target: import-$name at least 5x faster than pyyaml-cload: $(awk -v a="$ours" -v b="$py" 'BEGIN { print (a * 5 <= b) ? "met" : "NOT met" }')"
	if [ "${BENCH_INSTR:-0}" = 1 ] && command -v valgrind >/dev/null; then
		# Instructions per import (valgrind's callgrind, 5 runs minus 1 run
		# of each side): a figure that load on a shared machine cannot move.
		local o1 o5 p1 p5
		instr() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 >/dev/null |
			sed -n 's/.*Collected : *\([0-9]*\).*/\1/p'; }
		o1=$(instr "$DRIVER" -n 1 "$domain" "$dir")
		o5=$(instr "$DRIVER" -n 5 "$domain" "$dir")
		# shellcheck disable=SC2086
		p1=$(instr "$PY" - 1 $files <"$work/pyload.py")
		# shellcheck disable=SC2086
		p5=$(instr "$PY" - 5 $files <"$work/pyload.py")
		awk -v o1="$o1" -v o5="$o5" -v p1="$p1" -v p5="$p5" -v n="$name" 'BEGIN {
			o = (o5 - o1) / 4e6; p = (p5 - p1) / 4e6
			printf "bench import-%s-instructions: ours %.2f Minstr, pyyaml-cload %.2f Minstr, ratio %.3f\n", n, o, p, o / p }'
	fi
}
cat >"$work/pyload.py" <<'PY'
import sys, yaml
reps, files = int(sys.argv[1]), sys.argv[2:]
for _ in range(reps):
    for f in files:
        with open(f, encoding="utf-8") as fh:
            yaml.load(fh, Loader=yaml.CSafeLoader)
PY

bench clinc150 "$work/clinc150/domain.yml" "$work/clinc150/data"
fd="$data/rasa/financial-demo"
bench financial-demo "$fd/domain.yml" "$fd/data"
