#!/bin/bash
# bench/rlhf_bench.sh BUILDDIR SRCDIR (issue 9): `train --target rlhf` on
# qa-feedback (../shared/data/rlhf/qa-feedback/dev_feedback.json: 500
# questions, 400 train / 100 held out by question) with small models, one
# run: the reward model's held-out pairwise accuracy beside chance (0.5)
# and the longer-answer heuristic (the reference), the held-out reward of
# the policy before PPO (the SFT model) and after, its KL to the SFT model,
# and the wall time of each stage.  The machine is shared, so the run's CPU
# seconds are printed beside its wall time.  Skipped (exit 0, with a note)
# without the data.
#
#   RLHF_BENCH_SFT_EPOCHS=4 RLHF_BENCH_RM_EPOCHS=2 RLHF_BENCH_RL_STEPS=30
#   RLHF_BENCH_DATA=.../dev_feedback.json (default: SRCDIR/../shared/...)
set -eu
B=${1:-.}
S=${2:-.}
D=${RLHF_BENCH_DATA:-$S/../shared/data/rlhf/qa-feedback/dev_feedback.json}
if [ ! -r "$D" ]; then
	echo "note: $D is absent: bench rlhf skipped"
	exit 0
fi
D=$(cd "$(dirname "$D")" && pwd)/$(basename "$D")
PY=/usr/bin/python3
W=$(mktemp -d "${TMPDIR:-/tmp}/rlhf-bench-XXXXXX")
trap 'rm -rf "$W"' EXIT
P="$B/plugins/mamba/.libs:$B/plugins/rlhf/.libs"
cat >"$W/settings.yml" <<YML
data: {feedback_file: $D, heldout: 100, max_passage_chars: 300, max_answer_chars: 300}
training: {num_rl_steps: ${RLHF_BENCH_RL_STEPS:-30}}
sft: {d_model: 64, n_layers: 2, batch_size: 8, num_epochs: ${RLHF_BENCH_SFT_EPOCHS:-4},
      learning_rate: 0.003, warmup_steps: 10, eval_steps: 50}
reward: {d_model: 32, n_layers: 2, batch_size: 8, num_epochs: ${RLHF_BENCH_RM_EPOCHS:-2},
         learning_rate: 0.001}
ppo: {batch_size: 16, minibatch_size: 4, ppo_epochs: 2, max_new_tokens: 96, learning_rate: 0.0001,
      init_kl_coef: 0.1, target_kl: 6.0, eval_prompts: 100}
YML
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) (shared with other jobs)"
/usr/bin/time -f "%e %U %S" -o "$W/time" env TRAIN_RECIPE_PATH="$S/recipes" "$B/train" --target rlhf \
	--config "$W/settings.yml" --plugin-path "$P" --cache-dir "$W/cache" --out "$W/models" \
	--report "$W/report.json" 2>"$W/log" >/dev/null || { cat "$W/log"; exit 1; }
grep -E "pairwise accuracy|PPO:" "$W/log" | sed 's/^train: /  /'
$PY - "$W" <<'PYEOF'
import json, math, sys
w = sys.argv[1]
r = json.load(open(f"{w}/report.json"))
wall, user, sys_ = (float(x) for x in open(f"{w}/time").read().split())
nodes = {n["name"]: n for n in r["nodes"]}
def unflat(m):
    """A node's metrics, nested again where the report flattened them as "a.b"."""
    out = {}
    for k, v in m.items():
        if "." in k:
            a, b = k.split(".", 1)
            out.setdefault(a, {})[b] = v
        else:
            out[k] = v
    return out
rm = unflat(nodes["reward"]["metrics"])
ppo = unflat(nodes["ppo"]["metrics"])
split = unflat(nodes["data"]["metrics"])
print()
print("| stage | wall s | result |")
print("|---|---:|---|")
print(f"| data (split by question) | {nodes['data']['seconds']:.1f} | {split['questions_train']} train / "
      f"{split['questions_heldout']} held-out questions, {split['pairs_train']} / {split['pairs_heldout']} pairs |")
import re
sl = [l for l in open(f"{w}/log") if re.match(r"train: sft: step \d+/\d+: loss", l)]
sft = sl[-1].split(": ", 3)[-1].split(", tokens")[0].split(", ")[:2] if sl else ["", ""]
print(f"| 1 SFT (MambaSFT d64 L2) | {nodes['sft']['seconds']:.1f} | last step: {', '.join(sft)} (nats per answer character, held-out answers) |")
print(f"| 2 reward model (Mamba d32 L2, mean pooling) | {nodes['reward']['seconds']:.1f} | held-out accuracy "
      f"{rm['heldout_accuracy']:.3f} (train {rm['train_accuracy']:.3f}); longer answer {rm['heldout_length_baseline']:.3f}; chance 0.5 |")
b, a = ppo["before"], ppo["after"]
print(f"| 3 PPO ({ppo['num_rl_steps']} steps) | {nodes['ppo']['seconds']:.1f} | held-out reward "
      f"{b['heldout_reward']:.4f} -> {a['heldout_reward']:.4f}, KL to SFT {b['heldout_kl']:.4f} -> "
      f"{a['heldout_kl']:.4f}, length {b['length']:.1f} -> {a['length']:.1f} (gold answers {ppo['gold_reward']:.4f}) |")
print(f"| whole run | {wall:.1f} | CPU {user + sys_:.1f} s (user {user:.1f}, sys {sys_:.1f}) on a shared machine |")
print()
acc, lacc = rm["heldout_accuracy"], rm["heldout_length_baseline"]
print(f"bench rlhf-reward-accuracy: ours {acc:.3f} held-out pairwise, longer-answer heuristic {lacc:.3f}, ratio {acc / lacc:.3f} (chance 0.5)")
d = a["heldout_reward"] - b["heldout_reward"]
print(f"bench rlhf-ppo-reward: ours {a['heldout_reward']:.4f} reward after PPO, SFT {b['heldout_reward']:.4f} reward, ratio {math.exp(d):.3f} (exp of the difference: Bradley-Terry odds)")
print(f"bench rlhf-kl: ours {a['heldout_kl']:.4f} nats to SFT after PPO, SFT 0 nats, ratio n/a")
print(f"bench rlhf-wall: ours {wall:.1f} s (sft {nodes['sft']['seconds']:.1f}, reward {nodes['reward']['seconds']:.1f}, ppo {nodes['ppo']['seconds']:.1f}), CPU {user + sys_:.1f} s, ratio {(user + sys_) / wall:.2f} (CPU/wall)")
PYEOF
