#!/usr/bin/env python3
"""The SMAT-style explainer's targets on examples/smat: over several trainings of the explainer (the
train block's seed), the Random head's learned weight and the simulability study's medians.

    python3 bench/smat_bench.py QUAC_HOST [--seeds 0,1,2,3,4] [--out runs/smat-bench]

QUAC_HOST is a release build of quac-host. Each seed runs examples/smat/pipeline.json with the
explainer's train block seed set to it (output runs/smat-bench/seed<k>; the classifier and the heads'
maps are computed once per output folder) and reads models/smat.json. Prints per seed the learned
weights and, per condition and budget, the median [25th, 75th percentile] simulability; then whether
the learned explainer beats no explanation and the uniform mix at the smallest budget, and Random's
largest weight.
"""
import argparse
import json
import os
import subprocess
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--out", default="runs/smat-bench")
    a = ap.parse_args()
    base = os.path.abspath("examples/smat")
    m0 = json.load(open(os.path.join(base, "pipeline.json")))
    random_weights, wins = [], []
    for seed in [int(s) for s in a.seeds.split(",")]:
        m = json.loads(json.dumps(m0))
        def fix(spec):
            spec["path"] = os.path.normpath(os.path.join(base, spec["path"]))
        fix(m["data"])
        for block in (m["classifier"]["train"], m["attributors"][-1]["train"]):
            fix(block["data"]); fix(block["val"])
        m["attributors"][-1]["train"]["seed"] = seed
        m["output"] = os.path.abspath(os.path.join(a.out, f"seed{seed}"))
        os.makedirs(a.out, exist_ok=True)
        path = os.path.join(a.out, f"seed{seed}.json")
        json.dump(m, open(path, "w"), indent=1)
        r = subprocess.run([a.host, "run", "-q", path], capture_output=True, text=True)
        if r.returncode:
            sys.exit(f"seed {seed}: quac-host failed:\n{r.stderr}")
        h = json.load(open(os.path.join(m["output"], "models/smat.json")))["history"]
        weights = {x["name"]: x["weight"] for x in h["heads"]["weights"]} if isinstance(h["heads"], dict) else {x["name"]: x["weight"] for x in h["heads"]}
        print(f"\n== train seed {seed}: weights " + ", ".join(f"{k} {v:.3f}" for k, v in weights.items() if v > 0) + " (the others 0)")
        study = h["simulability"]
        med = {}
        for c in study["conditions"]:
            cells = [f"{r['budget']}: {r['median']:.3f} [{r['q1']:.3f}, {r['q3']:.3f}]" for r in c["results"]]
            med[c["name"]] = c["results"][0]["median"]
            print(f"  {c['name']:<26}" + "   ".join(cells))
        random_weights.append(weights.get("random", 0.0))
        wins.append(med["learned"] > med["none"] and med["learned"] > med["uniform"])
    print(f"\nRandom's largest learned weight: {max(random_weights):.3f} (target < 0.05)")
    print(f"learned beats none and uniform at the smallest budget in {sum(wins)} of {len(wins)} trainings")


if __name__ == "__main__":
    main()
