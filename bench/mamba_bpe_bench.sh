#!/bin/sh
# bench/mamba_bpe_bench.sh BUILDDIR SRCDIR - Mamba on tinyshakespeare with
# the byte-level BPE tokenizer against the same model on characters
# (issue 7): both plugins/mamba's MambaLM, 4 layers, d_model 128, context
# 256 tokens, batch 8, AdamW at 2e-3 after 20 warm-up steps, first 90 % of
# the bytes to train (and to learn the BPE from), last 10 % to validate,
# the same wall-time budget each (MAMBA_BENCH_SECONDS, default 180) and
# threads (MAMBA_BENCH_THREADS, 2); BPE at MAMBA_BPE_VOCAB tokens (default
# 1024).  The validation is the whole validation text for both (eval_batches
# 0), in bits per character, which does not depend on the tokenizer.
# Prints the BPE's training time, then
#   bench mamba-bpe-val-bpc: ours-bpe X bpc, ours-char Y bpc, ratio R
# The data folder is $TRAIN_SHARED_DATA, default SRCDIR/../shared/data.
# Exits 77 without the data.
set -eu
build=${1:-.}
src=${2:-.}
data="${TRAIN_SHARED_DATA:-$src/../shared/data}/tinyshakespeare/input.txt"
secs=${MAMBA_BENCH_SECONDS:-180}
threads=${MAMBA_BENCH_THREADS:-2}
vocab=${MAMBA_BPE_VOCAB:-1024}
if [ ! -r "$data" ]; then echo "mamba_bpe_bench: no $data: skipped"; exit 77; fi
data=$(cd "$(dirname "$data")" && pwd)/input.txt
build=$(cd "$build" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/mamba-bpe-bench-XXXXXX")
trap 'rm -rf "$work"' EXIT
run() { # run NAME TOKENIZER VOCAB: train, the log in $work/NAME.json
	cat >"$work/$1.yml" <<EOR
version: 1
name: mamba-bpe-bench
train:
  targets: [lm]
  nodes:
    lm:
      component: MambaLM
      config:
        train_file: $data
        tokenizer: $2
        vocab_size: $3
        d_model: 128
        n_layers: 4
        max_length: 256
        batch_size: 8
        learning_rate: 0.002
        warmup_steps: 20
        max_steps: 100000
        max_seconds: $secs
        eval_steps: 0
        eval_batches: 0
        save_steps: 0
        threads: $threads
        log_file: $1.json
EOR
	echo "load before $1: $(cat /proc/loadavg)"
	(cd "$work" && "$build/train" --recipe "$work/$1.yml" --plugin-path "$build/plugins/mamba/.libs" \
		--out "$work/models" --cache-dir "$work/cache" --force -q)
	/usr/bin/python3 -c 'import json,sys
j = json.load(open(sys.argv[1]))
print("%s: tokenizer %s vocabulary %d steps %d tokens_per_second %.0f val_loss %.4f val_bpc %.4f%s" % (
    sys.argv[2], j["tokenizer"], j["vocabulary"], j["steps"], j["tokens_per_second"],
    j["validation"][-1][1], j["validation_bpc"][-1][1],
    " tokenizer_seconds %.3f merges %d" % (j["tokenizer_seconds"], j["merges"]) if j["tokenizer"] == "bpe" else ""))' \
		"$work/$1.json" "$1"
}
run bpe bpe "$vocab" | tee "$work/bpe.out"
run char char 5000 | tee "$work/char.out"
echo "load after: $(cat /proc/loadavg)"
b=$(sed -n 's/.* val_bpc \([0-9.]*\).*/\1/p' "$work/bpe.out")
c=$(sed -n 's/.* val_bpc \([0-9.]*\).*/\1/p' "$work/char.out")
t=$(sed -n 's/.* tokenizer_seconds \([0-9.]*\).*/\1/p' "$work/bpe.out")
echo "BPE training time (tinyshakespeare's first 90 %, $vocab tokens): $t s"
awk -v a="$b" -v b="$c" 'BEGIN { printf "bench mamba-bpe-val-bpc: ours-bpe %.4f bpc, ours-char %.4f bpc, ratio %.3f\n", a, b, a / b }'
