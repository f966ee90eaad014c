#!/usr/bin/env python3
"""Concept datasets for the Logic Explained Network examples and benchmark (examples/logic,
bench/logic_reference.py): torch_explain's three synthetic benchmarks and the Wisconsin breast cancer data.

Run with the oracle environment (bash scripts/oracle-env.sh sets up ~/.cache/quac-oracle):
    ~/.cache/quac-oracle/bin/python scripts/logic/make_datasets.py examples/logic/data

Writes, for each dataset NAME in xor, trigonometry, dot, breast_cancer, three files
NAME_train.safetensors, NAME_val.safetensors, NAME_test.safetensors, each with
    concepts [n, k] float32 (0/1)   the boolean concepts
    labels   [n]    int64  (0/1)    the task label
    index    [n]    int64           the sample's row in the generated (or loaded) order of all N samples
and metadata: concept_names and class_names (JSON arrays), source (the generator), task, split, n_total,
split_seed, split_fractions.

    xor           torch_explain.datasets.benchmarks.xor(1000, random_state=0): x ~ U[0,1]^2,
                  concepts x1 > 0.5, x2 > 0.5; label = their XOR (exactly a function of the concepts).
    trigonometry  torch_explain.datasets.benchmarks.trigonometry(1000, random_state=0): (x, y, z) ~ N(0, 2^2),
                  concepts x > 0, y > 0, z > 0; label = x + y + z > 1 (not a function of the concepts).
    dot           torch_explain.datasets.benchmarks.dot(1000), which ignores its random_state and draws from
                  NumPy's global generator: this script calls np.random.seed(0) just before. v1, v3 ~ N(0, 2^2)
                  in R^2; concepts v1 . (1, 1) > 0, v3 . (-1, -1) > 0; label = v1 . v3 > 0 (not a function
                  of the concepts).
    breast_cancer scikit-learn load_breast_cancer (UCI Wisconsin Diagnostic Breast Cancer), 569 samples:
                  each of the 30 features binarized at its median over all 569 samples (concept = feature >
                  median); label = scikit-learn's target (0 malignant, 1 benign).

Split: one random permutation of the N samples (np.random.default_rng(0).permutation(N)); its first
round(f_train N) are train, the next round(f_val N) val, the rest test; each split's rows are then kept in
the generated order (index ascending). xor, trigonometry, dot: fractions 0.7/0.1/0.2, 700/100/200;
breast_cancer: 0.6/0.2/0.2, 341/114/114 (rule pruning decides on the validation split: with 10% of 569
samples, 57, one sample moves its accuracy by 1.75 points and the pruned rules changed with it).
"""
import json
import os
import sys

import numpy as np
import sklearn
import torch
import torch_explain
from safetensors.torch import save_file
from sklearn.datasets import load_breast_cancer
from torch_explain.datasets import benchmarks

SIZE, SEED = 1000, 0
FRACTIONS = (0.7, 0.1, 0.2)
FRACTIONS_SMALL = (0.6, 0.2, 0.2)  # breast_cancer: a validation split of 114 rather than 57


def synthetic():
    """(name, concepts, labels, metadata) of torch_explain's three synthetic benchmarks."""
    _, c, y = benchmarks.xor(SIZE, random_state=SEED)
    yield "xor", c.numpy(), y.numpy().ravel(), {
        "concept_names": ["x1_high", "x2_high"], "class_names": ["not_xor", "xor"],
        "source": f"torch_explain {torch_explain.__version__} datasets.benchmarks.xor(size={SIZE}, random_state={SEED})",
        "task": "x1 > 0.5 XOR x2 > 0.5, x ~ U[0,1]^2; concepts x1 > 0.5, x2 > 0.5"}
    _, c, y = benchmarks.trigonometry(SIZE, random_state=SEED)
    yield "trigonometry", c.numpy(), y.numpy().ravel(), {
        "concept_names": ["x_pos", "y_pos", "z_pos"], "class_names": ["sum_le_1", "sum_gt_1"],
        "source": f"torch_explain {torch_explain.__version__} datasets.benchmarks.trigonometry(size={SIZE}, random_state={SEED})",
        "task": "x + y + z > 1, (x, y, z) ~ N(0, 4 I); concepts x > 0, y > 0, z > 0"}
    np.random.seed(SEED)  # dot() ignores random_state and draws from NumPy's global generator
    _, c, y = benchmarks.dot(SIZE, random_state=SEED)
    yield "dot", c.numpy(), y.numpy().ravel(), {
        "concept_names": ["v1_dot_ones_pos", "v3_dot_minus_ones_pos"], "class_names": ["v1_dot_v3_neg", "v1_dot_v3_pos"],
        "source": f"torch_explain {torch_explain.__version__} datasets.benchmarks.dot(size={SIZE}) "
                  f"after np.random.seed({SEED}) (dot ignores its random_state)",
        "task": "v1 . v3 > 0, v1, v3 ~ N(0, 4 I) in R^2; concepts v1 . (1,1) > 0, v3 . (-1,-1) > 0"}


def breast_cancer():
    d = load_breast_cancer()
    x = d.data
    c = (x > np.median(x, axis=0)).astype(np.float32)
    return "breast_cancer", c, d.target, {
        "concept_names": [n.replace(" ", "_") for n in d.feature_names],
        "class_names": [str(n) for n in d.target_names],
        "source": f"scikit-learn load_breast_cancer (UCI Wisconsin Diagnostic Breast Cancer), scikit-learn {sklearn.__version__}",
        "task": "diagnosis (0 malignant, 1 benign); concept = feature > its median over all 569 samples",
        "fractions": FRACTIONS_SMALL}


def split(n, fractions):
    perm = np.random.default_rng(SEED).permutation(n)
    n_train, n_val = int(round(fractions[0] * n)), int(round(fractions[1] * n))
    return {"train": np.sort(perm[:n_train]), "val": np.sort(perm[n_train:n_train + n_val]),
            "test": np.sort(perm[n_train + n_val:])}


def write(out_dir, name, c, y, meta):
    c = np.asarray(c, dtype=np.float32)
    y = np.asarray(y).astype(np.int64)
    assert c.ndim == 2 and len(c) == len(y) and set(np.unique(c)) <= {0.0, 1.0} and set(np.unique(y)) <= {0, 1}
    assert c.shape[1] == len(meta["concept_names"])
    fractions = meta.get("fractions", FRACTIONS)
    for part, idx in split(len(c), fractions).items():
        tensors = {"concepts": torch.from_numpy(c[idx]).contiguous(), "labels": torch.from_numpy(y[idx]).contiguous(),
                   "index": torch.from_numpy(idx.astype(np.int64)).contiguous()}
        m = {"concept_names": json.dumps(meta["concept_names"]), "class_names": json.dumps(meta["class_names"]),
             "source": meta["source"], "task": meta["task"], "split": part, "n_total": str(len(c)),
             "split_seed": str(SEED), "split_fractions": json.dumps(list(fractions))}
        path = os.path.join(out_dir, f"{name}_{part}.safetensors")
        save_file(tensors, path, metadata=m)
        print(f"{path}: {len(idx)} samples, {c.shape[1]} concepts, {int(y[idx].sum())} of class 1")


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    for name, c, y, meta in [*synthetic(), breast_cancer()]:
        write(out_dir, name, c, y, meta)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "examples/logic/data")
