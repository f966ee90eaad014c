#!/usr/bin/env python3
"""W2: the QuAC evaluator on 16 pairs (1x128x128, 200 thresholds, a linear classifier), quac-host
(release build) against the reference algorithm in Python (scripts/golden/quac_evaluator_reference.py:
OpenCV + SciPy + PyTorch, as funkelab/quac computes it), measured in the same run on the same inputs.

    bash bench/quac_evaluator_bench.sh          # builds release, then runs this with the oracle python

quac-host runs a pipeline manifest (data in safetensors, org.quac.residual attributor, the evaluator).
The scorer stage is timed as (run after deleting scores/) - (run with everything reused): both runs
start the process, load plugins and data and reuse the attribution, so the difference is the scoring.
The Python side times, per pair, the reference's predictions, evaluate() (200 masks, hybrids, one
classifier call), the optimal threshold, the interpolated curve and its area, on the maps quac-host
wrote (attributions/residual.safetensors "normalized"). Scores must agree within 1e-5.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import resource

import numpy as np
from safetensors.numpy import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "scripts", "golden"))
import quac_evaluator_reference as ref  # noqa: E402


def main():
    host = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else os.path.join(ROOT, ".build-quac", "release", "quac-host")
    repeats = int(os.environ.get("REPEATS", "5"))
    n, c, h, w, classes = 16, 1, 128, 128, 2
    rng = np.random.default_rng(7)
    d = c * h * w
    # Queries, and counterfactuals that differ from them in a smooth blob (so the residual map has
    # structure and the masks a range of sizes).
    x = rng.uniform(-1, 1, (n, c, h, w)).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w]
    weight = (rng.standard_normal((classes, d)) * 7.0 / d).astype(np.float32)
    bias = np.zeros(classes, np.float32)
    labels = (np.arange(n) % classes).astype(np.int64)
    x_cf = x.copy()
    for i in range(n):
        cy, cx, r = rng.uniform(30, 98), rng.uniform(30, 98), rng.uniform(10, 30)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r)).astype(np.float32)
        toward = np.sign(weight[(labels[i] + 1) % classes] - weight[labels[i]]).reshape(h, w)
        x_cf[i, 0] = np.clip(x[i, 0] + 1.5 * blob * toward + rng.normal(0, 0.05, (h, w)), -1, 1)
    tmp = tempfile.mkdtemp(prefix="quac-w2-")
    save_file({"images": x, "labels": labels, "counterfactuals": x_cf.astype(np.float32)}, os.path.join(tmp, "data.safetensors"))
    save_file({"fc2.weight": weight, "fc2.bias": bias}, os.path.join(tmp, "model.safetensors"))
    manifest = {
        "name": "w2", "output": "run", "seed": 0, "batch_size": 16,
        "data": {"format": "safetensors", "path": "data.safetensors", "x": "images", "label": "labels",
                 "x_cf": "counterfactuals"},
        "classifier": {"plugin": "org.quac.mlp-classifier",
                       "params": {"input_shape": [c, h, w], "num_classes": classes, "hidden": 0,
                                  "weights": "model.safetensors"}},
        "attributors": [{"plugin": "org.quac.residual", "name": "residual"}],
        "scorers": [{"plugin": "org.quac.quac-evaluator", "name": "quac"}],
    }
    with open(os.path.join(tmp, "pipeline.json"), "w") as f:
        json.dump(manifest, f)
    env = dict(os.environ, QUAC_PLUGIN_PATH=os.path.join(ROOT, "plugins"))

    def child_cpu():
        r = resource.getrusage(resource.RUSAGE_CHILDREN)
        return r.ru_utime + r.ru_stime

    def run():
        """Wall and CPU seconds of one quac-host run."""
        t0, c0 = time.perf_counter(), child_cpu()
        subprocess.run([host, "run", "pipeline.json", "-q"], cwd=tmp, env=env, check=True,
                       stdout=subprocess.DEVNULL)
        return time.perf_counter() - t0, child_cpu() - c0

    run()  # first run computes predictions and attributions
    scored, reused = [], []
    for _ in range(repeats):
        shutil.rmtree(os.path.join(tmp, "run", "scores"))
        scored.append(run())
        reused.append(run())
    swift_s = float(np.median([t for t, _ in scored]) - np.median([t for t, _ in reused]))
    swift_cpu = float(np.median([c for _, c in scored]) - np.median([c for _, c in reused]))
    whole = float(np.median([t for t, _ in scored]))

    maps = load_file(os.path.join(tmp, "run", "attributions", "residual.safetensors"))["normalized"]
    with open(os.path.join(tmp, "run", "scores", "residual.json")) as f:
        doc = json.load(f)["scorers"]["quac"]
    swift_scores = np.array(doc["score"])
    target = (labels + 1) % classes
    classifier = ref.linear_classifier(weight, bias)
    processor = ref.Processor()
    py_times, py_cpu, py_scores = [], [], None
    for _ in range(max(1, repeats // 2)):
        t0, c0 = time.perf_counter(), time.process_time()
        scores, optimal = [], []
        for i in range(n):
            r = ref.evaluate(classifier, x[i], x_cf[i], int(target[i]), maps[i], processor)
            scores.append(ref.quac_score(ref.quac_curve(r["mask_sizes"], r["score_change"])))
            optimal.append(r["optimal_index"])
        py_times.append(time.perf_counter() - t0)
        py_cpu.append(time.process_time() - c0)
        py_scores = np.array(scores)
    py_s = float(np.median(py_times))
    py_c = float(np.median(py_cpu))
    diff = float(np.max(np.abs(py_scores - swift_scores)))
    print(f"W2 QuAC evaluator, {n} pairs {c}x{h}x{w}, 200 thresholds, linear classifier")
    print(f"  quac-host scorer stage: {swift_s * 1000:8.1f} ms wall, {swift_cpu * 1000:8.1f} ms CPU"
          f"   (whole run incl. process start: {whole * 1000:.1f} ms wall)")
    print(f"  Python reference:       {py_s * 1000:8.1f} ms wall, {py_c * 1000:8.1f} ms CPU")
    print(f"  ratio (reference / quac-host): {py_s / swift_s:.1f}x wall, {py_c / swift_cpu:.1f}x CPU"
          f"   (whole run: {py_s / whole:.1f}x wall)")
    same_optimal = [int(v) for v in doc["optimal_index"]] == [int(v) for v in optimal]
    print(f"  scores agree: max |difference| = {diff:.2e} over {n} pairs; optimal thresholds equal: {same_optimal}")
    if os.environ.get("KEEP"):
        print("  kept", tmp)
    else:
        shutil.rmtree(tmp)
    if diff > 1e-5 or not same_optimal:
        print("FAIL: scores differ")
        sys.exit(1)


if __name__ == "__main__":
    main()
