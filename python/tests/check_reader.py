"""Checks quac_results against a results folder that `quac-host run` and `quac-host compare` wrote:
every array equals what the safetensors package reads (dtype, shape, bits), the run record equals
run.json, per-sample scores equal scores/<method>.json, and compare() equals comparison.csv.
Usage: python check_reader.py RESULTS_FOLDER  (prints "reader ok: ..." or fails with an assertion)."""
import json
import os
import sys

import numpy as np
import pandas as pd
from safetensors.numpy import load_file

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import quac_results as qr  # noqa: E402


def same(a, b, what):
    assert a.keys() == b.keys(), f"{what}: {sorted(a)} vs {sorted(b)}"
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, f"{what}/{k}: {a[k].dtype}{a[k].shape} vs {b[k].dtype}{b[k].shape}"
        assert np.array_equal(a[k], b[k], equal_nan=a[k].dtype.kind == "f"), f"{what}/{k}: values differ"


def main(folder):
    run = qr.load(folder)
    checked = 0
    same(run.inputs, load_file(os.path.join(folder, "inputs.safetensors")), "inputs")
    same(run.predictions, load_file(os.path.join(folder, "predictions.safetensors")), "predictions")
    with open(os.path.join(folder, "run.json")) as f:
        assert run.record == json.load(f)
    assert run.methods, "no methods"
    for m in run.methods:
        same(run.attribution_file(m), load_file(os.path.join(folder, "attributions", f"{m}.safetensors")), m)
        assert np.array_equal(run.attribution(m), load_file(os.path.join(folder, "attributions", f"{m}.safetensors"))["attribution"])
        for s in run.scorers(m):
            same(run.score_tensors(m, s), load_file(os.path.join(folder, "scores", f"{m}.{s}.safetensors")), f"{m}.{s}")
            checked += 1
    long = run.scores()
    with open(os.path.join(folder, "scores", f"{run.methods[0]}.json")) as f:
        summary = json.load(f)
    for s, entry in summary["scorers"].items():
        mine = long[(long.method == run.methods[0]) & (long.scorer == s)].sort_values("sample")["score"].to_numpy()
        assert np.allclose(mine, entry["score"], rtol=1e-6, atol=1e-7), f"scores of {s}"
        if "curve" in run.score_tensors(run.methods[0], s):
            x, curves = run.curve(run.methods[0], s)
            assert curves.shape[0] == len(mine) and x.shape == (curves.shape[1],)

    mine = qr.compare(run).sort_values(["method", "scorer"]).reset_index(drop=True)
    csv = pd.read_csv(os.path.join(folder, "comparison.csv")).sort_values(["method", "scorer"]).reset_index(drop=True)
    assert len(mine) == len(csv) and len(csv) >= 4, f"{len(mine)} rows vs comparison.csv's {len(csv)}"
    for col in ["method", "scorer", "better"]:
        assert list(mine[col]) == list(csv[col]), f"{col}: {list(mine[col])} vs {list(csv[col])}"
    for col in ["median", "q25", "q75", "mean"]:
        assert np.allclose(mine[col], csv[col], rtol=1e-9, atol=1e-12), f"{col}:\n{mine[col]}\n{csv[col]}"
    assert list(mine["rank"]) == list(csv["rank"]), f"rank: {list(mine['rank'])} vs {list(csv['rank'])}"
    assert set(csv["better"]) == {"higher", "lower"}, "the test run should have scorers of both directions"
    print(f"reader ok: {len(run.methods)} methods, {checked} score files, {len(csv)} comparison rows")


if __name__ == "__main__":
    main(sys.argv[1])
