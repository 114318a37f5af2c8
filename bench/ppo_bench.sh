#!/bin/bash
# bench/ppo_bench.sh BUILDDIR SRCDIR (issue 9): PPO on CartPole-v1, ours
# (train with plugins/ppo and plugins/envs) against a CleanRL-style PyTorch
# PPO on a NumPy CartPole (bench/ppo_torch.py, 2 threads), the same
# hyperparameters, side by side, seeds 1 2 3, 500k steps each:
# steps per second, wall time, the step and time at which the mean of the
# last 100 training episodes first reaches 475, the final 100-episode mean.
# Wall times on a shared machine depend on its load, so CPU seconds are
# given beside them (the torch process's CPU counts both its threads).
#
#   PPO_BENCH_SEEDS="1 2 3"  PPO_BENCH_STEPS=500000
#   PPO_BENCH_TORCH_STEPS=$PPO_BENCH_STEPS (fewer: torch's steps/s only)
#   PPO_BENCH_TORCH_THREADS=2
set -eu
B=${1:-.}
S=${2:-.}
SEEDS=${PPO_BENCH_SEEDS:-1 2 3}
STEPS=${PPO_BENCH_STEPS:-500000}
TSTEPS=${PPO_BENCH_TORCH_STEPS:-$STEPS}
THREADS=${PPO_BENCH_TORCH_THREADS:-2}
PY=/usr/bin/python3
W=$(mktemp -d "${TMPDIR:-/tmp}/ppo-bench-XXXXXX")
trap 'rm -rf "$W"' EXIT
P="$B/plugins/envs/.libs:$B/plugins/ppo/.libs"

for s in $SEEDS; do
	cat >"$W/r$s.yml" <<YML
version: 1
name: ppo-bench
train:
  targets: [policy]
  nodes:
    policy:
      component: PPO
      config: {seed: $s, total_timesteps: $STEPS, solved_return: 475}
YML
	"$B/train" --recipe "$W/r$s.yml" --plugin-path "$P" --cache-dir "$W/cache" \
		--out "$W/models" --force 2>"$W/log$s" >/dev/null
	sed -n 's/^train: policy: //p' "$W/log$s" | grep '^{' >"$W/ours$s.json"
done
torch_ok=1
if ! $PY -c 'import torch, numpy' 2>/dev/null; then
	echo "note: no torch/numpy for $PY: the reference is skipped"
	torch_ok=0
fi
if [ $torch_ok = 1 ]; then
	for s in $SEEDS; do
		$PY "$S/bench/ppo_torch.py" "$s" "$TSTEPS" "$THREADS" >"$W/torch$s.json"
	done
fi

$PY - "$W" "$SEEDS" "$torch_ok" "$STEPS" "$TSTEPS" <<'PYEOF'
import json, sys, statistics as st
w, seeds, tok, steps, tsteps = sys.argv[1], sys.argv[2].split(), sys.argv[3] == "1", sys.argv[4], sys.argv[5]
def load(kind, s):
    try:
        return json.load(open(f"{w}/{kind}{s}.json"))
    except Exception:
        return None
def f(x, fmt="{:.1f}"):
    return "-" if x is None else fmt.format(x)
rows = []
print(f"PPO CartPole-v1, {steps} steps (torch: {tsteps}); load-dependent wall times, CPU beside")
print(f"{'run':<10}{'steps/s':>10}{'steps/cpu-s':>12}{'wall s':>9}{'cpu s':>8}{'solved@step':>12}{'solved wall s':>14}{'solved cpu s':>13}{'final mean100':>14}")
agg = {"ours": [], "torch": []}
for kind in ("ours", "torch"):
    if kind == "torch" and not tok:
        continue
    for s in seeds:
        r = load(kind, s)
        if not r:
            print(f"{kind} {s}: no result")
            continue
        agg[kind].append(r)
        print(f"{kind+' '+s:<10}{f(r['steps_per_second'],'{:.0f}'):>10}{f(r.get('steps_per_cpu_second'),'{:.0f}'):>12}"
              f"{f(r['seconds'],'{:.2f}'):>9}{f(r.get('cpu_seconds'),'{:.2f}'):>8}{f(r['solved_at_step'],'{:d}'):>12}"
              f"{f(r['solved_at_seconds'],'{:.2f}'):>14}{f(r.get('solved_at_cpu_seconds'),'{:.2f}'):>13}{f(r['mean_return_100'],'{:.1f}'):>14}")
def med(kind, key):
    v = [r[key] for r in agg[kind] if r.get(key) is not None]
    return st.median(v) if v else None
o, t = med("ours", "steps_per_second"), med("torch", "steps_per_second")
oc, tc = med("ours", "steps_per_cpu_second"), med("torch", "steps_per_cpu_second")
print(f"median steps/s: ours {f(o,'{:.0f}')}, torch {f(t,'{:.0f}')}; per CPU second: ours {f(oc,'{:.0f}')}, torch {f(tc,'{:.0f}')}")
so, stt = med("ours", "solved_at_seconds"), med("torch", "solved_at_seconds")
sc, stc = med("ours", "solved_at_cpu_seconds"), med("torch", "solved_at_cpu_seconds")
print(f"median solve time: ours {f(so,'{:.2f}')} s wall / {f(sc,'{:.2f}')} s CPU, torch {f(stt,'{:.2f}')} s wall / {f(stc,'{:.2f}')} s CPU")
print(f"bench ppo-cartpole: ours {f(o,'{:.0f}')} steps/s, torch {f(t,'{:.0f}')} steps/s, ratio {f(o/t if o and t else None,'{:.1f}')}")
print(f"bench ppo-cartpole-solve: ours {f(so,'{:.2f}')} s, torch {f(stt,'{:.2f}')} s, ratio {f(stt/so if so and stt else None,'{:.1f}')}")
PYEOF
