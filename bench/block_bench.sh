#!/bin/bash
# block_bench.sh BUILDDIR SRCDIR: one post-LN transformer encoder block
# (d=256, 4 heads, FFN 1024, GELU, seq 128, batch 16, dropout 0), forward +
# backward + AdamW per step, libtrain (bench/block_bench.c) against PyTorch
# (bench/block_torch.py: nn.TransformerEncoderLayer + optim.AdamW) with the
# same thread count, in fp32 and in bf16 (ours: TRAIN_PRECISION_BF16;
# torch: autocast to bf16).
#
# The two programs run alternately, BENCH_ROUNDS times (default 2), so that
# drifts of a shared machine hit both; each side keeps its best median.
# Environment: BENCH_THREADS (default: the cores), BENCH_STEPS (20),
# BENCH_ROUNDS (2), PYTHON (/usr/bin/python3).
#
# Both programs use libgomp (oneDNN here, torch itself), whose idle threads
# spin by default.  On a machine with few cores that slows torch's fp32 path
# a lot (its OpenBLAS threads compete with the spinning OpenMP threads),
# while passive waiting slows ours (many short parallel regions, each
# waking the sleeping thread).  So a last round runs both sides with
# OMP_WAIT_POLICY=passive, and a "note:" line compares each side in its
# better environment: the "bench" lines are what users get by default, the
# note is the comparison of the code.
set -eu
build=${1:-.}
src=${2:-.}
threads=${BENCH_THREADS:-$(nproc)}
steps=${BENCH_STEPS:-20}
rounds=${BENCH_ROUNDS:-2}
python=${PYTHON:-/usr/bin/python3}

ours="$build/bench/block_bench"
# Time the program itself, not libtool's wrapper script around it.
if [ -x "$build/bench/.libs/block_bench" ]; then
	ours="$build/bench/.libs/block_bench"
	export LD_LIBRARY_PATH="$build/libtrain/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
if [ ! -x "$ours" ]; then
	make -C "$build" bench/block_bench >/dev/null
	[ -x "$build/bench/.libs/block_bench" ] && ours="$build/bench/.libs/block_bench"
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/train-block-XXXXXX")
trap 'rm -rf "$work"' EXIT

have_torch=1
"$python" -c 'import torch' 2>/dev/null || have_torch=0

for r in $(seq 1 "$rounds"); do
	"$ours" --threads "$threads" --steps "$steps" --ops >"$work/ours$r"
	if [ "$have_torch" = 1 ]; then
		"$python" "$src/bench/block_torch.py" --threads "$threads" --steps "$steps" \
			>"$work/torch$r"
	fi
done

# best KEY FILES...: the highest "KEY steps/s X" over the rounds
best() {
	local key=$1
	shift
	cat "$@" | awk -v k="$key" '$1 == k && $2 == "steps/s" { if ($3 > b) b = $3 } END { printf "%.2f", b }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'; }

# Every round's tables (they show the spread), then the two lines.
for r in $(seq 1 "$rounds"); do
	[ "$rounds" -gt 1 ] && echo "--- round $r"
	grep -v ' steps/s ' "$work/ours$r"
	[ "$have_torch" = 1 ] && grep -v ' steps/s ' "$work/torch$r"
done
if [ "$have_torch" = 1 ]; then
	OMP_WAIT_POLICY=passive "$ours" --threads "$threads" --steps "$steps" >"$work/passive-ours"
	OMP_WAIT_POLICY=passive "$python" "$src/bench/block_torch.py" --threads "$threads" \
		--steps "$steps" >"$work/passive-torch"
	echo "--- OMP_WAIT_POLICY=passive, both sides"
	grep -v ' steps/s ' "$work/passive-ours" | tail -n +2
	grep -v ' steps/s ' "$work/passive-torch" | grep -v '^ \|^torch [0-9]'
	p_o32=$(best ours-fp32 "$work/passive-ours")
	p_o16=$(best ours-bf16 "$work/passive-ours")
	p_t32=$(best torch-fp32 "$work/passive-torch")
	p_t16=$(best torch-bf16 "$work/passive-torch")
fi
o32=$(best ours-fp32 "$work"/ours[0-9]*)
o16=$(best ours-bf16 "$work"/ours[0-9]*)
if [ "$have_torch" = 1 ]; then
	t32=$(best torch-fp32 "$work"/torch[0-9]*)
	t16=$(best torch-bf16 "$work"/torch[0-9]*)
	echo "bench block-fp32: ours $o32 steps/s, torch $t32 steps/s, ratio $(ratio "$o32" "$t32")"
	echo "bench block-bf16: ours $o16 steps/s, torch-autocast $t16 steps/s, ratio $(ratio "$o16" "$t16")"
	max() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (a > b ? a : b) }'; }
	b_o32=$(max "$o32" "$p_o32"); b_t32=$(max "$t32" "$p_t32")
	b_o16=$(max "$o16" "$p_o16"); b_t16=$(max "$t16" "$p_t16")
	echo "note: each side in its better environment (default or OMP_WAIT_POLICY=passive): fp32 ours $b_o32, torch $b_t32 steps/s, ratio $(ratio "$b_o32" "$b_t32"); bf16 ours $b_o16, torch-autocast $b_t16 steps/s, ratio $(ratio "$b_o16" "$b_t16")"
else
	echo "(PyTorch not found: apt-get install python3-torch)"
	echo "bench block-fp32: ours $o32 steps/s, torch n/a, ratio n/a"
	echo "bench block-bf16: ours $o16 steps/s, torch-autocast n/a, ratio n/a"
fi
