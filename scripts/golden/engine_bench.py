#!/usr/bin/env python3
"""PyTorch timings of the networks in Tests/EngineTests/BenchmarkTests.swift (same shapes).

Usage: python engine_bench.py [threads]   (default 2)
"""
import sys
import time
import torch
import torch.nn.functional as F

torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
torch.manual_seed(0)
B = lambda c: [torch.nn.BatchNorm2d(c), torch.nn.ReLU()]


def vggish():
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 32, 3, padding=1), *B(32), torch.nn.Conv2d(32, 32, 3, padding=1), *B(32), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 3, padding=1), *B(64), torch.nn.Conv2d(64, 64, 3, padding=1), *B(64), torch.nn.MaxPool2d(2),
        torch.nn.AdaptiveAvgPool2d((1, 1)), torch.nn.Flatten(), torch.nn.Linear(64, 4))


def quac_vgg():
    layers, c = [], 1
    for out in [12, 24, 48, 96]:
        layers += [torch.nn.Conv2d(c, out, 3, padding=1), *B(out), torch.nn.Conv2d(out, out, 3, padding=1), *B(out),
                   torch.nn.MaxPool2d(2)]
        c = out
    return torch.nn.Sequential(*layers, torch.nn.Flatten(), torch.nn.Linear(6144, 4096), torch.nn.ReLU(),
                               torch.nn.Linear(4096, 4096), torch.nn.ReLU(), torch.nn.Linear(4096, 2))


def bench(name, net, shape, classes):
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x = torch.rand(*shape) * 2 - 1
    y = torch.arange(shape[0]) % classes

    def step():
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()
    n = 5
    t0, c0 = time.time(), time.process_time()
    for _ in range(n):
        step()
    train, train_cpu = (time.time() - t0) / n, (time.process_time() - c0) / n
    net.eval()
    with torch.no_grad():
        t1, c1 = time.time(), time.process_time()
        for _ in range(n):
            net(x)
        infer, infer_cpu = (time.time() - t1) / n, (time.process_time() - c1) / n
    print(f"torch bench {name}: threads {torch.get_num_threads()}, train step {train * 1000:.1f} ms (cpu {train_cpu * 1000:.1f}), "
          f"eval forward {infer * 1000:.1f} ms (cpu {infer_cpu * 1000:.1f})")


bench("vggish 16x3x64x64", vggish(), (16, 3, 64, 64), 4)
bench("QuAC VGG 8x1x128x128", quac_vgg(), (8, 1, 128, 128), 2)
