#!/bin/bash
# End to end (issue 10): `train finetune MODEL --data FILE --mode ...`: a
# tiny basic-mode BERT run (the HF fixture), the settings it writes for each
# target, and one message per bad parameter or impossible combination, each
# naming the settings file and line.
. "${top_srcdir:-.}/tests/lib.sh"

export TRAIN_RECIPE_PATH="$top_srcdir/recipes"
HF="$top_srcdir/tests/fixtures/bert-tiny-hf"
DATA="${TRAIN_TEST_DATA:-$top_srcdir/tests/data}/bert/train.jsonl"
F=("$TRAIN" finetune --plugin-path "$top_builddir/plugins/bert/.libs" --cache-dir "$WORK/cache")
S="$WORK/settings.yml"

# basic mode: the tool's keys, everything else chosen
printf 'num_epochs: 1\nlearning_rate: 0.001\nbatch_size: 4\n' >"$S"
status_is 0 "a basic-mode BERT run" "${F[@]}" "$HF" --data "$DATA" --config "$S" --output "$WORK/run"
check "a model" ls "$WORK"/run/*-transformer.tar.gz
check "the settings written" grep -q 'num_epochs: 1, learning_rate: 0.001' "$WORK/run/finetune-settings.yml"
check "max_length cut to the model's 16 positions" grep -q 'max_length: 16' "$WORK/run/finetune-settings.yml"
check "the base is the model" grep -q "base_model: \".*bert-tiny-hf\"" "$WORK/run/finetune-settings.yml"
check "basic mode checkpoints BERT" grep -q 'gradient_checkpointing: true' "$WORK/run/finetune-settings.yml"
M=$(ls "$WORK"/run/*-transformer.tar.gz | head -1)
status_is 0 "predict with it" "$TRAIN" predict "$M" --plugin-path "$top_builddir/plugins/bert/.libs" text="hello there"
check "a label" grep -q '"name"' "$WORK/out"

# the defaults, and advanced mode's mapping
status_is 0 "basic defaults (dry run)" "${F[@]}" "$HF" --data "$DATA" --output "$WORK/o2" --dry-run
check "num_epochs 3, learning_rate 2e-5, batch 8" grep -q 'batch_size: 8, num_epochs: 3, learning_rate: 2e-05' "$WORK/out"
printf 'weight_decay: 0.05\nwarmup_steps: 3\ngradient_accumulation_steps: 2\nlr_scheduler_type: linear\nbf16: false\n' >"$S"
status_is 0 "advanced keys BERT honours" "${F[@]}" "$HF" --data "$DATA" --config "$S" --mode advanced \
	--output "$WORK/o3" --dry-run
check "mapped" grep -q 'gradient_accumulation_steps: 2, warmup_steps: 3, weight_decay: 0.05' "$WORK/out"
check "bf16 false: fp32" grep -q 'mixed_precision: false' "$WORK/out"
# BERT LoRA (advanced): the keys go to BertClassifier, a real run with them
printf 'num_epochs: 1\nlearning_rate: 0.001\nbatch_size: 4\nlora_r: 4\nlora_alpha: 8\nlora_target_modules: [query, value, output.dense]\n' >"$S"
status_is 0 "a BERT LoRA run" "${F[@]}" "$HF" --data "$DATA" --config "$S" --mode advanced --type lora \
	--output "$WORK/o4"
check "BERT LoRA keys" grep -q 'training_type: lora, lora_r: 4, lora_alpha: 8, lora_dropout: 0.1, lora_target_modules: \[query, value, output.dense\]' "$WORK/o4/finetune-settings.yml"
check "a LoRA model" ls "$WORK"/o4/*-transformer.tar.gz
G="$WORK/gpt2"
mkdir -p "$G"
echo '{"model_type": "gpt2", "vocab_size": 1000, "n_embd": 64, "n_layer": 2, "n_head": 2, "n_positions": 128}' >"$G/config.json"
printf 'lora_r: 8\nlora_alpha: 16\nlora_target_modules: [c_attn]\nlr_scheduler_type: cosine\ngradient_checkpointing: true\n' >"$S"
status_is 0 "GPT-2 LoRA settings" "${F[@]}" "$G" --data "$DATA" --config "$S" --mode advanced --type lora \
	--output "$WORK/o4" --dry-run
check "GPT-2's keys" grep -q 'training_type: lora' "$WORK/out"
check "the target list" grep -q 'lora_target_modules: \[c_attn\]' "$WORK/out"
check "checkpointing kept" grep -q 'gradient_checkpointing: true' "$WORK/out"
# and a real basic-mode LoRA run of the tiny GPT-2 fixture through recipes/gpt2.yml
printf '{"turns": ["hello", "hi there"]}\n{"turns": ["who are you", "a bot"]}\n' >"$WORK/turns.jsonl"
status_is 0 "a basic-mode GPT-2 LoRA run" "$TRAIN" finetune --plugin-path "$top_builddir/plugins/gpt2/.libs" \
	--cache-dir "$WORK/cache" "$top_srcdir/tests/fixtures/gpt2/tiny" --data "$WORK/turns.jsonl" --type lora \
	--output "$WORK/o6"
check "its PEFT adapter" test -s "$WORK/o6/adapter_model.safetensors"
check "a GPT-2 model" ls "$WORK"/o6/*-gpt2.tar.gz

# Mamba (issue 10): a tiny MambaLM from scratch, then LoRA on it through
# train finetune (its archive is the model); a Hugging Face Mamba folder
# (whose tokenizer MambaLM does not read) and a task head are refused
MP="$top_builddir/plugins/mamba/.libs"
cp "${TRAIN_TEST_DATA:-$top_srcdir/tests/data}/mamba/corpus.txt" "$WORK/mcorpus.txt"
printf 'model: {vocab_size: 100, d_model: 8, n_layers: 1, max_length: 16}\ntraining: {batch_size: 2, num_epochs: 1, eval_steps: 0, save_steps: 0}\ndata: {train_file: mcorpus.txt}\n' >"$WORK/m0.yml"
status_is 0 "a tiny MambaLM" "$TRAIN" --target mamba --config "$WORK/m0.yml" --plugin-path "$MP" \
	--cache-dir "$WORK/cache" --out "$WORK/mm" --fixed-model-name m0
printf 'num_epochs: 1\nbatch_size: 4\nmax_length: 16\nlearning_rate: 0.01\nlora_r: 2\nlora_target_modules: [in_proj, x_proj]\n' >"$S"
status_is 0 "a Mamba LoRA run" "$TRAIN" finetune --plugin-path "$MP" --cache-dir "$WORK/cache" "$WORK/mm/m0.tar.gz" \
	--data "$WORK/mcorpus.txt" --config "$S" --mode advanced --type lora --output "$WORK/o7"
check "Mamba LoRA keys" grep -q 'model_path: ".*m0.tar.gz".*' "$WORK/o7/finetune-settings.yml"
check "the target list" grep -q 'training_type: lora.*' "$WORK/o7/finetune-settings.yml"
check "a LoRA-trained Mamba" sh -c "tar -xzOf $WORK/o7/*-mamba.tar.gz components/lm/loss_log.json | grep -q '\"training_type\":\"lora\"'"
mkdir -p "$WORK/hfm"
echo '{"model_type": "mamba", "vocab_size": 50, "d_model": 16, "n_layer": 1}' >"$WORK/hfm/config.json"
status_is 69 "LoRA on a Hugging Face Mamba" "$TRAIN" finetune --plugin-path "$MP" "$WORK/hfm" --data "$WORK/mcorpus.txt" \
	--type lora --output "$WORK/o8" --dry-run
check "says why" grep -q 'continues only its own models' "$WORK/err"
status_is 69 "a task head on a Mamba" "$TRAIN" finetune --plugin-path "$MP" "$WORK/mm/m0.tar.gz" \
	--data "$WORK/mcorpus.txt" --type task --output "$WORK/o8" --dry-run
check "no task head" grep -q 'MambaLM has no task head' "$WORK/err"

# bad parameters, each at its line
bad() { # WANT-STATUS WHAT PATTERN MODE-ARGS... (settings in $S)
	local want=$1 what=$2 pat=$3
	shift 3
	status_is "$want" "$what" "${F[@]}" "$HF" --data "$DATA" --config "$S" --output "$WORK/o5" "$@"
	check "$what: the message" grep -q -- "$pat" "$WORK/err"
}
printf 'num_epochs: 2\nweight_decay: 0.1\n' >"$S"
bad 65 "an advanced key in basic mode" 'settings.yml:2: weight_decay is an advanced setting'
printf 'num_epochs: three\n' >"$S"
bad 65 "a wrong type" 'settings.yml:1: num_epochs must be an integer'
printf 'num_epochs: 1\nlearning_rate: 5\n' >"$S"
bad 65 "out of range" 'settings.yml:2: learning_rate must be in (0, 1\]'
printf 'epochs: 1\n' >"$S"
bad 65 "an unknown key" "settings.yml:1: unknown key 'epochs'"
printf 'fp16: true\nbf16: true\n' >"$S"
bad 65 "fp16 and bf16" 'settings.yml:1 and .*settings.yml:2: fp16 and bf16 are both true' --mode advanced
printf 'fp16: true\n' >"$S"
bad 65 "fp16 on the CPU" 'fp16 is not supported' --mode advanced
printf 'lora_r: 8\n' >"$S"
bad 65 "LoRA keys with a full fine-tune" 'settings.yml:1: lora_r is a LoRA setting, and this is a fine-tune run' --mode advanced
printf 'lr_scheduler_type: cosine\n' >"$S"
bad 65 "a schedule BERT cannot honour" "settings.yml:1: BertClassifier's schedule is linear" --mode advanced
printf 'lr_scheduler_type: exponential\n' >"$S"
bad 65 "an unknown schedule" 'settings.yml:1: lr_scheduler_type must be linear, cosine or constant' --mode advanced
printf 'adam_beta1: 0.8\n' >"$S"
bad 65 "betas BERT cannot honour" 'settings.yml:1: this component.s AdamW has betas 0.9 and 0.999' --mode advanced
printf 'max_length: 64\n' >"$S"
bad 65 "past the positions" 'settings.yml:1: max_length 64 is past the model.s 16 positions'
bad 64 "a bad mode" "mode is basic, advanced or expert, not 'wild'" --mode wild
bad 64 "expert without a recipe" 'expert needs --recipe' --mode expert
status_is 64 "no --data" "${F[@]}" "$HF"
finish
