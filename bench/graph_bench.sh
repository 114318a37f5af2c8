#!/bin/bash
# graph_bench.sh BUILDDIR SRCDIR: the cost of a retrain where nothing
# changed, against the first run of the same graph, in one run.
#
# For 15, 50 and 500 nodes of test components: the wall time of the first run
# (everything trains and is cached) and of the median of 11 fully cached
# runs (fingerprint every node, find it in LMDB, restore its outputs and
# state, write the model).  Per-node cost is the slope between the 15- and
# 500-node runs, cached (fingerprint + cache overhead) and first.  Prints one "bench NAME: ..." line each.
set -eu
build=${1:-.}
src=${2:-.}
TRAIN="$build/train"
# Time the program itself, not libtool's wrapper script around it.
if [ -x "$build/.libs/train" ]; then
	TRAIN="$build/.libs/train"
	export LD_LIBRARY_PATH="$build/libtrain/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
plugins="$build/tests/plugins/.libs"
if [ ! -e "$plugins/testparts.so" ]; then
	make -C "$build" tests/plugins/testparts.la >/dev/null
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/train-bench-XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/p"
ln -s "$plugins/testparts.so" "$work/p/testparts.so"

# bash's own clock: no subprocess between the two readings.
now_ms() { local t=${EPOCHREALTIME/[.,]/}; echo "$((t / 1000)).$(printf '%03d' $((t % 1000)))"; }

# time_run N CACHE: wall milliseconds of one `train` run
time_run() {
	local t0 t1
	t0=$(now_ms)
	"$TRAIN" --recipe "$work/r$1.yml" --plugin-path "$work/p" --cache-dir "$2" \
		--out "$work/models$1" -q
	t1=$(now_ms)
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }'
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

declare -A first cached
for n in 15 50 500; do
	sh "$src/bench/make_recipe.sh" "$n" >"$work/r$n.yml"
	first[$n]=$(time_run "$n" "$work/cache$n")
	# The cached runs must not train anything.
	"$TRAIN" --recipe "$work/r$n.yml" --plugin-path "$work/p" --cache-dir "$work/cache$n" \
		--out "$work/models$n" -q --dry-run || { echo "bench: cached run would train" >&2; exit 1; }
done
# Cached runs, the two sizes interleaved so that drifts of the machine hit
# both alike; one warm-up round first.
for rep in 0 1 2 3 4 5 6 7 8 9 10 11; do
	for n in 15 50 500; do
		t=$(time_run "$n" "$work/cache$n")
		[ "$rep" -gt 0 ] && echo "$t" >>"$work/t$n"
	done
done
for n in 15 50 500; do cached[$n]=$(median <"$work/t$n"); done
per_node=$(awk -v a="${cached[15]}" -v b="${cached[500]}" 'BEGIN { printf "%.4f", (b - a) / 485 }')
per_node_first=$(awk -v a="${first[15]}" -v b="${first[500]}" 'BEGIN { printf "%.4f", (b - a) / 485 }')
for n in 15 50 500; do
	ratio=$(awk -v a="${cached[$n]}" -v b="${first[$n]}" 'BEGIN { printf "%.3f", a / b }')
	echo "bench cached-retrain-$n: ours ${cached[$n]} ms, first-run ${first[$n]} ms, ratio $ratio"
done
echo "bench per-node: ours $per_node ms/node cached, first-run $per_node_first ms/node, ratio $(awk -v a="$per_node" -v b="$per_node_first" 'BEGIN { printf "%.3f", a / b }')"
echo "target: cached retrain of 15 nodes under 50 ms: $(awk -v a="${cached[15]}" 'BEGIN { print (a < 50) ? "met" : "NOT met" }')"
