#!/bin/sh
# tests/cli_gpt2.sh - GPT2LM through `train --target gpt2` (issue 10), on
# the tiny random GPT-2 of tests/fixtures/gpt2: a LoRA fine-tune on a few
# dialogue lines lowers the loss, reports per-step metrics to the progress
# stream and `train generate` prints a reply; a merged LoRA and the
# `output` folder are Hugging Face folders, an adapter alone is PEFT's;
# full fine-tuning and continued pre-training run; each bad parameter
# stops with its message.
. "$top_srcdir/tests/lib.sh"

P="$top_builddir/plugins/gpt2/.libs"
FX="$top_srcdir/tests/fixtures/gpt2"
export TRAIN_RECIPE_PATH="$top_srcdir/recipes"
member() { tar -xzOf "$1" "$2"; }
S="$WORK/s"
mkdir -p "$S"
cp "$FX/dialogues.jsonl" "$S/"
cd "$S"

settings() { # settings NAME TRAINING-KEYS...: a settings file
	f="$S/$1.yml"
	shift
	{
		printf 'model: {model_path: %s}\n' "$FX/tiny"
		printf 'data: {train_file: dialogues.jsonl}\n'
		printf 'training: {%s}\n' "$*"
	} >"$f"
	echo "$f"
}

# ---- LoRA on dialogues, then a reply -------------------------------------
f=$(settings lora 'training_type: lora, num_epochs: 60, learning_rate: 0.02, batch_size: 2,
  max_length: 64, lora_r: 4, lora_alpha: 8, lora_dropout: 0.0, lora_target_modules: [c_attn, c_proj, c_fc],
  warmup_steps: 2, gradient_checkpointing: true, seed: 3')
status_is 0 "LoRA fine-tune (train --target gpt2)" "$TRAIN" --target gpt2 --config "$f" --plugin-path "$P" \
	--out "$WORK/models" --fixed-model-name lora --progress "$WORK/progress.jsonl"
check "max_length is clamped to n_positions" grep -q "using 32" "$WORK/err"
M="$WORK/models/lora.tar.gz"
member "$M" components/lm/train_log.json >"$WORK/log.json"
first=$(sed 's/.*"steps": *\[{[^}]*"loss": *\([0-9.e+-]*\).*/\1/' "$WORK/log.json")
last=$(sed 's/.*"loss": *\([0-9.e+-]*\)[^{]*}\].*/\1/' "$WORK/log.json")
check "the loss went down ($first -> $last)" awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a * 0.4) }'
for k in lr grad_norm tokens_per_second rss_bytes; do
	check "the progress stream has $k per step" grep -q "\"event\": \"step\".*\"$k\": [0-9]" "$WORK/progress.jsonl"
done
check "the adapter alone, in PEFT's layout" sh -c "tar -tzf '$M' | grep -q components/lm/adapter_model.safetensors"
member "$M" components/lm/adapter_config.json >"$WORK/ac.json"
check "adapter_config.json has r and target_modules" grep -q '"target_modules"' "$WORK/ac.json"
status_is 0 "generate a reply" "$TRAIN" generate "$M" --plugin-path "$P" --max-new-tokens 3 "How are you?"
check "the reply is the one learned ('I am ...')" grep -q '^I am' "$WORK/out"
status_is 0 "top-k sampling" "$TRAIN" generate "$M" --plugin-path "$P" --temperature 0.8 --top-k 5 \
	--seed 4 --max-new-tokens 6 "How are you?"

# ---- merged, with `output` ------------------------------------------------
f=$(settings merged 'training_type: lora, num_epochs: 2, learning_rate: 0.02, batch_size: 2,
  lora_r: 2, lora_target_modules: [q, v], lora_merge: true, output: out-merged, bf16: true')
status_is 0 "LoRA on q and v, merged" "$TRAIN" --target gpt2 --config "$f" --plugin-path "$P" \
	--out "$WORK/models" --fixed-model-name merged
for x in config.json model.safetensors vocab.json merges.txt; do
	check "output has $x" test -s "$S/out-merged/$x"
done
check "the merged model is a whole model" sh -c "tar -tzf '$WORK/models/merged.tar.gz' | grep -q components/lm/model.safetensors"
status_is 0 "generate from the merged model" "$TRAIN" generate "$WORK/models/merged.tar.gz" --plugin-path "$P" \
	--max-new-tokens 4 "Hi"

# ---- full fine-tuning and continued pre-training ---------------------------
f=$(settings full 'training_type: full, num_epochs: 1, learning_rate: 0.001, batch_size: 2,
  lr_scheduler_type: cosine, gradient_accumulation_steps: 2, output: out-full')
status_is 0 "full fine-tuning" "$TRAIN" --target gpt2 --config "$f" --plugin-path "$P" \
	--out "$WORK/models" --fixed-model-name full
check "a Hugging Face folder out" test -s "$S/out-full/model.safetensors"
printf 'Hello there! How are you today?\nI am fine, thank you. And you?\n' >"$S/corpus.txt"
cat >"$S/cpt.yml" <<YML
model: {model_path: $FX/tiny}
data: {train_file: corpus.txt}
training: {training_type: continued-pretrain, max_steps: 3, learning_rate: 0.001, batch_size: 2,
           max_length: 8, lr_scheduler_type: constant}
YML
status_is 0 "continued pre-training on plain text" "$TRAIN" --target gpt2 --config "$S/cpt.yml" \
	--plugin-path "$P" --out "$WORK/models" --fixed-model-name cpt
status_is 0 "generate a continuation" "$TRAIN" generate "$WORK/models/cpt.tar.gz" --plugin-path "$P" \
	--max-new-tokens 3 "Hello"
check "the continuation starts with the prompt" grep -q '^Hello' "$WORK/out"

# ---- bad parameters --------------------------------------------------------
bad() { # bad STATUS MESSAGE TRAINING-KEYS
	want=$1 msg=$2
	shift 2
	f=$(settings bad "$*")
	status_is "$want" "refused: $*" "$TRAIN" --target gpt2 --config "$f" --plugin-path "$P" --out "$WORK/models"
	check "  says: $msg" grep -qF "$msg" "$WORK/err"
}
bad 70 "fp16 is not supported on CPU; use bf16" "fp16: true"
bad 70 "fp16 and bf16 are both true" "fp16: true, bf16: true"
bad 70 "lora_* keys are for training_type lora" "training_type: full, lora_r: 8"
bad 70 "lora_* keys are for training_type lora" "training_type: continued-pretrain, lora_target_modules: [c_attn]"
bad 70 "lora_r must be from 1 to 4096" "training_type: lora, lora_r: 0"
bad 70 "lora_dropout must be in [0, 1)" "training_type: lora, lora_dropout: 1.5"
bad 70 "unknown module 'c_foo'" "training_type: lora, lora_target_modules: [c_foo]"
bad 70 "c_attn and its parts" "training_type: lora, lora_target_modules: [c_attn, q]"
bad 70 "training_type 'qlora' is not one of" "training_type: qlora"
bad 70 "lr_scheduler_type 'step' is not one of" "lr_scheduler_type: step"
bad 70 "learning_rate must be in (0, 1)" "learning_rate: -0.1"
bad 70 "batch_size must be from 1 to 4096" "batch_size: 0"
bad 70 "max_length must be from 2" "max_length: 1"
bad 70 "adam_beta1 and adam_beta2 must be in [0, 1)" "adam_beta2: 1.0"
bad 70 "gradient_accumulation_steps must be from 1" "gradient_accumulation_steps: 0"
bad 70 "num_epochs must be from 1" "num_epochs: 0"
bad 70 "weight_decay must be in [0, 1)" "weight_decay: 2"
bad 65 "batch_size" "batch_size: eight"
bad 65 "bf16" "bf16: maybe"
cat >"$S/nomodel.yml" <<YML
model: {model_path: $WORK/no-such-model}
data: {train_file: dialogues.jsonl}
YML
status_is 65 "a model folder that is not there" "$TRAIN" --target gpt2 --config "$S/nomodel.yml" \
	--plugin-path "$P" --out "$WORK/models"
check "  names it" grep -q "no-such-model" "$WORK/err"
mkdir -p "$S/emptymodel"
printf '{"n_layer": 1}\n' >"$S/emptymodel/config.json"
cat >"$S/empty.yml" <<YML
model: {model_path: emptymodel}
data: {train_file: dialogues.jsonl}
YML
status_is 70 "a model folder without its files" "$TRAIN" --target gpt2 --config "$S/empty.yml" \
	--plugin-path "$P" --out "$WORK/models"
check "  says which key is missing" grep -q 'config.json.*"n_embd" is missing\|"vocab_size" is missing' "$WORK/err"
printf '{"turns": "hi"}\n' >"$S/badturns.jsonl"
cat >"$S/badturns.yml" <<YML
model: {model_path: $FX/tiny}
data: {train_file: badturns.jsonl}
YML
status_is 70 "dialogue data with a bad line" "$TRAIN" --target gpt2 --config "$S/badturns.yml" \
	--plugin-path "$P" --out "$WORK/models"
check "  names file:line" grep -q 'badturns.jsonl:1: "turns" must be' "$WORK/err"
cd "$WORK"
finish
