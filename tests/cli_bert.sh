#!/bin/bash
# End to end (issue 7): the bert plugin through the `train` program on
# tests/data/bert: masked-LM pretraining of a bert-tiny from scratch, then a
# classifier on its output; a rerun trains nothing; changing only the
# classifier's num_epochs keeps the pretraining cached; predict; the model
# holds Hugging Face folders; a local HF checkpoint (the test fixture) as
# base_model; clear errors for an unknown base_model, a wrong type, a
# missing corpus.  (tests/data/bert/transformer.yml stands in for
# recipes/transformer.yml with its $config values written in.)
. "${top_srcdir:-.}/tests/lib.sh"

P="$top_builddir/plugins/bert/.libs"
D="$WORK/data"
cp -r "${TRAIN_TEST_DATA:-$top_srcdir/tests/data}/bert" "$D"
T=("$TRAIN" --plugin-path "$P" --cache-dir "$WORK/cache" --out "$WORK/models" -q --threads 1)

status_is 0 "pretrain and fine-tune" "${T[@]}" --recipe "$D/transformer.yml" --report "$WORK/r1.json"
check "both nodes trained" test "$(count_status "$WORK/r1.json" trained)" -eq 2
status_is 0 "rerun" "${T[@]}" --recipe "$D/transformer.yml" --report "$WORK/r2.json"
check "rerun trained nothing" test "$(count_status "$WORK/r2.json" cached)" -eq 2

sed 's/num_labels: 3, num_epochs: 3/num_labels: 3, num_epochs: 2/' "$D/transformer.yml" >"$D/epochs.yml"
status_is 1 "dry run: only the classifier would train" "${T[@]}" --recipe "$D/epochs.yml" --dry-run
status_is 0 "fewer classifier epochs" "${T[@]}" --recipe "$D/epochs.yml" --report "$WORK/r3.json"
check "pretraining stayed cached" grep -A1 '"name": "pretrain"' "$WORK/r3.json" | grep -q cached
check "the classifier retrained" test "$(count_status "$WORK/r3.json" trained)" -eq 1

M=$(ls -t "$WORK"/models/*.tar.gz | head -1)
status_is 0 "predict" "$TRAIN" predict "$M" --plugin-path "$P" text="book a flight to rome"
check "predict gives a label and a ranking" grep -q '"ranking"' "$WORK/out"
tar xzf "$M" -C "$WORK" components/classifier
for f in config.json vocab.txt model.safetensors loss_log.json; do
	check "classifier folder has $f" test -s "$WORK/components/classifier/$f"
done
check "config.json names the architecture" grep -q BertForSequenceClassification "$WORK/components/classifier/config.json"
check "config.json has the labels" grep -q '"book_flight"' "$WORK/components/classifier/config.json"
check "the loss log has validation losses" grep -q '"val_loss"' "$WORK/components/classifier/loss_log.json"

# A local Hugging Face checkpoint as the base (its MLM epochs: 0, passed on).
sed -e "s|base_model: bert-tiny|base_model: $top_srcdir/tests/fixtures/bert-tiny-hf|" \
	-e 's/max_length: 32/max_length: 16/g' "$D/transformer.yml" >"$D/hf.yml"
status_is 0 "fine-tune the HF fixture checkpoint" "${T[@]}" --recipe "$D/hf.yml" --report "$WORK/r4.json"
M=$(ls -t "$WORK"/models/*.tar.gz | head -1)
rm -rf "$WORK/components"
tar xzf "$M" -C "$WORK" components/classifier
check "saved with the checkpoint's hidden size" grep -q '"hidden_size": 24' "$WORK/components/classifier/config.json"
check "saved with the checkpoint's vocabulary" cmp -s "$WORK/components/classifier/vocab.txt" \
	"$top_srcdir/tests/fixtures/bert-tiny-hf/vocab.txt"

# Errors.
sed 's/base_model: bert-tiny/base_model: bert-base-uncased/' "$D/transformer.yml" >"$D/bad1.yml"
status_is 70 "a model that is not here" "${T[@]}" --recipe "$D/bad1.yml"
check "says it is not downloaded" grep -q 'bert-base-uncased.*neither a built-in size.*nothing is downloaded' "$WORK/err"
sed 's/num_epochs: 2,/num_epochs: two,/' "$D/transformer.yml" >"$D/bad2.yml"
status_is 65 "a wrong type" "${T[@]}" --recipe "$D/bad2.yml"
check "names the key" grep -q 'bad2.yml:.*num_epochs' "$WORK/err"
sed 's/train_file: corpus.txt/train_file: missing.txt/' "$D/transformer.yml" >"$D/bad3.yml"
status_is 65 "a missing corpus" "${T[@]}" --recipe "$D/bad3.yml"
check "names the file" grep -q 'missing.txt' "$WORK/err"

# The target: recipes/transformer.yml with a settings file (PATHs in it are
# relative to it); the issue's transfer_train.yaml names a model that is not
# here.
export TRAIN_RECIPE_PATH="$top_srcdir/recipes"
cat >"$D/settings.yml" <<'YML'
model: {base_model: bert-tiny, num_labels: 3, max_length: 32, vocab_size: 200}
training: {batch_size: 8, num_epochs: 2, learning_rate: 0.001, seed: 3, eval_steps: 2}
pretraining: {num_epochs: 1, batch_size: 8}
data: {train_file: train.jsonl, pretrain_file: corpus.txt}
YML
TT=("$TRAIN" --target transformer --plugin-path "$P" --cache-dir "$WORK/cache" --out "$WORK/models" -q --threads 1)
status_is 0 "--target transformer" "${TT[@]}" --config "$D/settings.yml" --report "$WORK/r5.json"
check "target: both nodes trained" test "$(count_status "$WORK/r5.json" trained)" -eq 2
sed -i 's/num_epochs: 2, learning_rate/num_epochs: 3, learning_rate/' "$D/settings.yml"
status_is 0 "target: training.num_epochs changed" "${TT[@]}" --config "$D/settings.yml" --report "$WORK/r6.json"
check "target: pretraining stayed cached" grep -A1 '"name": "pretrain"' "$WORK/r6.json" | grep -q cached
check "target: the classifier retrained" test "$(count_status "$WORK/r6.json" trained)" -eq 1
cat >"$D/transfer_train.yaml" <<'YML'
model:    {base_model: "bert-base-uncased", num_labels: 3}
training: {batch_size: 16, num_epochs: 5, learning_rate: 0.00005}
YML
status_is 70 "target: a model that is not downloaded" "${TT[@]}" --config "$D/transfer_train.yaml"
check "target: says so" grep -q 'bert-base-uncased.*nothing is downloaded' "$WORK/err"
printf 'model: {base_model: bert-tiny, n_layers: 4}\n' >"$D/bad4.yml"
status_is 65 "target: an unknown settings key" "${TT[@]}" --config "$D/bad4.yml"
check "target: lists the known keys" grep -q "unknown key 'model.n_layers'.*known keys: data.pretrain_file" "$WORK/err"

# LoRA (issue 10): adapters on query and value with checkpointing, saved as
# the base's files beside PEFT's adapter files; predict merges them.
cat >"$D/lora.yml" <<'YML'
model: {base_model: bert-tiny, num_labels: 3, max_length: 32, vocab_size: 200}
training: {batch_size: 8, num_epochs: 2, learning_rate: 0.001, seed: 3, training_type: lora, lora_r: 4,
           lora_alpha: 8, lora_target_modules: [query, value], lora_merge: false, gradient_checkpointing: true}
pretraining: {num_epochs: 1, batch_size: 8}
data: {train_file: train.jsonl, pretrain_file: corpus.txt}
YML
status_is 0 "target: LoRA with checkpointing" "${TT[@]}" --config "$D/lora.yml" --report "$WORK/r7.json"
check "LoRA: pretraining stayed cached" grep -A1 '"name": "pretrain"' "$WORK/r7.json" | grep -q cached
M=$(ls -t "$WORK"/models/*.tar.gz | head -1)
rm -rf "$WORK/components"
tar xzf "$M" -C "$WORK" components/classifier
for f in adapter_config.json adapter_model.safetensors model.safetensors config.json; do
	check "LoRA: the folder has $f" test -s "$WORK/components/classifier/$f"
done
check "LoRA: PEFT's config" grep -q '"peft_type": "LORA"' "$WORK/components/classifier/adapter_config.json"
check "LoRA: PEFT's tensor names" grep -q 'base_model.model.bert.encoder.layer.1.attention.self.value.lora_B.weight' \
	"$WORK/components/classifier/adapter_model.safetensors"
status_is 0 "LoRA: predict" "$TRAIN" predict "$M" --plugin-path "$P" text="book a flight to rome"
check "LoRA: predict gives a ranking" grep -q '"ranking"' "$WORK/out"
sed 's/training_type: lora, //' "$D/lora.yml" >"$D/bad5.yml"
status_is 70 "LoRA keys with a full fine-tune" "${TT[@]}" --config "$D/bad5.yml"
check "LoRA: says so" grep -q 'lora_r is a LoRA setting and training_type is full' "$WORK/err"
sed 's/\[query, value\]/[query, pooler]/' "$D/lora.yml" >"$D/bad6.yml"
status_is 70 "LoRA: an unknown module" "${TT[@]}" --config "$D/bad6.yml"
check "LoRA: names it" grep -q 'lora_target_modules: entry 2 (pooler)' "$WORK/err"
finish
