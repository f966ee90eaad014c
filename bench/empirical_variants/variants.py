#!/usr/bin/env python3
"""Why the empirical explainer of D-IG stays short of D-IG with 4 steps: the same task in PyTorch with
several explainer designs, each trained the same way, scored on the example's 64 test images.

Needs (from the repository root):
    bash bench/empirical_bench.sh          # runs/empirical: the CNN, D-IG's maps (train/val targets, test maps)
    QUAC_PLUGIN_PATH=$PWD/plugins .build/release/quac-host run bench/empirical_variants/train.json -q
    QUAC_PLUGIN_PATH=$PWD/plugins .build/release/quac-host run bench/empirical_variants/val.json -q
                                           # the counterfactuals of the 384 training and 96 validation images
Then, with the oracle environment (scripts/oracle-env.sh; torch 1.13, safetensors, numpy):
    ~/.cache/quac-oracle/bin/python bench/empirical_variants/variants.py [variant ...]

Variants (default: all): fresh (an image-to-map U-Net, encoder 16-32-32), trunk (the classifier's four
conv-BN-ReLU levels, weights copied, batch norms frozen, encoder lr 1e-4, decoder 1e-3), trunk_frozen
(the same with the encoder frozen), trunk_random (the trunk's layout with fresh weights: a control),
counterfactual (input [x, x_cf - x], output (x - x_cf) * g: g predicts the path-averaged gradient, as
D-IG's own formula has it), gradient (input [x, grad, x * grad] of the classifier's logit difference;
needs a backward pass). Training: MSE on targets divided by their training RMS, Adam, batch 16, up to
60 epochs, early stopping on the validation MSE (patience 8), the best epoch kept, torch.manual_seed(0).
Prints per variant: epochs, test MSE, its ratio to D-IG with 4 steps (runs/empirical/convergence/d-ig.json),
the relative error (test MSE / mean square of the test maps), the median per-sample Pearson correlation,
and the training and validation error at the best epoch (on targets divided by their training RMS: a
network that fits the training set much better than the validation set overfits; equal errors mean it
underfits).
"""
import copy
import json
import math
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.numpy import load_file

R = "runs"


def tensor(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def build_cnn():
    """The example's CNN (the vgg preset, 8-16-32-32, fc 64-64) with its trained weights."""
    layers, cin = [], 1
    for cout in [8, 16, 32, 32]:
        for _ in range(2):
            layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]
            cin = cout
        layers += [nn.MaxPool2d(2)]

    class CNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(*layers)
            self.classifier = nn.Sequential(nn.Linear(128, 64), nn.ReLU(), nn.Dropout(), nn.Linear(64, 64), nn.ReLU(),
                                            nn.Dropout(), nn.Linear(64, 2))

        def forward(self, x):
            return self.classifier(torch.flatten(self.features(x), 1))

    m = CNN()
    state = {k: tensor(v) for k, v in load_file(f"{R}/empirical/models/cnn.safetensors").items()}
    missing, unexpected = m.load_state_dict(state, strict=False)
    assert not [k for k in missing if not k.endswith("num_batches_tracked")] and not unexpected, (missing, unexpected)
    return m.eval()


def load_data():
    train, val = load_file(f"{R}/synth-data/train.safetensors"), load_file(f"{R}/synth-data/val.safetensors")
    inputs = load_file(f"{R}/empirical/inputs.safetensors")
    targets = f"{R}/empirical/models/empirical-d-ig.data"
    return dict(
        xtr=tensor(train["images"][:384]), ytr=tensor(load_file(f"{targets}/data.safetensors")["targets"]),
        xva=tensor(val["images"][:96]), yva=tensor(load_file(f"{targets}/val.safetensors")["targets"]),
        xte=tensor(inputs["x"]), yte=tensor(load_file(f"{R}/empirical/attributions/d-ig.safetensors")["attribution"]))


def pearson_median(p, y):
    p, y = p.flatten(1).double(), y.flatten(1).double()
    p, y = p - p.mean(1, keepdim=True), y - y.mean(1, keepdim=True)
    return float(((p * y).sum(1) / (p.norm(dim=1) * y.norm(dim=1) + 1e-30)).median())


def conv_block(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(), nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU())


class Decoder(nn.Module):
    """From skips (full resolution first): nearest upsampling, concatenation with the skip, two conv3x3."""

    def __init__(self, skip_channels, width, extra=0):
        super().__init__()
        self.bottom = nn.Sequential(nn.Conv2d(skip_channels[-1], width[-1], 3, padding=1), nn.ReLU())
        self.ups, previous = nn.ModuleList(), width[-1]
        for i in range(len(skip_channels) - 2, -1, -1):
            self.ups.append(conv_block(previous + skip_channels[i] + (extra if i == 0 else 0), width[i]))
            previous = width[i]
        self.head = nn.Conv2d(previous, 1, 1)

    def forward(self, skips, x=None):
        h = self.bottom(skips[-1])
        for j, i in enumerate(range(len(skips) - 2, -1, -1)):
            h = F.interpolate(h, scale_factor=2, mode="nearest")
            h = self.ups[j](torch.cat([h, skips[i]] + ([x] if i == 0 and x is not None else []), 1))
        return self.head(h)


class FreshUNet(nn.Module):
    def __init__(self, cin=1, channels=(16, 32, 32)):
        super().__init__()
        self.enc, c = nn.ModuleList(), cin
        for co in channels:
            self.enc.append(conv_block(c, co))
            c = co
        self.dec = Decoder(list(channels), list(channels))

    def forward(self, x):
        skips, h = [], x
        for i, block in enumerate(self.enc):
            h = block(F.max_pool2d(h, 2) if i else h)
            skips.append(h)
        return self.dec(skips)


class TrunkUNet(nn.Module):
    """The classifier's four levels (conv-BN-ReLU twice) as the encoder; batch norms keep their statistics."""

    def __init__(self, cnn, extra=0):
        super().__init__()
        f = copy.deepcopy(cnn.features)
        self.levels = nn.ModuleList([nn.Sequential(*[f[j] for j in range(a, a + 6)]) for a in (0, 7, 14, 21)])
        self.dec = Decoder([8, 16, 32, 32], [32, 32, 32, 32], extra=1 + extra)

    def train(self, mode=True):
        super().train(mode)
        for m in self.levels.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        return self

    def forward(self, x):
        skips, h = [], x[:, :1]
        for i, level in enumerate(self.levels):
            h = level(F.max_pool2d(h, 2) if i else h)
            skips.append(h)
        return self.dec(skips, x)


class ProductNet(nn.Module):
    """attribution = (x - x_cf) * g([x, x_cf - x]): g predicts the path-averaged gradient."""

    def __init__(self):
        super().__init__()
        self.net = FreshUNet(cin=2)

    def forward(self, z):
        return -z[:, 1:2] * self.net(z)


def train(model, d, groups, x, epochs=60, patience=8, batch=16, seed=0):
    torch.manual_seed(seed)
    scale = float(d["ytr"].pow(2).mean().sqrt())
    ytr, yva = d["ytr"] / scale, d["yva"] / scale
    optimizer = torch.optim.Adam(groups)
    best, bad, epochs_run, start = (math.inf, None), 0, 0, time.time()
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(x["tr"]), generator=generator)
        for i in range(0, len(order), batch):
            idx = order[i:i + batch]
            loss = F.mse_loss(model(x["tr"][idx]), ytr[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        epochs_run += 1
        with torch.no_grad():
            v = float(F.mse_loss(model(x["va"]), yva))
        if v < best[0]:
            best, bad = (v, copy.deepcopy(model.state_dict())), 0
        else:
            bad += 1
            if bad >= patience:
                break
    if best[1] is None:
        raise SystemExit("the validation error was never finite")
    model.load_state_dict(best[1])
    model.eval()
    with torch.no_grad():
        p = model(x["te"]) * scale
        fit = float(F.mse_loss(model(x["tr"]), ytr))
    mse = float(F.mse_loss(p, d["yte"]))
    return dict(epochs=epochs_run, test_mse=mse, relative_error=mse / float(d["yte"].pow(2).mean()),
                pearson=pearson_median(p, d["yte"]), seconds=time.time() - start, train=fit, val=best[0])


def main():
    torch.set_num_threads(2)
    d, cnn = load_data(), build_cnn()
    conv = json.load(open(f"{R}/empirical/convergence/d-ig.json"))
    dig4 = dict(zip(conv["values"], conv["mse"]))[4]
    print(f"D-IG with 4 steps against 50: test MSE {dig4:.3e}, relative error {dig4 / float(d['yte'].pow(2).mean()):.3f}")
    plain = {"tr": d["xtr"], "va": d["xva"], "te": d["xte"]}

    def with_counterfactuals():
        cf = {"tr": load_file(f"{R}/empirical-variants-train/counterfactuals/counterfactuals.safetensors")["counterfactual"],
              "va": load_file(f"{R}/empirical-variants-val/counterfactuals/counterfactuals.safetensors")["counterfactual"],
              "te": load_file(f"{R}/empirical/counterfactuals/counterfactuals.safetensors")["counterfactual"]}
        return {s: torch.cat([plain[s], tensor(cf[s]) - plain[s]], 1) for s in plain}

    def with_gradients():
        def grad(x):
            x = x.clone().requires_grad_(True)
            logits = cnn(x)
            g, = torch.autograd.grad((logits[:, 0] - logits[:, 1]).sum(), x)
            return g.detach()
        g = {s: grad(plain[s]) for s in plain}
        scale = float(g["tr"].pow(2).mean().sqrt())
        return {s: torch.cat([plain[s], g[s] / scale, plain[s] * g[s] / scale], 1) for s in plain}

    def random_trunk():
        torch.manual_seed(0)
        c = build_cnn()
        for m in c.modules():
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
        return TrunkUNet(c.eval())

    def split(m, encoder_lr=1e-4):
        return [dict(params=m.levels.parameters(), lr=encoder_lr), dict(params=m.dec.parameters(), lr=1e-3)]

    variants = {
        "fresh": lambda: (FreshUNet(), lambda m: [dict(params=m.parameters(), lr=1e-3)], plain),
        "trunk": lambda: (TrunkUNet(cnn), split, plain),
        "trunk_frozen": lambda: (TrunkUNet(cnn), lambda m: [p.requires_grad_(False) for p in m.levels.parameters()] and [dict(params=m.dec.parameters(), lr=1e-3)], plain),
        "trunk_random": lambda: (random_trunk(), lambda m: [dict(params=m.parameters(), lr=1e-3)], plain),
        "counterfactual": lambda: (ProductNet(), lambda m: [dict(params=m.parameters(), lr=1e-3)], with_counterfactuals()),
        "gradient": lambda: (FreshUNet(cin=3), lambda m: [dict(params=m.parameters(), lr=1e-3)], with_gradients()),
    }
    for name in sys.argv[1:] or list(variants):
        torch.manual_seed(0)
        model, groups, x = variants[name]()
        r = train(model, d, groups(model), x)
        print(f"{name:15s} epochs {r['epochs']:3d}  test MSE {r['test_mse']:.3e} ({r['test_mse'] / dig4:.1f}x D-IG-4's)  relative error {r['relative_error']:.3f}  "
              f"median Pearson {r['pearson']:.3f}  scaled train / val error at the best epoch {r['train']:.3f} / {r['val']:.3f}  "
              f"{r['seconds']:.0f} s", flush=True)


if __name__ == "__main__":
    main()
