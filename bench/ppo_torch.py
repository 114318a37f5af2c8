#!/usr/bin/python3
"""bench/ppo_torch.py - the reference of bench/ppo_bench.sh (issue 9): a
CleanRL-style PPO (ppo.py: same network, initialisation, losses and
hyperparameters) in PyTorch on a NumPy CartPole-v1 with gymnasium's
dynamics (vectorised over the envs, same-step auto-reset, truncation at
500).  Prints one JSON line: steps, seconds, steps per second, the step and
second (wall and CPU; CPU counts every thread) at which the mean of the
last 100 episodes first reached 475, and the final 100-episode mean.

usage: ppo_torch.py SEED [TOTAL_TIMESTEPS] [THREADS]
"""
import json
import sys
import time

import numpy as np
import torch
import torch.nn as nn
from torch.distributions.categorical import Categorical


class CartPoleVec:
    """gymnasium's CartPole-v1, n copies, float64 state, float32 observations."""

    def __init__(self, n, seed):
        self.n = n
        self.rng = np.random.default_rng(seed)
        self.state = self.rng.uniform(-0.05, 0.05, size=(n, 4))
        self.steps = np.zeros(n, dtype=np.int64)

    def obs(self):
        return self.state.astype(np.float32)

    def step(self, action):
        g, mc, mp, l, fm, tau = 9.8, 1.0, 0.1, 0.5, 10.0, 0.02
        x, xd, th, thd = self.state.T
        force = np.where(action == 1, fm, -fm)
        c, s = np.cos(th), np.sin(th)
        temp = (force + mp * l * thd**2 * s) / (mc + mp)
        thacc = (g * s - c * temp) / (l * (4.0 / 3.0 - mp * c**2 / (mc + mp)))
        xacc = temp - mp * l * thacc * c / (mc + mp)
        x = x + tau * xd
        xd = xd + tau * xacc
        th = th + tau * thd
        thd = thd + tau * thacc
        self.state = np.stack([x, xd, th, thd], axis=1)
        self.steps += 1
        term = (x < -2.4) | (x > 2.4) | (th < -12 * 2 * np.pi / 360) | (th > 12 * 2 * np.pi / 360)
        trunc = ~term & (self.steps >= 500)
        done = term | trunc
        if done.any():
            k = int(done.sum())
            self.state[done] = self.rng.uniform(-0.05, 0.05, size=(k, 4))
            self.steps[done] = 0
        return self.obs(), np.ones(self.n, dtype=np.float32), done


def layer_init(layer, std=np.sqrt(2), bias_const=0.0):
    torch.nn.init.orthogonal_(layer.weight, std)
    torch.nn.init.constant_(layer.bias, bias_const)
    return layer


class Agent(nn.Module):
    def __init__(self, obs_dim, n_act, hidden=64):
        super().__init__()
        self.critic = nn.Sequential(
            layer_init(nn.Linear(obs_dim, hidden)), nn.Tanh(),
            layer_init(nn.Linear(hidden, hidden)), nn.Tanh(),
            layer_init(nn.Linear(hidden, 1), std=1.0))
        self.actor = nn.Sequential(
            layer_init(nn.Linear(obs_dim, hidden)), nn.Tanh(),
            layer_init(nn.Linear(hidden, hidden)), nn.Tanh(),
            layer_init(nn.Linear(hidden, n_act), std=0.01))

    def get_value(self, x):
        return self.critic(x)

    def get_action_and_value(self, x, action=None):
        logits = self.actor(x)
        probs = Categorical(logits=logits)
        if action is None:
            action = probs.sample()
        return action, probs.log_prob(action), probs.entropy(), self.critic(x)


def main():
    seed = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    total = int(sys.argv[2]) if len(sys.argv) > 2 else 500000
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    torch.set_num_threads(threads)
    num_envs, num_steps, epochs, nmb = 4, 128, 4, 4
    lr0, gamma, lam, clip, ent_coef, vf_coef, max_norm = 2.5e-4, 0.99, 0.95, 0.2, 0.01, 0.5, 0.5
    batch = num_envs * num_steps
    mb = batch // nmb
    iters = total // batch
    np.random.seed(seed)
    torch.manual_seed(seed)
    envs = CartPoleVec(num_envs, seed)
    agent = Agent(4, 2)
    opt = torch.optim.Adam(agent.parameters(), lr=lr0, eps=1e-5)
    obs = torch.zeros((num_steps, num_envs, 4))
    actions = torch.zeros((num_steps, num_envs))
    logprobs = torch.zeros((num_steps, num_envs))
    rewards = torch.zeros((num_steps, num_envs))
    dones = torch.zeros((num_steps, num_envs))
    values = torch.zeros((num_steps, num_envs))
    next_obs = torch.tensor(envs.obs())
    next_done = torch.zeros(num_envs)
    ep_ret = np.zeros(num_envs)
    window = []
    step = 0
    solved_step = solved_sec = solved_cpu = None
    t0 = time.time()
    c0 = time.process_time()
    for it in range(1, iters + 1):
        opt.param_groups[0]["lr"] = (1.0 - (it - 1.0) / iters) * lr0
        for t in range(num_steps):
            step += num_envs
            obs[t] = next_obs
            dones[t] = next_done
            with torch.no_grad():
                action, logprob, _, value = agent.get_action_and_value(next_obs)
                values[t] = value.flatten()
            actions[t] = action
            logprobs[t] = logprob
            o, r, d = envs.step(action.numpy())
            rewards[t] = torch.tensor(r)
            next_obs, next_done = torch.tensor(o), torch.tensor(d, dtype=torch.float32)
            ep_ret += r
            for e in np.nonzero(d)[0]:
                window.append(ep_ret[e])
                ep_ret[e] = 0
                if len(window) > 100:
                    window.pop(0)
                if solved_step is None and len(window) == 100 and np.mean(window) >= 475:
                    solved_step, solved_sec = step, time.time() - t0
                    solved_cpu = time.process_time() - c0
        with torch.no_grad():
            next_value = agent.get_value(next_obs).reshape(1, -1)
            adv = torch.zeros_like(rewards)
            last = 0
            for t in reversed(range(num_steps)):
                if t == num_steps - 1:
                    nnt, nv = 1.0 - next_done, next_value
                else:
                    nnt, nv = 1.0 - dones[t + 1], values[t + 1]
                delta = rewards[t] + gamma * nv * nnt - values[t]
                adv[t] = last = delta + gamma * lam * nnt * last
            returns = adv + values
        b_obs = obs.reshape((-1, 4))
        b_logp = logprobs.reshape(-1)
        b_act = actions.reshape(-1)
        b_adv = adv.reshape(-1)
        b_ret = returns.reshape(-1)
        b_val = values.reshape(-1)
        inds = np.arange(batch)
        for _ in range(epochs):
            np.random.shuffle(inds)
            for s in range(0, batch, mb):
                i = inds[s:s + mb]
                _, newlogp, entropy, newv = agent.get_action_and_value(b_obs[i], b_act.long()[i])
                ratio = (newlogp - b_logp[i]).exp()
                a = b_adv[i]
                a = (a - a.mean()) / (a.std() + 1e-8)
                pg = torch.max(-a * ratio, -a * torch.clamp(ratio, 1 - clip, 1 + clip)).mean()
                newv = newv.view(-1)
                vu = (newv - b_ret[i]) ** 2
                vc = b_val[i] + torch.clamp(newv - b_val[i], -clip, clip)
                v_loss = 0.5 * torch.max(vu, (vc - b_ret[i]) ** 2).mean()
                loss = pg - ent_coef * entropy.mean() + v_loss * vf_coef
                opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(agent.parameters(), max_norm)
                opt.step()
    sec = time.time() - t0
    cpu = time.process_time() - c0
    print(json.dumps({"steps": step, "seconds": round(sec, 3),
                      "steps_per_second": round(step / sec, 1),
                      "solved_at_step": solved_step,
                      "solved_at_seconds": None if solved_sec is None else round(solved_sec, 3),
                      "solved_at_cpu_seconds": None if solved_cpu is None else round(solved_cpu, 3),
                      "cpu_seconds": round(cpu, 3), "steps_per_cpu_second": round(step / cpu, 1),
                      "mean_return_100": round(float(np.mean(window)), 3) if window else None}))


if __name__ == "__main__":
    main()
