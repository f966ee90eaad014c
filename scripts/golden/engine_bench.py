#!/usr/bin/env python3
"""PyTorch timing of the network in Tests/EngineTests/BenchmarkTests.swift (same shapes, 2 threads)."""
import time
import torch
import torch.nn.functional as F

torch.set_num_threads(2)
torch.manual_seed(0)
B = lambda c: [torch.nn.BatchNorm2d(c), torch.nn.ReLU()]
net = torch.nn.Sequential(
    torch.nn.Conv2d(3, 32, 3, padding=1), *B(32), torch.nn.Conv2d(32, 32, 3, padding=1), *B(32), torch.nn.MaxPool2d(2),
    torch.nn.Conv2d(32, 64, 3, padding=1), *B(64), torch.nn.Conv2d(64, 64, 3, padding=1), *B(64), torch.nn.MaxPool2d(2),
    torch.nn.AdaptiveAvgPool2d((1, 1)), torch.nn.Flatten(), torch.nn.Linear(64, 4))
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
x = torch.rand(16, 3, 64, 64) * 2 - 1
y = torch.arange(16) % 4


def step():
    loss = F.cross_entropy(net(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()


step()
n = 5
t0 = time.time()
for _ in range(n):
    step()
train = (time.time() - t0) / n
net.eval()
with torch.no_grad():
    t1 = time.time()
    for _ in range(n):
        net(x)
    infer = (time.time() - t1) / n
print(f"torch bench: threads 2, train step {train * 1000:.1f} ms, eval forward {infer * 1000:.1f} ms")
