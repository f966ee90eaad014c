#!/usr/bin/env python3
"""Golden values for the perturbation attributors (Tests/QuacHostTests/ShapleyAblationTests.swift).

Run with the oracle environment (bash scripts/oracle-env.sh sets up ~/.cache/quac-oracle):
    ~/.cache/quac-oracle/bin/python scripts/golden/shapley_golden.py Tests/QuacHostTests/Fixtures/shapley-golden

Writes golden.safetensors with the weights of org.quac.mlp-classifier (fc1.weight [H, D], fc1.bias,
fc2.weight [K, H], fc2.bias; input_shape [2, 6, 6], hidden H, num_classes K), the inputs x, x_cf
[N, 2, 6, 6], labels [N] (the explained class), the feature mask of 3x3 superpixels over both channels
(the plugins' group_size 3: 4 groups), and Captum's attributions for the source class:
    shapley_cf      ShapleyValues (every order of the 4 groups: exact Shapley values), baseline x_cf
    shapley_zero    ShapleyValues, baseline 0
    ablation_zero   FeatureAblation, baseline 0
    ablation_half   FeatureAblation, baseline 0.5
It also writes golden-edge.safetensors, the same for [2, 7, 7] inputs and 4x4 superpixels, whose
right and bottom superpixels are cut by the edge (4 groups of 4x4, 4x3, 3x4 and 3x3 pixels), and
golden-mask.safetensors, the same for [2, 6, 6] inputs and an irregular mask given as a file (the
plugins' feature_mask parameter): "sample_mask" [2, 6, 6] int64, on channel 0 the diagonal stripes
(row + column) % 3 (ids 0 to 2), on channel 1 the top half id 3 and the bottom half id 4.
Captum runs the model in float64 on the float32 inputs and weights; results are stored as float32.
"""
import os
import sys

import captum
import torch
from captum.attr import FeatureAblation, ShapleyValues
from safetensors.torch import save_file

N, C, H, K = 5, 2, 7, 3


def write(out_dir, name, S, G, irregular=False):
    D = C * S * S
    os.makedirs(out_dir, exist_ok=True)
    torch.set_default_dtype(torch.float64)
    g = torch.Generator().manual_seed(20261205)

    def uniform(*shape, bound=1.0):
        return (torch.rand(shape, generator=g, dtype=torch.float32) * 2 - 1) * bound

    w1, b1 = uniform(H, D, bound=(6 / D) ** 0.5), uniform(H, bound=0.3)
    w2, b2 = uniform(K, H, bound=(6 / H) ** 0.5), uniform(K, bound=0.1)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(D, H), torch.nn.ReLU(), torch.nn.Linear(H, K))
    with torch.no_grad():
        model[1].weight.copy_(w1.double()); model[1].bias.copy_(b1.double())
        model[3].weight.copy_(w2.double()); model[3].bias.copy_(b2.double())
    x, x_cf = uniform(N, C, S, S), uniform(N, C, S, S)
    labels = torch.arange(N) % K
    # Superpixels of G x G pixels on a grid from the top left, each covering both channels.
    rows = torch.arange(S) // G
    cols = torch.arange(S) // G
    mask = (rows[:, None] * ((S + G - 1) // G) + cols[None, :]).expand(C, S, S).unsqueeze(0).expand(N, C, S, S).contiguous()
    if irregular:
        r, q = torch.meshgrid(torch.arange(S), torch.arange(S), indexing="ij")
        sample_mask = torch.stack([(r + q) % 3, torch.where(r < S // 2, 3, 4)]).to(torch.int64)
        mask = sample_mask.unsqueeze(0).expand(N, C, S, S).contiguous()
    xd, cfd = x.double(), x_cf.double()
    out = {
        "fc1.weight": w1, "fc1.bias": b1, "fc2.weight": w2, "fc2.bias": b2,
        "x": x, "x_cf": x_cf, "labels": labels.to(torch.int64), "feature_mask": mask.to(torch.int64),
        "shapley_cf": ShapleyValues(model).attribute(xd, baselines=cfd, target=labels, feature_mask=mask).float(),
        "shapley_zero": ShapleyValues(model).attribute(xd, baselines=0.0, target=labels, feature_mask=mask).float(),
        "ablation_zero": FeatureAblation(model).attribute(xd, baselines=0.0, target=labels, feature_mask=mask).float(),
        "ablation_half": FeatureAblation(model).attribute(xd, baselines=0.5, target=labels, feature_mask=mask).float(),
    }
    if irregular:
        out["sample_mask"] = sample_mask
    meta = {"captum": captum.__version__, "torch": torch.__version__, "group_size": str(G), "size": str(S), "hidden": str(H), "classes": str(K)}
    save_file({k: v.contiguous() for k, v in out.items()}, os.path.join(out_dir, name), metadata=meta)
    print("wrote", os.path.join(out_dir, name))


def main(out_dir):
    write(out_dir, "golden.safetensors", S=6, G=3)
    write(out_dir, "golden-edge.safetensors", S=7, G=4)
    write(out_dir, "golden-mask.safetensors", S=6, G=3, irregular=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "Tests/QuacHostTests/Fixtures/shapley-golden")
