#!/usr/bin/env python3
"""The empirical-family targets, read from a finished run of examples/empirical (or any run with
empirical explainers and convergence studies): for each learned explainer, its speed against the method
it imitates (seconds per sample of both attribution stages, measured in the same run), its QuAC median
against the method's, and its MSE against the method's maps beside the method's own convergence curve.

    bash bench/empirical_bench.sh            # builds release, makes the data, runs the example, then this
    python3 bench/empirical_bench.py RUN     # a finished run folder

Needs numpy and safetensors (the test environment .venv-test has them).
"""
import json
import os
import sys



def seconds_per_sample(run, method):
    with open(os.path.join(run, "timings", method + ".json")) as f:
        timing = json.load(f)
    return float(timing["seconds"]) / max(int(timing["samples"]), 1)


def quac_median(run, method):
    with open(os.path.join(run, "scores", method + ".json")) as f:
        scorers = json.load(f)["scorers"]
    return next(iter(scorers.values()))["median"] if scorers else float("nan")


def main(run):
    with open(os.path.join(run, "run.json")) as f:
        manifest = json.load(f)["manifest"]
    learned = {a["name"]: a["train"]["targets_from"] for a in manifest.get("attributors", [])
               if a.get("train", {}).get("targets_from")}
    if not learned:
        sys.exit(f"{run}: no learned explainers (attributors with train.targets_from)")
    for name, target in learned.items():
        t_s, g_s = seconds_per_sample(run, target), seconds_per_sample(run, name)
        t_q, g_q = quac_median(run, target), quac_median(run, name)
        print(f"{name} imitating {target}:")
        print(f"  speed: {1000 * g_s:.2f} ms/sample vs {1000 * t_s:.2f} ms/sample = {t_s / g_s:.1f}x faster")
        print(f"  QuAC median: {g_q:.4f} vs {t_q:.4f} = {100 * g_q / t_q:.1f}% of the method's")
        study = os.path.join(run, "convergence", target + ".json")
        if os.path.exists(study):
            with open(study) as f:
                c = json.load(f)
            e = c["explainers"].get(name, {})
            curve = ", ".join(f"{c['parameter']}={v}: {m:.3g}" for v, m in zip(c["values"], c["mse"]))
            print(f"  MSE against {target}: {e.get('mse', float('nan')):.3g} (method: {curve}); as good as "
                  f"{c['parameter']} = {e.get('as_good_as')}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "runs", "empirical"))
