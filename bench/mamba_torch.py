#!/usr/bin/python3
"""bench/mamba_torch.py - the PyTorch reference for bench/mamba_bench.sh.

The same Mamba language model as plugins/mamba (RMSNorm -> in_proj to 2*expand*d
-> causal depthwise conv (4) -> SiLU -> selective SSM (dt through a rank
ceil(d/16) projection and softplus, B, C; A = -exp(A_log), S4D-real init,
d_state 16, D skip) -> gate SiLU(z) -> out_proj, residual, final RMSNorm, tied
head), in plain PyTorch with a sequential scan over time, trained on the same
characters with the same split, batch, context, optimizer and schedule for a
budget of wall time.  Prints the BLAS PyTorch uses, then one line:
    torch: tokens_per_second X val_loss Y steps N
Usage: mamba_torch.py TEXT BUDGET_SECONDS THREADS [D LAYERS T B LR]
"""
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class Mixer(nn.Module):
    def __init__(self, d, n_layers, d_state=16, d_conv=4, expand=2):
        super().__init__()
        di = expand * d
        self.di, self.ns, self.r = di, d_state, math.ceil(d / 16)
        self.in_proj = nn.Linear(d, 2 * di, bias=False)
        self.conv1d = nn.Conv1d(di, di, d_conv, groups=di, padding=d_conv - 1)
        self.x_proj = nn.Linear(di, self.r + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.r, di)
        std = self.r ** -0.5
        nn.init.uniform_(self.dt_proj.weight, -std, std)
        dt = torch.exp(torch.rand(di) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3)).clamp(min=1e-4)
        with torch.no_grad():
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))
        self.A_log = nn.Parameter(torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)).repeat(di, 1))
        self.D = nn.Parameter(torch.ones(di))
        self.out_proj = nn.Linear(di, d, bias=False)
        with torch.no_grad():
            self.out_proj.weight /= math.sqrt(n_layers)

    def forward(self, u):
        B, T, _ = u.shape
        x, z = self.in_proj(u).chunk(2, dim=-1)
        x = F.silu(self.conv1d(x.transpose(1, 2))[..., :T].transpose(1, 2))
        dbc = self.x_proj(x)
        dt, Bm, Cm = dbc.split([self.r, self.ns, self.ns], dim=-1)
        delta = F.softplus(self.dt_proj(dt))              # (B, T, Di)
        A = -torch.exp(self.A_log)                        # (Di, N)
        dA = torch.exp(delta.unsqueeze(-1) * A)           # (B, T, Di, N)
        dBx = delta.unsqueeze(-1) * Bm.unsqueeze(2) * x.unsqueeze(-1)
        h = torch.zeros(B, self.di, self.ns)
        ys = []
        # unbind once: indexing dA[:, t] in the loop would make autograd
        # fill a whole (B, T, Di, N) gradient per step (O(T^2) memory traffic)
        for a_t, bx_t, c_t in zip(dA.unbind(1), dBx.unbind(1), Cm.unsqueeze(2).unbind(1)):
            h = a_t * h + bx_t                            # the sequential scan
            ys.append((h * c_t).sum(-1))
        y = torch.stack(ys, dim=1) + x * self.D
        return self.out_proj(y * F.silu(z))


class MambaLM(nn.Module):
    def __init__(self, V, d, n_layers):
        super().__init__()
        self.emb = nn.Embedding(V, d)
        nn.init.normal_(self.emb.weight, std=0.02)
        self.norms = nn.ModuleList([RMSNorm(d) for _ in range(n_layers)])
        self.mixers = nn.ModuleList([Mixer(d, n_layers) for _ in range(n_layers)])
        self.norm_f = RMSNorm(d)

    def forward(self, ids, targets):
        h = self.emb(ids)
        for n, m in zip(self.norms, self.mixers):
            h = h + m(n(h))
        logits = self.norm_f(h) @ self.emb.weight.t()
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


def main():
    path, budget, threads = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    D, L, T, B, lr = (int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7]),
                      float(sys.argv[8])) if len(sys.argv) > 8 else (128, 4, 256, 8, 2e-3)
    torch.set_num_threads(threads)
    torch.manual_seed(42)
    cfg = torch.__config__.show().replace(",", "\n")
    blas = [l.strip().split()[-1] for l in cfg.splitlines()
            if any(k in l for k in ("BLAS_INFO", "LAPACK_INFO", "USE_MKLDNN", "USE_OPENMP"))]
    torch.randn(64, 64) @ torch.randn(64, 64)
    libs = sorted({l.split()[-1] for l in open("/proc/self/maps") if "blas" in l.lower()})
    print("torch %s, %d threads; %s; BLAS libraries mapped: %s" % (
        torch.__version__, threads, ", ".join(blas) or "BLAS_INFO=?", " ".join(libs) or "none"))
    text = open(path, encoding="utf-8").read()
    # the plugin's tokens: id 0 unknown, then the characters in code point order
    chars = sorted(set(text))
    ids = {c: i + 1 for i, c in enumerate(chars)}
    data = torch.tensor([ids[c] for c in text], dtype=torch.long)
    n_val = int(len(data) * 0.1)
    train, val = data[:len(data) - n_val], data[len(data) - n_val:]
    model = MambaLM(len(chars) + 1, D, L)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    warmup, total = 20, 100000
    g = torch.Generator().manual_seed(42)
    step, tokens, t_train, t0 = 0, 0, 0.0, time.time()
    while time.time() - t0 < budget:
        ts = time.time()
        f = step / warmup if step < warmup else 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (step - warmup) / (total - warmup)))
        for pg in opt.param_groups:
            pg["lr"] = lr * f
        starts = torch.randint(0, len(train) - T - 1, (B,), generator=g)
        x = torch.stack([train[s:s + T] for s in starts])
        y = torch.stack([train[s + 1:s + T + 1] for s in starts])
        loss = model(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        tokens += B * T
        t_train += time.time() - ts
    # validation: the first 20 batches of non-overlapping windows, as the plugin's eval_batches 20
    model.eval()
    tot, cnt = 0.0, 0
    with torch.no_grad():
        nw = (len(val) - 1) // T
        for b in range(min(20, (nw + B - 1) // B)):
            rows = [w for w in range(b * B, min(nw, b * B + B))]
            x = torch.stack([val[w * T:w * T + T] for w in rows])
            y = torch.stack([val[w * T + 1:w * T + T + 1] for w in rows])
            tot += model(x, y).item() * len(rows) * T
            cnt += len(rows) * T
    print("torch: tokens_per_second %.1f val_loss %.4f steps %d" % (tokens / t_train, tot / cnt, step))


if __name__ == "__main__":
    main()
