#!/usr/bin/env python3
"""The torch_explain side of the Logic Explained Network benchmark: for each concept dataset of
examples/logic/data (scripts/logic/make_datasets.py) and seeds 0..4, trains torch_explain's entropy-based
LEN and extracts its class rules with torch_explain's explain_classes, timing both.

Run with the oracle environment (bash scripts/oracle-env.sh sets up ~/.cache/quac-oracle):
    ~/.cache/quac-oracle/bin/python bench/logic_reference.py --out runs/logic-reference --epochs 1000 \\
        --data examples/logic/data

Per dataset and seed: torch.manual_seed(seed); the LEN of torch_explain's README,
nn.Sequential(EntropyLinear(k, 10, n_classes=2), LeakyReLU(), Linear(10, 4), LeakyReLU(), Linear(4, 1))
(temperature 0.6, LeakyReLU slope 0.01), trained full batch on the train split with
torch.optim.AdamW(lr=1e-3) (weight decay 0.01, PyTorch's default) for --epochs steps on
BCEWithLogits(model(c).squeeze(-1), one_hot(label)) + 1e-4 * entropy_logic_loss(model). Then
    model_accuracy   on the test split, argmax of the two logits against the label;
    explain_classes(model, c_all, one_hot(y_all), train_mask, val_mask, test_mask, concept_names,
                    class_names=["0", "1"]) with its defaults otherwise, on the three splits concatenated
                    (train, val, test in that order; the masks are LongTensors of row indices). Per class:
                    the rule, its explanation_accuracy (computed by torch_explain on the test rows) and
                    complexity (number of literals, summed over the rule's minterms), and the number of
                    distinct local (per-sample) minterms it combined.
Writes DIR/torch_explain.json (every number, the per-dataset summary, the settings, versions) and the
trained weights DIR/weights/<dataset>_seed<k>.safetensors ("len.0.weight" [2, 10, k], "len.0.bias"
[2, 1, 10], "len.2.weight" [4, 10], "len.2.bias" [4], "len.4.weight" [1, 4], "len.4.bias" [1];
metadata dataset, seed, epochs, lr, lambda, temperature, concept_names), so that other implementations can
extract rules from the same networks.
"""
import argparse
import json
import os
import platform
import statistics
import time

import sklearn
import sympy
import torch
import torch_explain as te
from safetensors import safe_open
from safetensors.torch import save_file
from torch.nn.functional import one_hot
from torch_explain.logic.nn import entropy

DATASETS = ["xor", "trigonometry", "dot", "breast_cancer"]
SEEDS = [0, 1, 2, 3, 4]
LR, LAMBDA, TEMPERATURE, HIDDEN = 1e-3, 1e-4, 0.6, (10, 4)


def load(data_dir, name):
    parts, names = {}, None
    for part in ("train", "val", "test"):
        with safe_open(os.path.join(data_dir, f"{name}_{part}.safetensors"), "pt") as f:
            parts[part] = (f.get_tensor("concepts").float(), f.get_tensor("labels").long())
            names = json.loads(f.metadata()["concept_names"])
    return parts, names


def build(k):
    return torch.nn.Sequential(
        te.nn.EntropyLinear(k, HIDDEN[0], n_classes=2, temperature=TEMPERATURE), torch.nn.LeakyReLU(),
        torch.nn.Linear(HIDDEN[0], HIDDEN[1]), torch.nn.LeakyReLU(), torch.nn.Linear(HIDDEN[1], 1))


def run(parts, names, seed, epochs):
    torch.manual_seed(seed)
    c_train, y_train = parts["train"]
    model = build(c_train.shape[1])
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR)
    loss_form = torch.nn.BCEWithLogitsLoss()
    target = one_hot(y_train, 2).float()
    model.train()
    t0 = time.perf_counter()
    for _ in range(epochs):
        optimizer.zero_grad()
        y_pred = model(c_train).squeeze(-1)
        loss = loss_form(y_pred, target) + LAMBDA * te.nn.functional.entropy_logic_loss(model)
        loss.backward()
        optimizer.step()
    training_seconds = time.perf_counter() - t0

    c_test, y_test = parts["test"]
    with torch.no_grad():
        model_accuracy = (model(c_test).squeeze(-1).argmax(-1) == y_test).float().mean().item()
        train_accuracy = (model(c_train).squeeze(-1).argmax(-1) == y_train).float().mean().item()

    c_all = torch.cat([parts[p][0] for p in ("train", "val", "test")])
    y_all = torch.cat([parts[p][1] for p in ("train", "val", "test")])
    n_train, n_val = len(parts["train"][1]), len(parts["val"][1])
    train_mask = torch.arange(0, n_train, dtype=torch.long)
    val_mask = torch.arange(n_train, n_train + n_val, dtype=torch.long)
    test_mask = torch.arange(n_train + n_val, len(y_all), dtype=torch.long)
    t0 = time.perf_counter()
    explanations, local = entropy.explain_classes(
        model, c_all, one_hot(y_all, 2), train_mask=train_mask, val_mask=val_mask, test_mask=test_mask,
        concept_names=names, class_names=["0", "1"])
    extraction_seconds = time.perf_counter() - t0

    layer = model[0]
    classes = {}
    for cls in ("0", "1"):
        e = explanations[cls]
        classes[cls] = {"rule": e["explanation"], "explanation_accuracy": float(e["explanation_accuracy"]),
                        "complexity": int(e["explanation_complexity"]),
                        "local_minterms": len(local[int(cls)]) if isinstance(local[int(cls)], dict) else 0,
                        "alpha": layer.alpha[int(cls)].detach().tolist(),
                        "concept_mask": layer.concept_mask[int(cls)].tolist()}
    weights = {"len." + n: p.detach().contiguous() for n, p in model.state_dict().items()}
    result = {"seed": seed, "model_accuracy": model_accuracy, "train_accuracy": train_accuracy,
              "final_loss": float(loss), "classes": classes, "extraction_seconds": extraction_seconds,
              "training_seconds": training_seconds}
    return result, weights


def summarize(runs):
    def stats(values):
        return {"median": statistics.median(values), "min": min(values), "max": max(values)}
    out = {"model_accuracy": stats([r["model_accuracy"] for r in runs]),
           "extraction_seconds": stats([r["extraction_seconds"] for r in runs]),
           "training_seconds": stats([r["training_seconds"] for r in runs])}
    for cls in ("0", "1"):
        out["rule_accuracy_" + cls] = stats([r["classes"][cls]["explanation_accuracy"] for r in runs])
        out["complexity_" + cls] = stats([r["classes"][cls]["complexity"] for r in runs])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="runs/logic-reference")
    ap.add_argument("--epochs", type=int, default=1000)
    ap.add_argument("--data", default="examples/logic/data")
    ap.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated subset")
    ap.add_argument("--seeds", default=",".join(map(str, SEEDS)), help="comma-separated subset")
    args = ap.parse_args()
    os.makedirs(os.path.join(args.out, "weights"), exist_ok=True)
    seeds = [int(s) for s in args.seeds.split(",")]
    report = {"settings": {"epochs": args.epochs, "lr": LR, "optimizer": "AdamW (weight_decay 0.01)",
                           "lambda": LAMBDA, "temperature": TEMPERATURE, "hidden": list(HIDDEN),
                           "leaky_relu_slope": 0.01, "batch": "full", "seeds": seeds,
                           "explain_classes": "defaults (max_minterm_complexity 1000, try_all False, simplify False, "
                                              "c_threshold 0.5, y_threshold 0); class_names ['0', '1']"},
              "versions": {"torch": torch.__version__, "torch_explain": te.__version__, "sympy": sympy.__version__,
                           "scikit-learn": sklearn.__version__, "python": platform.python_version(),
                           "threads": torch.get_num_threads()},
              "datasets": {}}
    for name in args.datasets.split(","):
        parts, names = load(args.data, name)
        runs = []
        for seed in seeds:
            result, weights = run(parts, names, seed, args.epochs)
            meta = {"dataset": name, "seed": str(seed), "epochs": str(args.epochs), "lr": str(LR),
                    "lambda": str(LAMBDA), "temperature": str(TEMPERATURE), "concept_names": json.dumps(names)}
            save_file(weights, os.path.join(args.out, "weights", f"{name}_seed{seed}.safetensors"), metadata=meta)
            runs.append(result)
            rules = "; ".join(f"{c}: {r['rule'] or '(none)'} [acc {r['explanation_accuracy']:.3f}, "
                              f"compl {r['complexity']}]" for c, r in result["classes"].items())
            print(f"{name} seed {seed}: model acc {result['model_accuracy']:.3f}, train {result['training_seconds']:.1f}s, "
                  f"extract {result['extraction_seconds']:.2f}s | {rules[:400]}", flush=True)
        report["datasets"][name] = {"concept_names": names, "runs": runs, "summary": summarize(runs)}
        with open(os.path.join(args.out, "torch_explain.json"), "w") as f:
            json.dump(report, f, indent=1)
    print()
    print(f"{'dataset':14s} {'model acc med/min':>18s} {'rule0 acc med/min':>18s} {'rule1 acc med/min':>18s} "
          f"{'compl0/1 med':>12s} {'extract s med':>13s} {'train s med':>11s}")
    for name, d in report["datasets"].items():
        s = d["summary"]
        print(f"{name:14s} {s['model_accuracy']['median']:8.3f}/{s['model_accuracy']['min']:.3f}   "
              f"{s['rule_accuracy_0']['median']:8.3f}/{s['rule_accuracy_0']['min']:.3f}   "
              f"{s['rule_accuracy_1']['median']:8.3f}/{s['rule_accuracy_1']['min']:.3f}   "
              f"{s['complexity_0']['median']:5g}/{s['complexity_1']['median']:<5g} "
              f"{s['extraction_seconds']['median']:13.2f} {s['training_seconds']['median']:11.1f}")
    print("wrote", os.path.join(args.out, "torch_explain.json"))


if __name__ == "__main__":
    main()
