#!/usr/bin/python3
"""The PyTorch side of bench/block_bench.sh: one post-LN transformer encoder
block (torch.nn.TransformerEncoderLayer(256, 4, 1024, dropout=0,
activation='gelu', batch_first=True)), forward + backward + AdamW step on a
(16, 128, 256) batch, timed per step; median over the timed steps.

The loss is sum(out * R) for a fixed random R, which is what the C side
does by feeding R in as the output gradient.  The input does not require a
gradient (nor does the C side compute one).

usage: block_torch.py [--threads N] [--steps N] [--warmup N] [--mode fp32|bf16]
                      [--profile]
Prints the BLAS / oneDNN torch uses, a table, then one line
"torch-<mode> steps/s X" per mode.  With --profile, also the time per step
of the matrix products (aten::mm, addmm, bmm and their _mkldnn forms, as
torch.profiler records them) against the whole step: the share of a step
that the same oneDNN/OpenBLAS products take, a floor under any
implementation that calls them.
"""
import argparse
import statistics
import time

import torch

B, T, C, NH, FF = 16, 128, 256, 4, 1024


def blas_libraries():
    """The BLAS/LAPACK/oneDNN shared objects mapped into this process."""
    libs = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1] if len(line.split()) >= 6 else ""
                name = path.rsplit("/", 1)[-1]
                if any(k in name for k in ("blas", "lapack", "mkl", "dnnl", "gomp", "omp")):
                    libs.add(path)
    except OSError:
        pass
    return sorted(libs)


def run(mode, threads, steps, warmup):
    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(C, NH, FF, dropout=0.0, activation="gelu",
                                             batch_first=True)
    layer.train()
    opt = torch.optim.AdamW(layer.parameters(), lr=1e-4)
    x = torch.randn(B, T, C)
    r = torch.randn(B, T, C)
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        opt.zero_grad()
        if mode == "bf16":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                y = layer(x)
            loss = (y.float() * r).sum()
        else:
            y = layer(x)
            loss = (y * r).sum()
        loss.backward()
        opt.step()
        dt = time.perf_counter() - t0
        if i >= warmup:
            times.append(dt)
    return times


MATMUL_OPS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::matmul",
              "aten::linear", "mkldnn::_linear_pointwise", "aten::_mkldnn_matmul")


def profile(mode, threads, steps):
    """Self CPU time per step of the matmul ops, and of the whole step."""
    from torch.profiler import ProfilerActivity, profile as tprofile
    run(mode, threads, 2, 0)  # warm-up outside the profile
    with tprofile(activities=[ProfilerActivity.CPU]) as prof:
        run(mode, threads, steps, 0)
    mm = total = 0.0
    for ev in prof.key_averages():
        total += ev.self_cpu_time_total
        if ev.key in MATMUL_OPS:
            mm += ev.self_cpu_time_total
    # self CPU time in microseconds, summed over the steps
    return mm / steps / 1e3, total / steps / 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--mode", choices=["fp32", "bf16", "both"], default="both")
    ap.add_argument("--profile", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    modes = ["fp32", "bf16"] if a.mode == "both" else [a.mode]

    cfg = torch.__config__.show()
    blas = [l.strip() for l in cfg.splitlines() if "BLAS_INFO" in l or "MKL-DNN" in l
            or "CPU capability" in l]
    results = {m: run(m, a.threads, a.steps, a.warmup) for m in modes}

    print("torch %s, %d threads (torch.get_num_threads() = %d)"
          % (torch.__version__, a.threads, torch.get_num_threads()))
    for l in blas:
        for part in l.split(", "):
            if any(k in part for k in ("BLAS_INFO", "MKL-DNN", "CPU capability")):
                print("  " + part.strip(" -"))
    print("  loaded: " + " ".join(blas_libraries()))
    print("%-14s %10s %10s %10s %10s" % ("torch", "median ms", "min ms", "max ms", "steps/s"))
    for m in modes:
        t = results[m]
        med = statistics.median(t)
        print("%-14s %10.2f %10.2f %10.2f %10.2f"
              % ("fp32" if m == "fp32" else "bf16-autocast", med * 1e3, min(t) * 1e3,
                 max(t) * 1e3, 1.0 / med))
    for m in modes:
        print("torch-%s steps/s %.3f" % (m, 1.0 / statistics.median(results[m])))
    if a.profile:
        for m in modes:
            mm, total = profile(m, a.threads, a.steps)
            print("torch-%s profile: matmul ops %.2f ms of %.2f ms self CPU time per step (%.0f%%)"
                  % (m, mm, total, 100.0 * mm / total if total else 0.0))


if __name__ == "__main__":
    main()
