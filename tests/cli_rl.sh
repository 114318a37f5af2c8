#!/bin/bash
# End to end (issue 9): `train --target rl --config rl_train.yaml` (MARK's
# keys) trains PPO on CartPole-v1 through the envs and ppo plugins; `train
# test rl` plays the model; a run killed with -9 after a checkpoint and
# continued with --resume gives the same policy, byte for byte, as an
# uninterrupted run.
. "${top_srcdir:-.}/tests/lib.sh"

P="$top_builddir/plugins/envs/.libs:$top_builddir/plugins/ppo/.libs"
export TRAIN_RECIPE_PATH="$top_srcdir/recipes"
S="$WORK/rl_train.yaml"
cat >"$S" <<'YML'
model: {policy_model: ppo, hidden_dim: 32}
training: {total_timesteps: 8192, learning_rate: 0.001}
YML
T=("$TRAIN" --target rl --config "$S" --plugin-path "$P")

status_is 0 "train --target rl" "${T[@]}" --cache-dir "$WORK/c1" --out "$WORK/m1" \
	--report "$WORK/r1.json"
check "the policy trained" test "$(count_status "$WORK/r1.json" trained)" -eq 1
check "its report names the steps" grep -q '"steps": 8192' "$WORK/err"
status_is 0 "test rl" "$TRAIN" test rl "$WORK/m1/"*.tar.gz --episodes 10 --plugin-path "$P"
check "mean and spread printed" grep -Eq '^CartPole-v1: 10 episodes, return mean [0-9.]+, std [0-9.]+' "$WORK/out"
status_is 0 "cached on a second run" "${T[@]}" --cache-dir "$WORK/c1" --out "$WORK/m1" -q --dry-run
check "no checkpoint left behind" test -z "$(ls -A "$WORK/c1/checkpoints" 2>/dev/null)"

echo "training: {num_envs: 8}" >"$WORK/bad.yml"
status_is 65 "an unknown settings key" "$TRAIN" --target rl --config "$WORK/bad.yml" \
	--plugin-path "$P" --cache-dir "$WORK/c1" --out "$WORK/m1"
cat >"$WORK/bad2.yml" <<'YML'
model: {policy_model: dqn}
YML
status_is 70 "policy_model other than ppo" "$TRAIN" --target rl --config "$WORK/bad2.yml" \
	--plugin-path "$P" --cache-dir "$WORK/c1" --out "$WORK/m1"
check "says only ppo" grep -q "only 'ppo'" "$WORK/err"

# Kill -9 after the first checkpoint (50 iterations of 512 steps), resume.
cat >"$S" <<'YML'
model: {hidden_dim: 32}
training: {total_timesteps: 71680}
YML
status_is 0 "uninterrupted" "${T[@]}" --cache-dir "$WORK/c2" --out "$WORK/m2" -q
"${T[@]}" --cache-dir "$WORK/c3" --out "$WORK/m3" -q 2>/dev/null &
pid=$!
for _ in $(seq 600); do
	ls "$WORK"/c3/checkpoints/*/ppo.ckpt.safetensors >/dev/null 2>&1 && break
	sleep 0.05
done
kill -9 "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
if ls "$WORK"/c3/checkpoints/*/ppo.ckpt.safetensors >/dev/null 2>&1; then
	status_is 0 "resumed" "${T[@]}" --cache-dir "$WORK/c3" --out "$WORK/m3" --resume -v
	check "it said where it resumed" grep -q "resuming at iteration" "$WORK/err"
	mkdir -p "$WORK/x2" "$WORK/x3"
	tar -xzf "$WORK/m2/"*.tar.gz -C "$WORK/x2"
	tar -xzf "$WORK/m3/"*.tar.gz -C "$WORK/x3"
	check "the same policy, byte for byte" cmp "$WORK/x2/components/policy/policy.safetensors" \
		"$WORK/x3/components/policy/policy.safetensors"
else
	echo "note: the run ended before its first checkpoint was seen; resume not exercised"
fi

echo "$n_ok passed, $n_fail failed"
[ "$n_fail" -eq 0 ]
