#!/usr/bin/env python3
"""W1: DIntegratedGradients (50 steps, Gauss-Legendre) on 16 images 1x128x128 with QuAC's VGG,
quac-host (release build, org.quac.d-integrated-gradients on org.quac.cnn-classifier) against Captum's
IntegratedGradients on PyTorch with the same weights, threads and inputs, measured in the same run.

    bash bench/w1_dig_bench.sh          # builds release, then runs this with the oracle python

Weights: QuAC's Vgg2D built in PyTorch (Kaiming-normal convolution and linear weights, random biases
and batch-norm affine parameters, running statistics from 64 random images), written as a model file
of the CNN plugin (safetensors, Vgg2D's state_dict names, the plugin's architecture JSON in the
metadata). Inputs: 16 images and 16 counterfactuals uniform in [-1, 1], labels i % 2.

quac-host: `quac-host run pipeline.json` (data in safetensors with x_cf, the CNN classifier with
"weights", the attributor with internal_batch_size = INTERNAL_BATCH); the time is the attribution
stage's own "seconds" (timings/<name>.json: the plugin's calls over the batch,
excluding process start, plugin and weight loading), median over REPEATS runs (attributions/ deleted
before each). It includes DIG's convergence-delta forward pass over x and x_cf.
Captum: IntegratedGradients(model).attribute(x, baselines=x_cf, target=y, n_steps=50,
method="gausslegendre", internal_batch_size=INTERNAL_BATCH), median over REPEATS calls after a
warm-up, with torch.set_num_threads(THREADS).
Physical limit: the network's FLOPs (direct-convolution count; D-IG's forward passes and input
gradients, each about a forward's FLOPs, plus the convergence check's forward passes) at the machine's
sgemm rate, torch.mm 2048^3 on THREADS threads in the same run; the script prints which fraction of
it each side reaches. Peak memory (max RSS): quac-host's in-process runs (--isolation none, everything
in one process) from wait4, and this process's own peak after Captum's calls (Python, torch, Captum,
the model and the attributions; before the float64 reference below).
Agreement: both results are float32 computations of a rough integrand (random images through an
untrained ReLU network), so besides their difference the script computes Captum's result in float64
and fails if quac-host is clearly further from it than Captum's float32 result is.
"""
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from captum.attr import IntegratedGradients
from safetensors.numpy import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CHANNELS = [12, 24, 48, 96]
FC = [4096, 4096]


class Vgg2D(torch.nn.Module):
    """QuAC's Vgg2D for input 1x128x128, fmaps 12, 2 classes (dropout is the identity in eval mode)."""

    def __init__(self):
        super().__init__()
        layers, c = [], 1
        for out in CHANNELS:
            layers += [torch.nn.Conv2d(c, out, 3, padding=1), torch.nn.BatchNorm2d(out), torch.nn.ReLU(),
                       torch.nn.Conv2d(out, out, 3, padding=1), torch.nn.BatchNorm2d(out), torch.nn.ReLU(),
                       torch.nn.MaxPool2d(2)]
            c = out
        self.features = torch.nn.Sequential(*layers)
        self.classifier = torch.nn.Sequential(
            torch.nn.Linear(c * 8 * 8, FC[0]), torch.nn.ReLU(), torch.nn.Dropout(0.0),
            torch.nn.Linear(FC[0], FC[1]), torch.nn.ReLU(), torch.nn.Dropout(0.0),
            torch.nn.Linear(FC[1], 2))

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


def architecture():
    """The CNN plugin's ModelFile description of its vgg preset (CNNArchitecture.vgg) for these sizes."""
    features, c = [], 1
    for out in CHANNELS:
        features += [{"type": "conv2d", "in": c, "out": out, "kernel": 3, "padding": 1},
                     {"type": "batch_norm", "channels": out}, {"type": "relu"},
                     {"type": "conv2d", "in": out, "out": out, "kernel": 3, "padding": 1},
                     {"type": "batch_norm", "channels": out}, {"type": "relu"},
                     {"type": "max_pool2d", "kernel": 2}]
        c = out
    classifier, width = [], c * 8 * 8
    for i, units in enumerate(FC):
        classifier += [{"type": "linear", "in": width, "out": units}, {"type": "relu"},
                       {"type": "dropout", "p": 0.0, "seed": i}]
        width = units
    classifier.append({"type": "linear", "in": width, "out": 2})
    return {"type": "graph", "init": "kaiming_normal", "output": "classifier",
            "nodes": [{"name": "features", "layer": {"type": "sequential", "layers": features}},
                      {"name": "flatten", "layer": {"type": "flatten"}},
                      {"name": "classifier", "layer": {"type": "sequential", "layers": classifier}}]}


def make_model():
    torch.manual_seed(0)
    model = Vgg2D()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                m.bias.uniform_(-0.05, 0.05)
            elif isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
                m.momentum = None  # cumulative average over the calibration batches
        model.train()
        for _ in range(4):
            model(torch.rand(16, 1, 128, 128) * 2 - 1)
    model.eval()
    return model


def main():
    host = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else os.path.join(ROOT, ".build", "release", "quac-host")
    repeats = int(os.environ.get("REPEATS", "3"))
    threads = int(os.environ.get("THREADS", str(os.cpu_count())))
    internal = int(os.environ.get("INTERNAL_BATCH", "64"))
    n, steps = 16, 50
    torch.set_num_threads(threads)

    model = make_model()
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (n, 1, 128, 128)).astype(np.float32)
    x_cf = rng.uniform(-1, 1, (n, 1, 128, 128)).astype(np.float32)
    labels = (np.arange(n) % 2).astype(np.int64)

    tmp = tempfile.mkdtemp(prefix="quac-w1-")
    state = {k: v.detach().numpy().copy() for k, v in model.state_dict().items() if v.dtype == torch.float32}
    save_file(state, os.path.join(tmp, "model.safetensors"), metadata={"architecture": json.dumps(architecture())})
    save_file({"images": x, "labels": labels, "counterfactuals": x_cf}, os.path.join(tmp, "data.safetensors"))
    manifest = {
        "name": "w1", "output": "run", "seed": 0, "batch_size": n,
        "data": {"format": "safetensors", "path": "data.safetensors", "x": "images", "label": "labels",
                 "x_cf": "counterfactuals"},
        "classifier": {"plugin": "org.quac.cnn-classifier", "name": "vgg",
                       "params": {"preset": "vgg", "input_shape": [1, 128, 128], "num_classes": 2,
                                  "weights": "model.safetensors"}},
        "attributors": [{"plugin": "org.quac.d-integrated-gradients", "name": "dig",
                         "params": {"n_steps": steps, "method": "gausslegendre", "internal_batch_size": internal}}],
    }
    with open(os.path.join(tmp, "pipeline.json"), "w") as f:
        json.dump(manifest, f)
    env = dict(os.environ, QUAC_PLUGIN_PATH=os.path.join(ROOT, "plugins"), QUAC_ENGINE_THREADS=str(threads))
    out_file = os.path.join(tmp, "run", "attributions", "dig.safetensors")
    timing_file = os.path.join(tmp, "run", "timings", "dig.json")

    peak_rss = []  # MiB, quac-host runs in one process (--isolation none)

    def run_host(isolation="process"):
        shutil.rmtree(os.path.join(tmp, "run", "attributions"), ignore_errors=True)
        shutil.rmtree(os.path.join(tmp, "run", "timings"), ignore_errors=True)
        t0 = time.perf_counter()
        p = subprocess.Popen([host, "run", "pipeline.json", "-q", "--isolation", isolation], cwd=tmp, env=env,
                             stdout=subprocess.DEVNULL)
        _, status, usage = os.wait4(p.pid, 0)  # this child's own peak memory
        p.returncode = os.waitstatus_to_exitcode(status)
        whole = time.perf_counter() - t0
        if p.returncode != 0:
            raise SystemExit(f"quac-host run exited with {p.returncode}")
        if isolation == "none":
            peak_rss.append(usage.ru_maxrss / 1024.0)
        with open(timing_file) as f:  # the stage's own seconds
            return float(json.load(f)["seconds"]), whole

    # Interleaved, so both modes see the same machine: with process isolation (the default; the
    # attribution stage runs in a worker) and in-process.
    host_runs, inproc_runs = [], []
    for i in range(repeats):
        # Alternate which goes first, so neither always runs on a warmer machine.
        if i % 2 == 0:
            host_runs.append(run_host("process")); inproc_runs.append(run_host("none"))
        else:
            inproc_runs.append(run_host("none")); host_runs.append(run_host("process"))
    host_s = float(np.median([s for s, _ in host_runs]))
    host_whole = float(np.median([w for _, w in host_runs]))
    inproc_whole = float(np.median([w for _, w in inproc_runs]))
    ours = load_file(out_file)["attribution"]

    ig = IntegratedGradients(model)
    xt, bt, yt = torch.from_numpy(x), torch.from_numpy(x_cf), torch.from_numpy(labels)

    def captum():
        return ig.attribute(xt, baselines=bt, target=yt, n_steps=steps, method="gausslegendre",
                            internal_batch_size=internal)

    theirs = captum().detach().numpy()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        captum()
        times.append(time.perf_counter() - t0)
    captum_s = float(np.median(times))
    # This process's peak so far: Python, torch, Captum, the model and the attribution calls (the
    # float64 reference below comes after).
    captum_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

    # The physical limit: the network's multiply-adds at the machine's sgemm rate, measured now.
    # D-IG costs n x steps forward passes and as many input gradients (about a forward's FLOPs each),
    # plus the convergence check's forward passes of x and x_cf.
    flops_forward, c, side = 0, 1, 128
    for out in CHANNELS:
        flops_forward += 2 * 9 * (c * out + out * out) * side * side
        c, side = out, side // 2
    width = c * side * side
    for units in FC + [2]:
        flops_forward += 2 * width * units
        width = units
    flops = flops_forward * (2 * n * steps + 2 * n)
    a, b = torch.rand(2048, 2048), torch.rand(2048, 2048)
    torch.mm(a, b)
    rates = []
    for _ in range(5):
        t0 = time.perf_counter()
        torch.mm(a, b)
        rates.append(2 * 2048 ** 3 / (time.perf_counter() - t0))
    sgemm = float(np.median(rates))
    limit_s = flops / sgemm

    # Both are float32 computations of a rough integrand (random images through an untrained ReLU
    # network: rounding flips ReLU and max-pool decisions at some path points), so they are also
    # compared with Captum in float64, the reference both approximate.
    model64 = make_model().double()
    exact = IntegratedGradients(model64).attribute(xt.double(), baselines=bt.double(), target=yt, n_steps=steps,
                                                   method="gausslegendre", internal_batch_size=internal)
    exact = exact.detach().numpy()
    scale = float(np.abs(exact).max())

    def errors(a, b):
        """(max |a - b| / max |b|, ||a - b|| / ||b||, median |a - b| / max |b|)"""
        d = np.abs(a - b)
        return float(d.max() / scale), float(np.linalg.norm(a - b) / np.linalg.norm(b)), float(np.median(d) / scale)

    vs_captum, ours_vs_exact, captum_vs_exact = errors(ours, theirs), errors(ours, exact), errors(theirs, exact)
    with torch.no_grad():
        logits = model(xt).numpy()

    print(f"W1 DIntegratedGradients, {n} images 1x128x128, QuAC VGG (12-24-48-96, fc 4096-4096), n_steps {steps} "
          f"gausslegendre, internal_batch_size {internal}, threads {threads}, repeats {repeats}")
    print(f"  logits of x range [{logits.min():.2f}, {logits.max():.2f}]")
    print(f"  quac-host attribution stage: {host_s:7.3f} s = {n / host_s:6.2f} images/s"
          f"   (whole quac-host run incl. process start and weight loading: {host_whole:.3f} s)")
    print(f"  process isolation: whole run {host_whole:.3f} s with a worker, {inproc_whole:.3f} s in-process"
          f" = {100 * (host_whole / inproc_whole - 1):+.1f}% (target: within 3%)")
    print(f"  Captum {__import__('captum').__version__} on torch {torch.__version__}:  {captum_s:7.3f} s = {n / captum_s:6.2f} images/s")
    print(f"  ratio (quac-host / Captum images/s): {captum_s / host_s:.2f}x   (target: at least 3x -> "
          f"{'met' if captum_s / host_s >= 3 else 'missed'})")
    print(f"  physical limit: {flops / 1e9:.0f} GFLOP (direct-convolution count) at the machine's sgemm rate "
          f"{sgemm / 1e9:.1f} GFLOP/s (torch.mm 2048^3, {threads} threads, this run) = {limit_s:.3f} s; quac-host's stage "
          f"runs at {100 * limit_s / host_s:.0f}% of it (aim: 70%), Captum at {100 * limit_s / captum_s:.0f}%")
    print(f"  peak memory (max RSS): quac-host run in one process {np.median(peak_rss):.0f} MiB, Captum's process "
          f"{captum_rss:.0f} MiB -> quac-host / Captum {np.median(peak_rss) / captum_rss:.2f} (target: at most 1 -> "
          f"{'met' if np.median(peak_rss) <= captum_rss else 'missed'})")
    fmt = "max {:.1e}, L2 {:.1e}, median {:.1e}"
    print("  attribution differences (relative to max |attribution| or to the reference's L2 norm):")
    print("    quac-host vs Captum (float32):  " + fmt.format(*vs_captum))
    print("    quac-host vs Captum in float64: " + fmt.format(*ours_vs_exact))
    print("    Captum    vs Captum in float64: " + fmt.format(*captum_vs_exact))
    if os.environ.get("KEEP"):
        print("  kept", tmp)
    else:
        shutil.rmtree(tmp)
    # quac-host must be as close to the float64 reference as Captum's float32 result is.
    if ours_vs_exact[1] > 2 * captum_vs_exact[1] + 1e-5 or ours_vs_exact[0] > 3 * captum_vs_exact[0] + 1e-4:
        print("FAIL: quac-host's attributions are further from the float64 reference than Captum's")
        sys.exit(1)


if __name__ == "__main__":
    main()
