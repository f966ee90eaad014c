#!/usr/bin/env python3
"""The logic explainer (org.quac.logic-explainer) against torch_explain on the concept datasets of
examples/logic: model accuracy, rule accuracy, rule complexity, stability over seeds and the time to
extract the rules.

    python3 bench/logic_bench.py QUAC_HOST REFERENCE_JSON [--seeds 0,1,2,3,4] [--out runs/logic-bench]
    python3 bench/logic_bench.py QUAC_HOST --no-reference --seeds 0-19 --datasets breast_cancer
    python3 bench/logic_bench.py QUAC_HOST --no-reference --seeds 0-19 --datasets breast_cancer --param networks=1

QUAC_HOST is a release build of quac-host; REFERENCE_JSON is what bench/logic_reference.py wrote for
torch_explain (same data, same epochs, same seeds). For each dataset and seed this runs
examples/logic/<dataset>.json with the explainer's train block seed set to the seed, and reads back:
the network's test accuracy and each class's rule accuracy on the test split (the rule as "the sample
is of this class", against the label), both from the explainer's per-sample JSON (predicted,
rule_truth), the rule's literal count, and the explainer's own timing of training and rule extraction
(models/len.json). --param KEY=JSON (repeatable) overrides one of the explainer's params in every
manifest, e.g. networks=1 for a single network where the breast cancer manifest trains five.
Needs numpy and safetensors (the test environment has both).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

import numpy as np
from safetensors.numpy import load_file

DATASETS = ["xor", "trigonometry", "dot", "breast_cancer"]


def run(host, dataset, seed, out, params=None):
    with open(f"examples/logic/{dataset}.json") as f:
        m = json.load(f)
    base = os.path.abspath("examples/logic")
    def fix(spec):
        spec["path"] = os.path.join(base, spec["path"])
    fix(m["data"])
    for block in (m["classifier"]["train"], m["attributors"][0]["train"]):
        fix(block["data"]); fix(block["val"])
    m["attributors"][0]["train"]["seed"] = seed
    if params:
        m["attributors"][0].setdefault("params", {}).update(params)
    m["output"] = os.path.abspath(os.path.join(out, f"{dataset}-seed{seed}"))
    path = os.path.join(out, f"{dataset}-seed{seed}.json")
    os.makedirs(out, exist_ok=True)
    with open(path, "w") as f:
        json.dump(m, f, indent=1)
    r = subprocess.run([host, "run", "-q", path], capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"{dataset} seed {seed}: quac-host failed:\n{r.stderr}")
    root = m["output"]
    labels = load_file(os.path.join(root, "predictions.safetensors"))["label"]
    doc = json.load(open(os.path.join(root, "attributions/len.json")))
    record = json.load(open(os.path.join(root, "models/len.json")))["history"]
    predicted = np.array(doc["predicted"])
    truth = np.array(doc["rule_truth"], dtype=bool)
    rules = []
    for r in doc["rules"]["classes"]:
        i = r["class"]
        rules.append({"rule": r["rule"], "complexity": r["complexity"],
                      "accuracy": float(np.mean(truth[:, i] == (labels == i)))})
    return {"model_accuracy": float(np.mean(predicted == labels)), "rules": rules,
            "extraction_seconds": record["extraction_seconds"], "training_seconds": record["training_seconds"]}


def summary(values):
    return f"{statistics.median(values):.4f} (min {min(values):.4f})"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("reference", nargs="?", help="torch_explain's numbers (bench/logic_reference.py); not with --no-reference")
    ap.add_argument("--no-reference", action="store_true", help="quac-host alone, for seeds torch_explain was not run on")
    ap.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated, or a range a-b")
    ap.add_argument("--out", default="runs/logic-bench")
    ap.add_argument("--datasets", default=",".join(DATASETS))
    ap.add_argument("--param", action="append", default=[], metavar="KEY=JSON",
                    help="set one of the explainer's params in every manifest (repeatable), e.g. networks=1")
    a = ap.parse_args()
    if a.seeds.count("-") == 1 and "," not in a.seeds:
        lo, hi = a.seeds.split("-")
        seeds = list(range(int(lo), int(hi) + 1))
    else:
        seeds = [int(s) for s in a.seeds.split(",")]
    if (a.reference is None) != a.no_reference:
        sys.exit("give REFERENCE_JSON, or --no-reference (not both)")
    ref = {"datasets": {}} if a.no_reference else json.load(open(a.reference))
    params = {}
    for p in a.param:
        key, sep, value = p.partition("=")
        if not sep:
            sys.exit(f"--param {p}: expected KEY=JSON")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError as e:
            sys.exit(f"--param {p}: the value is not JSON ({e})")
    results = {}
    for ds in a.datasets.split(","):
        ours = [run(a.host, ds, s, a.out, params) for s in seeds]
        theirs = [r for r in ref["datasets"].get(ds, {}).get("runs", []) if r["seed"] in seeds]
        if a.no_reference:
            results[ds] = {"quac_host": ours}
            print(f"\n== {ds} ({len(seeds)} seeds, quac-host alone)")
            print(f"  model accuracy       {summary([o['model_accuracy'] for o in ours])}")
            for c in range(len(ours[0]["rules"])):
                mine = [o["rules"][c]["accuracy"] for o in ours]
                print(f"  class {c} rule accuracy {summary(mine)} spread {max(mine) - min(mine):.4f}, "
                      f"literals {statistics.median([o['rules'][c]['complexity'] for o in ours])}, "
                      f"{len(set(o['rules'][c]['rule'] for o in ours))} distinct rules")
            continue
        if len(theirs) != len(seeds):
            sys.exit(f"{a.reference} has {len(theirs)} of the {len(seeds)} seeds of {ds}")
        results[ds] = {"quac_host": ours, "torch_explain": theirs}
        print(f"\n== {ds} ({len(seeds)} seeds)")
        print(f"  model accuracy       quac-host {summary([o['model_accuracy'] for o in ours])}   torch_explain {summary([t['model_accuracy'] for t in theirs])}")
        for c in range(len(ours[0]["rules"])):
            mine = [o["rules"][c]["accuracy"] for o in ours]
            ref_acc = [t["classes"][str(c)]["explanation_accuracy"] for t in theirs]
            print(f"  class {c} rule accuracy quac-host {summary(mine)} spread {max(mine) - min(mine):.4f}   "
                  f"torch_explain {summary(ref_acc)} spread {max(ref_acc) - min(ref_acc):.4f}")
            print(f"          literals     quac-host {statistics.median([o['rules'][c]['complexity'] for o in ours])}   "
                  f"torch_explain {statistics.median([t['classes'][str(c)]['complexity'] for t in theirs])}")
            print(f"          rules        quac-host {sorted(set(o['rules'][c]['rule'] for o in ours))}")
        mine_t = statistics.median([o["extraction_seconds"] for o in ours])
        ref_t = statistics.median([t["extraction_seconds"] for t in theirs])
        print(f"  rule extraction      quac-host {mine_t * 1000:.2f} ms   torch_explain {ref_t * 1000:.1f} ms   ratio {ref_t / mine_t:.0f}x")
        print(f"  training             quac-host {statistics.median([o['training_seconds'] for o in ours]):.2f} s   "
              f"torch_explain {statistics.median([t['training_seconds'] for t in theirs]):.2f} s")
    with open(os.path.join(a.out, "logic_bench.json"), "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
