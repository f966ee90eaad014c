#!/usr/bin/env python3
"""W1 through the two doors for a PyTorch classifier, each against its reference in the same run.

    bash bench/w1_interop_bench.sh     # builds release and the TorchScript plugin, runs this with the oracle python

W1 is bench/w1_dig_bench.py's workload: DIntegratedGradients (50 steps, Gauss-Legendre) on N (16)
images 1x128x128 with QuAC's VGG (12-24-48-96, fc 4096-4096), the same weights and inputs.

1. TorchScript door: the VGG traced (torch.jit.trace) and saved; quac-host runs D-IG with
   org.quac.torchscript-classifier on that file (libtorch computes every forward and backward), against
   Captum's IntegratedGradients on the same TorchScript module in this process, same threads. Both run
   the same libtorch kernels, so the ratio is the cost of the ABI: host calls, copies of inputs and
   gradients, the attribution plugin's own work. Target: quac-host within 5% of Captum.
2. ONNX door: the VGG exported by torch.onnx.export (opset 17, dynamic batch) and imported with
   `quac-host import`; quac-host runs D-IG with org.quac.cnn-classifier on the imported model file
   ({"preset": "file"}) and on the engine's own VGG preset with the same weights (the model file
   bench/w1_dig_bench.py writes). Target: the same time within the machine's noise.

quac-host's time is the attribution stage's own "seconds" (attributions/<name>.safetensors metadata),
median over REPEATS runs, runs of the compared variants interleaved. Captum: median over REPEATS calls
after a warm-up. PARTS=torchscript or PARTS=onnx runs one door only.
"""
import json
import os
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
sys.path.insert(0, HERE)
from w1_dig_bench import architecture, make_model  # noqa: E402  (the same network and weights as W1)


def stage_seconds(path):
    with open(path, "rb") as f:
        size = int.from_bytes(f.read(8), "little")
        return float(json.loads(f.read(size))["__metadata__"]["seconds"])


def main():
    host = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else os.path.join(ROOT, ".build", "release", "quac-host")
    repeats = int(os.environ.get("REPEATS", "3"))
    threads = int(os.environ.get("THREADS", str(os.cpu_count())))
    internal = int(os.environ.get("INTERNAL_BATCH", "64"))
    n, steps = int(os.environ.get("N", "16")), 50
    torch.set_num_threads(threads)

    model = make_model()
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (n, 1, 128, 128)).astype(np.float32)
    x_cf = rng.uniform(-1, 1, (n, 1, 128, 128)).astype(np.float32)
    labels = (np.arange(n) % 2).astype(np.int64)
    xt, bt, yt = torch.from_numpy(x), torch.from_numpy(x_cf), torch.from_numpy(labels)

    tmp = tempfile.mkdtemp(prefix="quac-w1-interop-")
    state = {k: v.detach().numpy().copy() for k, v in model.state_dict().items() if v.dtype == torch.float32}
    save_file(state, os.path.join(tmp, "engine-vgg.safetensors"), metadata={"architecture": json.dumps(architecture())})
    save_file({"images": x, "labels": labels, "counterfactuals": x_cf}, os.path.join(tmp, "data.safetensors"))
    traced = torch.jit.trace(model, xt[:1])
    torch.jit.save(traced, os.path.join(tmp, "vgg.pt"))
    torch.onnx.export(model, xt[:1], os.path.join(tmp, "vgg.onnx"), opset_version=17, input_names=["x"],
                      output_names=["logits"], dynamic_axes={"x": {0: "N"}, "logits": {0: "N"}})
    env = dict(os.environ, QUAC_PLUGIN_PATH=os.path.join(ROOT, "plugins"), QUAC_ENGINE_THREADS=str(threads),
               QUAC_PLUGIN_LIB_PATH=os.path.dirname(host))
    subprocess.run([host, "import", "vgg.onnx", "--output", "onnx-vgg.safetensors"], cwd=tmp, env=env, check=True,
                   stdout=subprocess.DEVNULL)

    classifiers = {
        "torchscript": {"plugin": "org.quac.torchscript-classifier",
                        "params": {"model": "vgg.pt", "input_shape": [1, 128, 128]}},
        "onnx": {"plugin": "org.quac.cnn-classifier", "params": {"preset": "file", "weights": "onnx-vgg.safetensors"}},
        "engine": {"plugin": "org.quac.cnn-classifier",
                   "params": {"preset": "vgg", "input_shape": [1, 128, 128], "num_classes": 2,
                              "weights": "engine-vgg.safetensors"}},
    }

    def run_host(which):
        manifest = {
            "name": "w1-" + which, "output": "run-" + which, "seed": 0, "batch_size": n,
            "data": {"format": "safetensors", "path": "data.safetensors", "x": "images", "label": "labels",
                     "x_cf": "counterfactuals"},
            "classifier": dict(classifiers[which], name="vgg"),
            "attributors": [{"plugin": "org.quac.d-integrated-gradients", "name": "dig",
                             "params": {"n_steps": steps, "method": "gausslegendre", "internal_batch_size": internal}}],
        }
        with open(os.path.join(tmp, which + ".json"), "w") as f:
            json.dump(manifest, f)
        shutil.rmtree(os.path.join(tmp, "run-" + which, "attributions"), ignore_errors=True)
        subprocess.run([host, "run", which + ".json", "-q"], cwd=tmp, env=env, check=True, stdout=subprocess.DEVNULL)
        out = os.path.join(tmp, "run-" + which, "attributions", "dig.safetensors")
        return stage_seconds(out), load_file(out)["attribution"]

    ig = IntegratedGradients(traced)

    def captum():
        t0 = time.perf_counter()
        a = ig.attribute(xt, baselines=bt, target=yt, n_steps=steps, method="gausslegendre", internal_batch_size=internal)
        return time.perf_counter() - t0, a.detach().numpy()

    parts = os.environ.get("PARTS", "torchscript,onnx").split(",")
    if "torchscript" in parts:
        captum()  # warm-up (TorchScript's first calls profile and optimise the graph)
    times = {k: [] for k in ("torchscript", "captum", "onnx", "engine")}
    maps = {}
    for i in range(repeats):
        order = [("torchscript", "captum"), ("onnx", "engine")] if i % 2 == 0 else [("captum", "torchscript"), ("engine", "onnx")]
        order = [p for p in order if ("torchscript" if "captum" in p else "onnx") in parts]
        for pair in order:
            for which in pair:
                s, a = captum() if which == "captum" else run_host(which)
                times[which].append(s)
                maps[which] = a
    med = {k: float(np.median(v)) for k, v in times.items()}

    scale = float(np.abs(maps.get("captum", maps.get("engine"))).max())
    def diff(a, b):
        return float(np.abs(a - b).max() / scale)

    print(f"W1 through the interop doors: D-IG, {n} images 1x128x128, QuAC VGG (12-24-48-96, fc 4096-4096), "
          f"n_steps {steps} gausslegendre, internal_batch_size {internal}, threads {threads}, repeats {repeats}, "
          f"torch {torch.__version__}")
    print("  runs (s): " + ", ".join(f"{k} {['%.3f' % t for t in v]}" for k, v in times.items() if v))
    if "torchscript" in parts:
        overhead = med["torchscript"] / med["captum"] - 1
        pairs = [100 * (a / b - 1) for a, b in zip(times["torchscript"], times["captum"])]
        print(f"  TorchScript plugin through quac-host: {med['torchscript']:7.3f} s   Captum on the same module in-process: "
              f"{med['captum']:7.3f} s   ABI overhead {100 * overhead:+.1f}% (per pair: {', '.join('%+.1f%%' % p for p in pairs)}; "
              f"target: under 5% -> {'met' if overhead < 0.05 else 'missed'})")
        print(f"  attribution difference (max |a - b| / max |a|): torchscript vs Captum {diff(maps['torchscript'], maps['captum']):.1e}")
    if "onnx" in parts:
        ratio = med["onnx"] / med["engine"]
        print(f"  imported ONNX VGG on the engine: {med['onnx']:7.3f} s   engine's own VGG preset: {med['engine']:7.3f} s   "
              f"ratio {ratio:.3f} (target: 1 within the machine's noise)")
        print(f"  attribution difference (max |a - b| / max |a|): onnx vs engine {diff(maps['onnx'], maps['engine']):.1e} "
              f"(the export folds batch norm into the convolutions: other float32 roundings of the same network)")
    if os.environ.get("KEEP"):
        print("  kept", tmp)
    else:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
