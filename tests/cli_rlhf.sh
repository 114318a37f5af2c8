#!/bin/bash
# End to end (issue 9): `train --target rlhf` on the synthetic fixture in
# qa-feedback's form (tests/data/rlhf): the three stages train, their
# metrics reach --report, a rerun trains nothing, a changed PPO setting
# retrains only stage 3 and a changed SFT setting stages 1 and 3, the
# model answers a prompt, and training.skip_sft/skip_reward run; the same
# keys by --num-rl-steps, --set, --skip-sft and --skip-reward give the
# fingerprints of the file's (issue 9).
. "${top_srcdir:-.}/tests/lib.sh"

SRC=$(cd "$top_srcdir" && pwd)
P="$top_builddir/plugins/mamba/.libs:$top_builddir/plugins/rlhf/.libs"
export TRAIN_RECIPE_PATH="$top_srcdir/recipes"
S="$WORK/settings.yml"
write_settings() { # $1: num_rl_steps, $2: sft learning rate, $3: extra training keys
	cat >"$S" <<YML
data: {feedback_file: $SRC/tests/data/rlhf/feedback.json, heldout: 6}
training: {num_rl_steps: $1$3}
sft: {d_model: 16, n_layers: 1, batch_size: 4, num_epochs: 10, learning_rate: $2, eval_steps: 0}
reward: {d_model: 16, n_layers: 1, batch_size: 4, num_epochs: 8, learning_rate: 0.005}
ppo: {batch_size: 4, minibatch_size: 2, ppo_epochs: 2, max_new_tokens: 16}
YML
}
T=("$TRAIN" --target rlhf --config "$S" --plugin-path "$P" --cache-dir "$WORK/c" --out "$WORK/m")
status_of() { # REPORT NODE: that node's status
	tr -d '\n ' <"$1" | grep -o "\"name\":\"$2\",\"component\":\"[A-Za-z]*\",\"fingerprint\":\"[0-9a-f]*\",\"status\":\"[a-z]*\"" |
		sed 's/.*"status":"//; s/"$//'
}

write_settings 3 0.01 ""
status_is 0 "train --target rlhf" "${T[@]}" --report "$WORK/r1.json" --fixed-model-name rlhf
check "four nodes trained" test "$(count_status "$WORK/r1.json" trained)" -eq 4
check "the reward model's held-out accuracy is in the report" grep -q '"heldout_accuracy"' "$WORK/r1.json"
check "PPO's reward before and after is in the report" grep -q 'heldout_reward' "$WORK/r1.json"
check "the split is in the report" grep -q '"questions_heldout": 6' "$WORK/r1.json"
check "the log says the held-out accuracy" grep -q "pairwise accuracy: held out" "$WORK/err"
check "the log says reward and KL after PPO" grep -q "after PPO: held-out reward" "$WORK/err"

status_is 0 "a rerun" "${T[@]}" --report "$WORK/r2.json" --fixed-model-name rlhf
check "nothing trained" test "$(count_status "$WORK/r2.json" trained)" -eq 0
check "all four cached" test "$(count_status "$WORK/r2.json" cached)" -eq 4

write_settings 2 0.01 ""
status_is 0 "num_rl_steps changed" "${T[@]}" --report "$WORK/r3.json" --fixed-model-name rlhf
check "only ppo trained" test "$(count_status "$WORK/r3.json" trained)" -eq 1
check "it is ppo" test "$(status_of "$WORK/r3.json" ppo)" = trained
check "the reward model stayed cached" test "$(status_of "$WORK/r3.json" reward)" = cached

# --num-rl-steps N is training.num_rl_steps: only PPO retrains, and the
# fingerprints are those of the same value in the file.
fps() { grep -o '"fingerprint": "[0-9a-f]*"' "$1" | sort; }
status_is 0 "--num-rl-steps 1" "${T[@]}" --report "$WORK/f1.json" --fixed-model-name rlhf --num-rl-steps 1
check "only ppo trained" test "$(count_status "$WORK/f1.json" trained)" -eq 1
check "it is ppo" test "$(status_of "$WORK/f1.json" ppo)" = trained
write_settings 1 0.01 ""
status_is 0 "num_rl_steps: 1 in the file" "${T[@]}" --report "$WORK/f2.json" --fixed-model-name rlhf
check "nothing trained" test "$(count_status "$WORK/f2.json" trained)" -eq 0
check "the fingerprints of --num-rl-steps 1" test "$(fps "$WORK/f1.json")" = "$(fps "$WORK/f2.json")"
write_settings 2 0.01 ""
status_is 0 "--set training.num_rl_steps=1 over the file's 2" "${T[@]}" --report "$WORK/f3.json" \
	--fixed-model-name rlhf --set training.num_rl_steps=1
check "nothing trained" test "$(count_status "$WORK/f3.json" trained)" -eq 0
check "the same fingerprints" test "$(fps "$WORK/f1.json")" = "$(fps "$WORK/f3.json")"

write_settings 2 0.02 ""
status_is 0 "an SFT setting changed" "${T[@]}" --report "$WORK/r4.json" --fixed-model-name rlhf
check "sft and ppo trained" test "$(status_of "$WORK/r4.json" sft)$(status_of "$WORK/r4.json" ppo)" = trainedtrained
check "data and reward cached" test "$(status_of "$WORK/r4.json" data)$(status_of "$WORK/r4.json" reward)" = cachedcached

status_is 0 "the policy answers" "$TRAIN" predict "$WORK/m/rlhf.tar.gz" --plugin-path "$P" \
	"prompt=Question: What colour is the sky?
Answer: " seed=3
check "an answer line" grep -q '^answer: ' "$WORK/out"
mkdir -p "$WORK/x"
tar -xzf "$WORK/m/rlhf.tar.gz" -C "$WORK/x"
check "metrics persisted with the reward model" test -s "$WORK/x/components/reward/metrics.json"
check "the policy persisted" test -s "$WORK/x/components/ppo/model.safetensors"

write_settings 1 0.01 ", skip_sft: true, skip_reward: true"
status_is 0 "skip_sft and skip_reward" "${T[@]}" --report "$WORK/r5.json" --fixed-model-name skip
mkdir -p "$WORK/y"
tar -xzf "$WORK/m/skip.tar.gz" -C "$WORK/y"
check "sft trained no step" grep -q '"steps":0' "$WORK/y/components/sft/loss_log.json"
check "the reward model trained no step" grep -q '"steps": 0' "$WORK/r5.json"

write_settings 1 0.01 ""
status_is 0 "--skip-sft --skip-reward: the fingerprints of the file's keys" "${T[@]}" --dry-run -q \
	--skip-sft --skip-reward --fixed-model-name skip
status_is 1 "--skip-sft alone: another run" "${T[@]}" --dry-run -q --skip-sft --fixed-model-name skip
status_is 64 "--num-rl-steps not a number" "${T[@]}" --num-rl-steps many
check "names the flag" grep -q "num-rl-steps: 'many' is not a count" "$WORK/err"

echo "data: {feedback_file: $SRC/tests/data/rlhf/feedback.json, heldout: 100}" >"$S"
status_is 70 "more held out than there are questions" "${T[@]}"
check "says how many questions" grep -q "24 questions, not more than heldout = 100" "$WORK/err"
echo "ppo: {batch_sise: 4}" >"$S"
status_is 65 "an unknown settings key" "${T[@]}"
finish
