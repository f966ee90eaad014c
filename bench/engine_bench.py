#!/usr/bin/env python3
"""The PyTorch half of bench/engine_bench.sh: times QuAC's VGG in PyTorch with the engine's shapes and
thread count, and prints both sides with their ratio.

Usage: python engine_bench.py ENGINE_JSON   (ENGINE_JSON: what Tests/EngineTests/BenchmarkTests.swift
wrote; its thread count and batch sizes are used here)

Measured as on the engine side: evaluation forward (no grad), forward + input gradient (evaluation
mode, torch.autograd.grad of the target logit with respect to the input, as Captum does), a training
step (training mode, cross-entropy, Adam); each the median of at least 3 calls after a warm-up, repeated
for at least 1.5 s. Layers alone: F.conv2d / aten.convolution_backward (input or weight gradient only)
and the three GEMMs of a linear layer. sgemm: torch.mm of 2048x2048 matrices (the same OpenBLAS).
"""
import json
import sys
import time

import torch
import torch.nn.functional as F

engine = json.load(open(sys.argv[1]))
threads = engine["threads"]
torch.set_num_threads(threads)
torch.manual_seed(0)

CONVS = [(1, 12, 128), (12, 12, 128), (12, 24, 64), (24, 24, 64), (24, 48, 32), (48, 48, 32), (48, 96, 16), (96, 96, 16)]
LINEARS = [(6144, 4096), (4096, 4096), (4096, 2)]
FWD = sum(2.0 * ci * co * 9 * s * s for ci, co, s in CONVS) + sum(2.0 * i * o for i, o in LINEARS)
FIRST = 2.0 * 1 * 12 * 9 * 128 * 128


def quac_vgg():
    """QuAC's Vgg2D (input 1x128x128, fmaps 12, 2 classes): same layers as the engine's network."""
    layers, c = [], 1
    for out in [12, 24, 48, 96]:
        layers += [torch.nn.Conv2d(c, out, 3, padding=1), torch.nn.BatchNorm2d(out), torch.nn.ReLU(),
                   torch.nn.Conv2d(out, out, 3, padding=1), torch.nn.BatchNorm2d(out), torch.nn.ReLU(),
                   torch.nn.MaxPool2d(2)]
        c = out
    return torch.nn.Sequential(*layers, torch.nn.Flatten(), torch.nn.Linear(6144, 4096), torch.nn.ReLU(),
                               torch.nn.Linear(4096, 4096), torch.nn.ReLU(), torch.nn.Linear(4096, 2))


def seconds(body, min_reps=3, min_seconds=1.5):
    body()
    times = []
    start = time.perf_counter()
    while len(times) < min_reps or (time.perf_counter() - start < min_seconds and len(times) < 50):
        t = time.perf_counter()
        body()
        times.append(time.perf_counter() - t)
    times.sort()
    return times[len(times) // 2]


n = 2048
a, b = torch.rand(n, n) * 2 - 1, torch.rand(n, n) * 2 - 1
torch_sgemm = 2.0 * n ** 3 / seconds(lambda: torch.mm(a, b), min_reps=5) / 1e9

net = quac_vgg()
opt = torch.optim.Adam(net.parameters(), lr=1e-4)
rows = []
for row in engine["network"]:
    batch = row["batch"]
    x = torch.rand(batch, 1, 128, 128) * 2 - 1
    y = torch.arange(batch) % 2
    seed = F.one_hot(y, 2).float()

    net.eval()

    def forward():
        with torch.no_grad():
            net(x)

    def input_grad():
        xv = x.clone().requires_grad_()
        torch.autograd.grad(net(xv), xv, grad_outputs=seed)

    def train():
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    tf = seconds(forward)
    tg = seconds(input_grad)
    net.train()
    tt = seconds(train)
    net.eval()
    rows.append((batch, row, {"forward_s": tf, "input_grad_s": tg, "train_s": tt}))

batch = engine["layers_batch"]
torch_layers = []
for ci, co, s in CONVS:
    x = torch.rand(batch, ci, s, s) * 2 - 1
    w = (torch.rand(co, ci, 3, 3) * 2 - 1) * 0.1
    g = torch.rand(batch, co, s, s) * 2 - 1
    flops = 2.0 * batch * ci * co * 9 * s * s

    def back(mask):
        return lambda: torch.ops.aten.convolution_backward(g, x, w, [co], [1, 1], [1, 1], [1, 1], False, [0, 0], 1, mask)

    tf = seconds(lambda: F.conv2d(x, w, padding=1), min_seconds=0.5)
    tx = seconds(back([True, False, False]), min_seconds=0.5)
    tw = seconds(back([False, True, False]), min_seconds=0.5)
    torch_layers.append((flops / tf / 1e9, flops / tx / 1e9, flops / tw / 1e9))
for fi, fo in LINEARS:
    x = torch.rand(batch, fi) * 2 - 1
    w = (torch.rand(fo, fi) * 2 - 1) * 0.1
    g = torch.rand(batch, fo) * 2 - 1
    flops = 2.0 * batch * fi * fo
    tf = seconds(lambda: F.linear(x, w), min_seconds=0.5)
    tx = seconds(lambda: torch.mm(g, w), min_seconds=0.5)
    tw = seconds(lambda: torch.mm(g.t(), x), min_seconds=0.5)
    torch_layers.append((flops / tf / 1e9, flops / tx / 1e9, flops / tw / 1e9))

sg = engine["sgemm_gflops"]
print()
print(f"QuAC VGG (1x128x128, 12-24-48-96, fc 4096-4096, 2 classes); threads {threads} on both sides; "
      f"OpenBLAS core {engine['blas_core']}; torch {torch.__version__}")
print(f"OpenBLAS sgemm 2048^3: {sg:.1f} GFLOP/s from Swift (cblas_sgemm), {torch_sgemm:.1f} GFLOP/s from torch.mm")
print(f"forward = {FWD / 1e6:.0f} MFLOP per image (convolutions and linear layers); forward+input-grad counted as 2x, "
      f"train step as 3x minus the first convolution's input gradient")
print()
print("| batch | measure | quac engine img/s | PyTorch img/s | ratio (engine/PyTorch) | engine GFLOP/s | % of sgemm | PyTorch GFLOP/s |")
print("|---|---|---|---|---|---|---|---|")
summary = {}
for batch, e, t in rows:
    for key, label, mult in [("forward_s", "forward", FWD), ("input_grad_s", "forward + input gradient", 2 * FWD),
                             ("train_s", "training step (Adam)", 3 * FWD - FIRST)]:
        ei, ti = batch / e[key], batch / t[key]
        eg, tg = mult * batch / e[key] / 1e9, mult * batch / t[key] / 1e9
        summary[(batch, key)] = ei / ti
        print(f"| {batch} | {label} | {ei:.1f} | {ti:.1f} | {ei / ti:.2f}x | {eg:.1f} | {100 * eg / sg:.0f}% | {tg:.1f} |")
print()
print(f"Layers alone, batch {batch}: GFLOP/s (engine / PyTorch; % = engine against the engine's sgemm rate {sg:.1f})")
print()
print("| layer | MFLOP | forward | input gradient | weight gradient |")
print("|---|---|---|---|---|")
for l, (tf, tx, tw) in zip(engine["layers"], torch_layers):
    cells = [f"{l[k]:.1f} / {t:.1f} ({100 * l[k] / sg:.0f}%)"
             for k, t in [("forward_gflops", tf), ("input_grad_gflops", tx), ("weight_grad_gflops", tw)]]
    print(f"| {l['name']} | {l['flops'] / 1e6:.0f} | " + " | ".join(cells) + " |")
print()
for batch in (16, 64):
    if (batch, "input_grad_s") in summary:
        r = summary[(batch, "input_grad_s")]
        print(f"target: forward + input gradient at batch {batch} at least as fast as PyTorch: {r:.2f}x -> "
              f"{'met' if r >= 1 else 'missed'}")
