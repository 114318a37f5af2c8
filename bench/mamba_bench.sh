#!/bin/sh
# bench/mamba_bench.sh BUILDDIR SRCDIR - Mamba, character-level tinyshakespeare
# (issue 7): plugins/mamba's MambaLM against the same model in plain PyTorch
# (bench/mamba_torch.py, a sequential scan) on the same data (first 90 %
# train, last 10 % validation), 4 layers, d_model 128, context 256, batch 8,
# AdamW at 2e-3 after 20 warm-up steps, the same wall-time budget
# (MAMBA_BENCH_SECONDS, default 180) and threads (MAMBA_BENCH_THREADS, 2).
# Prints training tokens/s and the validation loss (the first 20 batches of
# validation windows) reached by each, then
#   bench mamba-train: ours X tok/s, torch Y tok/s, ratio R
#   bench mamba-val-loss: ours X, torch Y, ratio R
# The data folder is $TRAIN_SHARED_DATA, default SRCDIR/../shared/data.
# Exits 77 without the data or without PyTorch.
set -eu
build=${1:-.}
src=${2:-.}
data="${TRAIN_SHARED_DATA:-$src/../shared/data}/tinyshakespeare/input.txt"
secs=${MAMBA_BENCH_SECONDS:-180}
threads=${MAMBA_BENCH_THREADS:-2}
if [ ! -r "$data" ]; then echo "mamba_bench: no $data: skipped"; exit 77; fi
if ! /usr/bin/python3 -c 'import torch' 2>/dev/null; then echo "mamba_bench: no PyTorch: skipped"; exit 77; fi
data=$(cd "$(dirname "$data")" && pwd)/input.txt
work=$(mktemp -d "${TMPDIR:-/tmp}/mamba-bench-XXXXXX")
trap 'rm -rf "$work"' EXIT
cat >"$work/recipe.yml" <<EOR
version: 1
name: mamba-bench
train:
  targets: [lm]
  nodes:
    lm:
      component: MambaLM
      config:
        train_file: $data
        d_model: 128
        n_layers: 4
        max_length: 256
        batch_size: 8
        learning_rate: 0.002
        warmup_steps: 20
        max_steps: 100000
        max_seconds: $secs
        eval_steps: 0
        eval_batches: 20
        save_steps: 0
        threads: $threads
        log_file: log.json
EOR
echo "load before the run: $(cat /proc/loadavg)"
build=$(cd "$build" && pwd)
src=$(cd "$src" && pwd)
# the log (log_file) goes to the current folder
(cd "$work" && "$build/train" --recipe "$work/recipe.yml" --plugin-path "$build/plugins/mamba/.libs" \
	--out "$work/models" --cache-dir "$work/cache" --force -q)
ours_tps=$(/usr/bin/python3 -c 'import json,sys; print("%.1f" % json.load(open(sys.argv[1]))["tokens_per_second"])' "$work/log.json")
ours_val=$(/usr/bin/python3 -c 'import json,sys; print("%.4f" % json.load(open(sys.argv[1]))["validation"][-1][1])' "$work/log.json")
ours_steps=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["steps"])' "$work/log.json")
echo "ours: tokens_per_second $ours_tps val_loss $ours_val steps $ours_steps"
echo "load before the reference: $(cat /proc/loadavg)"
/usr/bin/python3 "$src/bench/mamba_torch.py" "$data" "$secs" "$threads" >"$work/torch.out"
cat "$work/torch.out"
torch_tps=$(sed -n 's/^torch: tokens_per_second \([0-9.]*\).*/\1/p' "$work/torch.out")
torch_val=$(sed -n 's/^torch: .*val_loss \([0-9.]*\).*/\1/p' "$work/torch.out")
echo "load after: $(cat /proc/loadavg)"
awk -v a="$ours_tps" -v b="$torch_tps" 'BEGIN { printf "bench mamba-train: ours %.0f tok/s, torch %.0f tok/s, ratio %.2f\n", a, b, a / b }'
awk -v a="$ours_val" -v b="$torch_val" 'BEGIN { printf "bench mamba-val-loss: ours %.4f, torch %.4f, ratio %.3f\n", a, b, a / b }'
