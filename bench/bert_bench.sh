#!/bin/bash
# bert_bench.sh BUILDDIR SRCDIR: training steps/s of a bert-mini-shaped
# classifier (4 layers, 256 hidden, 4 heads, batch 32 x 32 tokens, 150
# labels, fp32), ours (bench/bert_bench.c) against the same model in
# PyTorch (bench/bert_torch.py), alternately BENCH_ROUNDS times (default 2),
# each side's best kept.  BENCH_THREADS (2), BENCH_STEPS (20), PYTHON.
set -eu
build=${1:-.}
src=${2:-.}
threads=${BENCH_THREADS:-2}
steps=${BENCH_STEPS:-20}
rounds=${BENCH_ROUNDS:-2}
python=${PYTHON:-/usr/bin/python3}
best() { awk -v a="$1" -v b="$2" 'BEGIN { print (a > b ? a : b) }'; }
ours=0
ref=0
for r in $(seq "$rounds"); do
	o=$("$build/bench/bert_bench" "$threads" "$steps" | awk '{print $2}')
	t=$("$python" "$src/bench/bert_torch.py" "$threads" "$steps" | awk '{print $2}')
	echo "round $r: ours $o steps/s, torch $t steps/s"
	ours=$(best "$ours" "$o")
	ref=$(best "$ref" "$t")
done
ratio=$(awk -v a="$ours" -v b="$ref" 'BEGIN { printf "%.2f", a / b }')
echo "bench bert-train: ours $ours steps/s, torch $ref steps/s, ratio $ratio"
