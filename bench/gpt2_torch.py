#!/usr/bin/python3
"""Issue 10's benchmark, the PyTorch side (hand-written, no transformers).

  gpt2_torch.py write DIR
      a GPT-2-small-shaped model (12 layers, 768 wide, 12 heads, vocabulary
      50257, 1024 positions) with random weights, in Hugging Face's layout:
      DIR/config.json and DIR/model.safetensors (written by hand)
  gpt2_torch.py gpt2 MODE B T STEPS THREADS
      the same shapes in PyTorch (random weights): MODE full, lora (r 8,
      alpha 16, dropout 0.1 on q and v, each its own A and B; base frozen)
      or lora-ckpt (torch.utils.checkpoint around each block)
  gpt2_torch.py bert MODE B T STEPS THREADS
      a bert-mini classifier (4 layers, 256 wide, 4 heads, FFN 1024,
      vocabulary 30522, 2 labels): MODE full, lora (r 8, alpha 16, dropout
      0.1 on query and value, the base frozen, the classifier trained as
      PEFT's modules_to_save) or lora-ckpt (torch.utils.checkpoint around
      each layer)

A step is forward, cross-entropy, backward, clip_grad_norm_(1) and
AdamW.step, fp32, torch.set_num_threads(THREADS).  Prints
  step_ms MEDIAN cpu_ms MEAN peak_rss_mb RSS loss LOSS
after one warm-up step.
"""
import json
import math
import os
import resource
import struct
import sys
import time

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

V, P, C, L, NH = 50257, 1024, 768, 12, 12


def write(d):
    os.makedirs(d, exist_ok=True)
    cfg = dict(model_type="gpt2", architectures=["GPT2LMHeadModel"], vocab_size=V, n_positions=P,
               n_embd=C, n_layer=L, n_head=NH, activation_function="gelu_new",
               layer_norm_epsilon=1e-5, n_inner=None)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    g = torch.Generator().manual_seed(1)
    shapes = [("wte.weight", (V, C)), ("wpe.weight", (P, C))]
    for i in range(L):
        h = f"h.{i}."
        shapes += [(h + "ln_1.weight", (C,)), (h + "ln_1.bias", (C,)),
                   (h + "attn.c_attn.weight", (C, 3 * C)), (h + "attn.c_attn.bias", (3 * C,)),
                   (h + "attn.c_proj.weight", (C, C)), (h + "attn.c_proj.bias", (C,)),
                   (h + "ln_2.weight", (C,)), (h + "ln_2.bias", (C,)),
                   (h + "mlp.c_fc.weight", (C, 4 * C)), (h + "mlp.c_fc.bias", (4 * C,)),
                   (h + "mlp.c_proj.weight", (4 * C, C)), (h + "mlp.c_proj.bias", (C,))]
    shapes += [("ln_f.weight", (C,)), ("ln_f.bias", (C,))]
    header, off = {}, 0
    for name, shp in shapes:
        n = 4 * math.prod(shp)
        header[name] = {"dtype": "F32", "shape": list(shp), "data_offsets": [off, off + n]}
        off += n
    header["__metadata__"] = {"format": "pt"}
    hb = json.dumps(header).encode()
    hb += b" " * (-len(hb) % 8)
    tmp = os.path.join(d, "model.safetensors.tmp")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hb)) + hb)
        for name, shp in shapes:
            if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or name == "ln_f.weight":
                t = torch.ones(shp)
            elif len(shp) == 1:
                t = torch.zeros(shp)
            else:
                t = torch.randn(shp, generator=g) * 0.02
            f.write(t.numpy().astype("<f4").tobytes())
    os.replace(tmp, os.path.join(d, "model.safetensors"))


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class Block(torch.nn.Module):
    def __init__(self, lora):
        super().__init__()
        p = lambda *s: torch.nn.Parameter(torch.randn(*s) * 0.02)
        self.ln1, self.ln2 = torch.nn.LayerNorm(C), torch.nn.LayerNorm(C)
        self.attn_w, self.attn_b = p(C, 3 * C), torch.nn.Parameter(torch.zeros(3 * C))
        self.aproj_w, self.aproj_b = p(C, C), torch.nn.Parameter(torch.zeros(C))
        self.fc_w, self.fc_b = p(C, 4 * C), torch.nn.Parameter(torch.zeros(4 * C))
        self.mproj_w, self.mproj_b = p(4 * C, C), torch.nn.Parameter(torch.zeros(C))
        self.lora = lora
        if lora:
            r, bound = 8, 1 / math.sqrt(C)
            self.aq = torch.nn.Parameter(torch.empty(r, C).uniform_(-bound, bound))
            self.av = torch.nn.Parameter(torch.empty(r, C).uniform_(-bound, bound))
            self.bq = torch.nn.Parameter(torch.zeros(C, r))
            self.bv = torch.nn.Parameter(torch.zeros(C, r))
            self.drop = torch.nn.Dropout(0.1)
            self.scale = 16 / 8

    def forward(self, x):
        Bn, T, _ = x.shape
        a = self.ln1(x)
        qkv = a @ self.attn_w + self.attn_b
        q, k, v = qkv.split(C, dim=-1)
        if self.lora:
            ad = self.drop(a)
            q = q + self.scale * (ad @ self.aq.T) @ self.bq.T
            v = v + self.scale * (ad @ self.av.T) @ self.bv.T
        q, k, v = (t.view(Bn, T, NH, C // NH).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True) if hasattr(F, "scaled_dot_product_attention") \
            else torch.softmax((q @ k.transpose(-1, -2) / math.sqrt(C // NH)).masked_fill(
                torch.triu(torch.ones(T, T, dtype=torch.bool), 1), float("-inf")), -1) @ v
        x = x + y.transpose(1, 2).reshape(Bn, T, C) @ self.aproj_w + self.aproj_b
        return x + gelu_new(self.ln2(x) @ self.fc_w + self.fc_b) @ self.mproj_w + self.mproj_b


class GPT2(torch.nn.Module):
    def __init__(self, lora, ckpt):
        super().__init__()
        self.wte = torch.nn.Parameter(torch.randn(V, C) * 0.02)
        self.wpe = torch.nn.Parameter(torch.randn(P, C) * 0.02)
        self.h = torch.nn.ModuleList(Block(lora) for _ in range(L))
        self.lnf = torch.nn.LayerNorm(C)
        self.ckpt = ckpt

    def forward(self, ids):
        x = self.wte[ids] + self.wpe[: ids.shape[1]]
        for b in self.h:
            x = checkpoint(b, x, use_reentrant=False) if self.ckpt else b(x)
        return self.lnf(x) @ self.wte.T


class BertLayer(torch.nn.Module):
    def __init__(self, Cb, nh, lora):
        super().__init__()
        self.nh, self.C = nh, Cb
        self.qkv, self.ao = torch.nn.Linear(Cb, 3 * Cb), torch.nn.Linear(Cb, Cb)
        self.ln1, self.ln2 = torch.nn.LayerNorm(Cb, eps=1e-12), torch.nn.LayerNorm(Cb, eps=1e-12)
        self.fc, self.fo = torch.nn.Linear(Cb, 4 * Cb), torch.nn.Linear(4 * Cb, Cb)
        self.drop = torch.nn.Dropout(0.1)
        self.lora = lora
        if lora:  # PEFT's LoRA on query and value: r 8, alpha 16, dropout 0.1
            r, bound = 8, 1 / math.sqrt(Cb)
            self.aq = torch.nn.Parameter(torch.empty(r, Cb).uniform_(-bound, bound))
            self.av = torch.nn.Parameter(torch.empty(r, Cb).uniform_(-bound, bound))
            self.bq = torch.nn.Parameter(torch.zeros(Cb, r))
            self.bv = torch.nn.Parameter(torch.zeros(Cb, r))
            self.ldq, self.ldv = torch.nn.Dropout(0.1), torch.nn.Dropout(0.1)
            self.scale = 16 / 8

    def forward(self, x):
        Bn, T, Cb = x.shape
        q, k, v = self.qkv(x).split(Cb, -1)
        if self.lora:
            q = q + self.scale * (self.ldq(x) @ self.aq.T) @ self.bq.T
            v = v + self.scale * (self.ldv(x) @ self.av.T) @ self.bv.T
        q, k, v = (t.view(Bn, T, self.nh, -1).transpose(1, 2) for t in (q, k, v))
        a = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(Cb // self.nh), -1) @ v
        x = self.ln1(x + self.drop(self.ao(a.transpose(1, 2).reshape(Bn, T, Cb))))
        return self.ln2(x + self.drop(self.fo(F.gelu(self.fc(x)))))


class Bert(torch.nn.Module):
    def __init__(self, Vb=30522, Cb=256, Lb=4, NHb=4, lora=False, ckpt=False):
        super().__init__()
        self.wte, self.wpe, self.wtt = (torch.nn.Embedding(n, Cb) for n in (Vb, 512, 2))
        self.eln = torch.nn.LayerNorm(Cb, eps=1e-12)
        self.layers = torch.nn.ModuleList(BertLayer(Cb, NHb, lora) for _ in range(Lb))
        self.pool, self.cls = torch.nn.Linear(Cb, Cb), torch.nn.Linear(Cb, 2)
        self.drop = torch.nn.Dropout(0.1)
        self.ckpt = ckpt

    def forward(self, ids):
        Bn, T = ids.shape
        x = self.drop(self.eln(self.wte(ids) + self.wpe(torch.arange(T)) + self.wtt(torch.zeros_like(ids))))
        for y in self.layers:
            x = checkpoint(y, x, use_reentrant=False) if self.ckpt else y(x)
        return self.cls(self.drop(torch.tanh(self.pool(x[:, 0]))))


def run(model, mode, B, T, steps, threads):
    torch.set_num_threads(threads)
    torch.manual_seed(2)
    if model == "gpt2":
        m = GPT2(mode.startswith("lora"), mode.endswith("ckpt"))
        if mode.startswith("lora"):
            for n, p in m.named_parameters():
                p.requires_grad = n.split(".")[-1] in ("aq", "av", "bq", "bv")
        ids = torch.randint(0, V, (B, T))
        tg = torch.cat([ids[:, 1:], torch.full((B, 1), -100)], 1)
        lossf = lambda: F.cross_entropy(m(ids).reshape(-1, V), tg.reshape(-1), ignore_index=-100)
    else:
        m = Bert(lora=mode.startswith("lora"), ckpt=mode.endswith("ckpt"))
        if mode.startswith("lora"):  # the adapters and the classifier (PEFT's modules_to_save)
            for n, p in m.named_parameters():
                p.requires_grad = n.split(".")[-1] in ("aq", "av", "bq", "bv") or n.startswith("cls.")
        ids = torch.randint(5, 30522, (B, T))
        lab = torch.randint(0, 2, (B,))
        lossf = lambda: F.cross_entropy(m(ids), lab)
    m.train()
    params = [p for p in m.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    ms = []
    c0 = 0.0
    for s in range(steps + 1):
        t0 = time.perf_counter()
        if s == 1:
            c0 = time.process_time()
        opt.zero_grad(set_to_none=True)
        loss = lossf()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if s:
            ms.append(1e3 * (time.perf_counter() - t0))
    cpu_ms = 1e3 * (time.process_time() - c0) / steps
    ms.sort()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"step_ms {ms[len(ms) // 2]:.1f} cpu_ms {cpu_ms:.1f} peak_rss_mb {rss:.1f} loss {loss.item():.4f}")


if __name__ == "__main__":
    if sys.argv[1] == "write":
        write(sys.argv[2])
    else:
        run(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]))
