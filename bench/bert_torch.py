#!/usr/bin/python3
"""bench/bert_torch.py THREADS STEPS: the model and step of bench/bert_bench.c
in PyTorch (our own BERT module here, post-LN, erf GELU, tanh pooler;
torch.optim.AdamW, clip_grad_norm_ 1.0), fp32; prints "steps/s X"."""
import math
import sys
import time

import torch
import torch.nn as nn

B, T, V, LABELS, C, L, NH, I, P = 32, 32, 8000, 150, 256, 4, 4, 1024, 512


class Layer(nn.Module):
    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(C, 3 * C)
        self.ao = nn.Linear(C, C)
        self.ln1 = nn.LayerNorm(C, eps=1e-12)
        self.fc = nn.Linear(C, I)
        self.fo = nn.Linear(I, C)
        self.ln2 = nn.LayerNorm(C, eps=1e-12)
        self.drop = nn.Dropout(0.1)

    def forward(self, x, bias):
        q, k, v = self.qkv(x).view(B, T, 3, NH, C // NH).permute(2, 0, 3, 1, 4)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(C // NH) + bias, -1)
        ctx = (att @ v).transpose(1, 2).reshape(B, T, C)
        a = self.ln1(x + self.drop(self.ao(ctx)))
        return self.ln2(a + self.drop(self.fo(nn.functional.gelu(self.fc(a)))))


class Bert(nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = nn.Embedding(V, C)
        self.wpe = nn.Embedding(P, C)
        self.wtt = nn.Embedding(2, C)
        self.ln = nn.LayerNorm(C, eps=1e-12)
        self.layers = nn.ModuleList([Layer() for _ in range(L)])
        self.pool = nn.Linear(C, C)
        self.cls = nn.Linear(C, LABELS)
        self.drop = nn.Dropout(0.1)

    def forward(self, ids, mask):
        x = self.wte(ids) + self.wpe(torch.arange(T))[None] + self.wtt(torch.zeros_like(ids))
        x = self.drop(self.ln(x))
        bias = torch.where(mask[:, None, None, :], 0.0, -1e30)
        for layer in self.layers:
            x = layer(x, bias)
        return self.cls(self.drop(torch.tanh(self.pool(x[:, 0]))))


def main():
    threads, steps = int(sys.argv[1]), int(sys.argv[2])
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    model = Bert()
    opt = torch.optim.AdamW(model.parameters(), lr=5e-5)
    ids = torch.randint(5, V, (B, T))
    mask = (torch.arange(T) < T * 3 // 4)[None].expand(B, T)
    labels = torch.randint(0, LABELS, (B,))
    for s in range(steps + 3):
        if s == 3:
            t0 = time.perf_counter()
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(ids, mask), labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    el = time.perf_counter() - t0
    print("steps/s %.3f (loss %.3f)" % (steps / el, loss.item()))


if __name__ == "__main__":
    main()
