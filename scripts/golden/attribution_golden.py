#!/usr/bin/env python3
"""Golden values for the attribution plugins (Tests/QuacHostTests/AttributionGoldenTests.swift).

Run with the oracle environment (bash scripts/oracle-env.sh sets up ~/.cache/quac-oracle):
    ~/.cache/quac-oracle/bin/python scripts/golden/attribution_golden.py \
        Tests/QuacHostTests/Fixtures/attribution-golden

Writes two files:
- mlp.safetensors: fc1.weight [H, D], fc1.bias, fc2.weight [K, H], fc2.bias, the weights of
  org.quac.mlp-classifier (input_shape [1, 8, 8], hidden H, num_classes K) and of the PyTorch model
  nn.Sequential(nn.Flatten(), nn.Linear(D, H), nn.ReLU(), nn.Linear(H, K)).
- golden.safetensors: x, x_cf [N, 1, 8, 8], labels [N] (the explained source class), target [N], the
  logits f(x), f(x_cf), f(0), and Captum's attributions for the source class:
    ig_cf, ig_zero            IntegratedGradients, gausslegendre, 50 steps, baseline x_cf / zeros
    ig_cf_delta, ig_zero_delta   their convergence deltas (sum(a) - (f_y(x) - f_y(baseline)))
    ig_cf_<riemann method>    IntegratedGradients with riemann_left/right/middle/trapezoid, 16 steps
    saliency                  Saliency (abs=True)
    input_x_gradient          InputXGradient
    deeplift_cf, deeplift_zero   DeepLift (rescale rule on the ReLU), baseline x_cf / zeros
    deeplift_cf_delta, deeplift_zero_delta
    dingrad                   QuAC's DInGrad: Saliency(x) * (x_cf - x)
    occlusion                 Occlusion, window (1, 4, 4), stride (1, 2, 2), baseline 0
    smoothgrad_expected       NoiseTunnel(Saliency), smoothgrad, stdevs 0.3, 20000 samples (the expectation)
    smoothgrad_std            per element, the standard deviation of |grad| over that noise
  __metadata__ holds the sizes and the Captum/PyTorch versions.

Weights and inputs are drawn in float32; Captum then runs the model in float64 on exactly those values,
and results are stored as float32, so the Swift tests compare against the exact values of the float32
inputs (the host's float32 arithmetic is the only error left).
"""
import json
import os
import sys

import captum
import numpy as np
import torch
from captum.attr import DeepLift, InputXGradient, IntegratedGradients, NoiseTunnel, Occlusion, Saliency
from safetensors.torch import save_file

N, C, S, H, K = 6, 1, 8, 16, 3
SMOOTHGRAD_SAMPLES, SMOOTHGRAD_STDEV = 20000, 0.3
D = C * S * S


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    torch.set_default_dtype(torch.float64)
    g = torch.Generator().manual_seed(20240611)

    def uniform(*shape, bound=1.0):
        return ((torch.rand(shape, generator=g, dtype=torch.float32) * 2 - 1) * bound)

    w1 = uniform(H, D, bound=(6 / D) ** 0.5)
    b1 = uniform(H, bound=0.3)
    w2 = uniform(K, H, bound=(6 / H) ** 0.5)
    b2 = uniform(K, bound=0.1)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(D, H), torch.nn.ReLU(), torch.nn.Linear(H, K))
    with torch.no_grad():
        model[1].weight.copy_(w1.double()); model[1].bias.copy_(b1.double())
        model[3].weight.copy_(w2.double()); model[3].bias.copy_(b2.double())
    model.eval()

    # Inputs whose explained logit changes clearly between baseline and input (so relative checks of
    # completeness are meaningful): redraw a sample until |f_y(x) - f_y(baseline)| > 0.2 for both baselines.
    xs, cfs, labels = [], [], []
    while len(xs) < N:
        x = uniform(1, C, S, S)
        cf = uniform(1, C, S, S)
        y = len(xs) % K
        with torch.no_grad():
            fx, fcf, f0 = (model(t.double())[0, y].item() for t in (x, cf, torch.zeros_like(x)))
        if abs(fx - fcf) > 0.2 and abs(fx - f0) > 0.2:
            xs.append(x); cfs.append(cf); labels.append(y)
    x32 = torch.cat(xs); cf32 = torch.cat(cfs)
    y = torch.tensor(labels, dtype=torch.int64)
    x, cf, zero = x32.double(), cf32.double(), torch.zeros_like(x32).double()

    out = {"x": x32, "x_cf": cf32, "labels": y, "target": (y + 1) % K}
    with torch.no_grad():
        out["logits_x"] = model(x); out["logits_cf"] = model(cf); out["logits_zero"] = model(zero)

    ig = IntegratedGradients(model)
    for name, base in (("cf", cf), ("zero", zero)):
        a, delta = ig.attribute(x, baselines=base, target=y, n_steps=50, method="gausslegendre",
                                return_convergence_delta=True)
        out[f"ig_{name}"] = a; out[f"ig_{name}_delta"] = delta
    for method in ("riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid"):
        out[f"ig_cf_{method}"] = ig.attribute(x, baselines=cf, target=y, n_steps=16, method=method)

    sal = Saliency(model).attribute(x, target=y, abs=True)
    out["saliency"] = sal
    out["input_x_gradient"] = InputXGradient(model).attribute(x, target=y)
    out["dingrad"] = sal * (cf - x)

    dl = DeepLift(model)
    for name, base in (("cf", cf), ("zero", zero)):
        a, delta = dl.attribute(x, baselines=base, target=y, return_convergence_delta=True)
        out[f"deeplift_{name}"] = a; out[f"deeplift_{name}_delta"] = delta

    # SmoothGrad is random: Captum's NoiseTunnel with many samples gives the expectation, and the
    # per-element standard deviation of |grad| under the noise lets the test bound its Monte Carlo error.
    torch.manual_seed(7)
    out["smoothgrad_expected"] = NoiseTunnel(Saliency(model)).attribute(
        x, nt_type="smoothgrad", nt_samples=SMOOTHGRAD_SAMPLES, stdevs=SMOOTHGRAD_STDEV, target=y, abs=True)
    noisy = x.repeat_interleave(SMOOTHGRAD_SAMPLES, 0) + SMOOTHGRAD_STDEV * torch.randn((N * SMOOTHGRAD_SAMPLES,) + x.shape[1:])
    grads = Saliency(model).attribute(noisy, target=y.repeat_interleave(SMOOTHGRAD_SAMPLES), abs=True)
    out["smoothgrad_std"] = grads.reshape((N, SMOOTHGRAD_SAMPLES) + x.shape[1:]).std(1)

    out["occlusion"] = Occlusion(model).attribute(x, target=y, sliding_window_shapes=(1, 4, 4), strides=(1, 2, 2), baselines=0)

    tensors = {k: (v.detach().to(torch.float32) if v.is_floating_point() else v).contiguous() for k, v in out.items()}
    meta = {"sizes": json.dumps({"n": N, "channels": C, "size": S, "hidden": H, "classes": K}),
            "smoothgrad": json.dumps({"stdevs": SMOOTHGRAD_STDEV, "nt_samples": SMOOTHGRAD_SAMPLES}),
            "captum": captum.__version__, "torch": torch.__version__, "numpy": np.__version__,
            "generator": "scripts/golden/attribution_golden.py"}
    save_file(tensors, os.path.join(out_dir, "golden.safetensors"), metadata=meta)
    save_file({"fc1.weight": w1.contiguous(), "fc1.bias": b1, "fc2.weight": w2.contiguous(), "fc2.bias": b2},
              os.path.join(out_dir, "mlp.safetensors"), metadata={"architecture": json.dumps({"kind": "mlp", "hidden": H})})

    for k in ("ig_cf_delta", "ig_zero_delta", "deeplift_cf_delta", "deeplift_zero_delta"):
        print(k, [f"{v:.3g}" for v in out[k].tolist()])
    dfy = (out["logits_x"] - out["logits_cf"]).gather(1, y[:, None])[:, 0]
    print("f_y(x) - f_y(x_cf)", [f"{v:.3g}" for v in dfy.tolist()])


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "Tests/QuacHostTests/Fixtures/attribution-golden")
