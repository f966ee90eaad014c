#!/usr/bin/env python3
"""Golden values for the attribution scorers (Tests/ScorersTests): infidelity, sensitivity-max, deletion, faithfulness.

Run with the oracle environment (bash scripts/oracle-env.sh sets up ~/.cache/quac-oracle: torch 1.13, captum 0.7.0):
    ~/.cache/quac-oracle/bin/python scripts/golden/scorer_golden.py Tests/ScorersTests/Fixtures/scorer-golden.safetensors

One tiny model shared by every case, x of shape [N=3, 1, 4, 4] (D = 16 features), hidden H = 5, K = 3 classes:
    f(x) = W2 . tanh(W1 . flatten(x) + b1) + b2          (logits [N, K]; "the target logit" = f(x)[i, target[i]])
Every random tensor is drawn once with numpy (np.random.default_rng(seed)), rounded to float32 and stored; all
computation runs in float64 on those float32-rounded values (the stored attr, too, is the float32-rounded one that
every case uses), so a reader of the file can reproduce every number from what it stores. Stored float32 unless
stated; "target" and "faith_subsets" are int64. Pixel index p = 4 * row + col (row-major over the 4 x 4 image).

Tensors:
    w1 [5,16], b1 [5], w2 [3,5], b2 [3]      the model (seed 20261207; uniform, fan-in bounds)
    x [3,1,4,4]                              inputs (same generator, uniform [-1, 1])
    target [3] int64                         [0, 2, 1]
    attr [3,1,4,4]                           Captum Saliency(model).attribute(x, target, abs=False): the raw gradient
                                             of the target logit

1. Infidelity, captum.metrics.infidelity(model, perturb, x, attr, target=target, n_perturb_samples=7):
    infid_noise [7,3,1,4,4]                  N(0, std 0.1), seed 0; infid_noise[k, i] is perturbation k of sample i
    infidelity [3]                           normalize=False
    infidelity_normalized [3]                normalize=True
   Captum calls perturb_func ONCE (max_examples_per_batch=None -> one batch of all n samples) on
   torch.repeat_interleave(x, n, dim=0), so row r = i * n + k holds sample i (sample-major, perturbation-minor);
   the perturb func returns (I, x_rep - I) with I[i * n + k] = infid_noise[k, i], i.e.
   infid_noise.transpose(1, 0, ...).reshape(N * n, ...). With a_ik = sum(attr_i * I_ik) and
   b_ik = f_t(x_i) - f_t(x_i - I_ik):
       infidelity_i            = (1/n) sum_k (a_ik - b_ik)^2
       infidelity_normalized_i = (1/n) sum_k (beta_i a_ik - b_ik)^2,  beta_i = sum_k a_ik b_ik / sum_k a_ik^2
   (safe_div: beta = numerator / 1 where the denominator is 0). Both divide by n (infidelity.py: `infidelity_values
   /= n_perturb_samples`).
2. Sensitivity max, captum.metrics.sensitivity_max(Saliency(model).attribute, x, perturb, perturb_radius=0.2,
   n_perturb_samples=6, norm_ord="fro", target=target) -- explanation abs=True (Saliency's default):
    sens_noise [6,3,1,4,4]                   uniform [-0.2, 0.2], seed 1; sens_noise[k, i] is perturbation k of sample i
    saliency_abs [3,1,4,4]                   |grad| at the unperturbed x
    sensitivity_max [3]                      max_k ||e(x_i) - e(x_i + s_ik)||_2 / ||e(x_i)||_2  (e = |grad|; an
                                             all-zero ||e(x_i)|| is replaced by 1)
   Same layout as infidelity: perturb_func gets repeat_interleave(x, n, 0), row i * n + k, and returns
   x_rep + sens_noise.transpose(1, 0, ...).reshape(N * n, ...). The target is repeat_interleaved the same way.
3. Deletion (numpy): order_i = the 16 pixels by attr[i] summed over channels, descending, ties by lower pixel index
   (stable argsort of -score); for k = 0..4 the first round(k / 4 * 16) pixels of order_i are set to baseline[i]
   (all channels); p_ik = softmax(f(x'))[target_i].
    baseline [3,1,4,4]                       uniform [-1, 1], seed 2
    deletion_curve [3,5]                     p_ik, k = 0..4 (k = 0 is the unperturbed input)
    deletion_auc [3]                         trapezoid of p_i over fractions [0, .25, .5, .75, 1] (of the probabilities,
                                             not differences): sum_k (p_ik + p_i,k+1) / 2 * 0.25
4. Faithfulness correlation (Bhatt et al. 2020, as Quantus defines it), numpy, baseline 0, f = the target logit:
    faith_subsets [3,8,5] int64              per sample, R = 8 subsets of 5 distinct pixels (rng.choice(16, 5,
                                             replace=False) in order i, r), seed 3
    faithfulness [3]                         pearson_r over r of (a_ir, d_ir): a_ir = sum_{p in S_ir} sum_c attr[i,c,p],
                                             d_ir = f_t(x_i) - f_t(x_i with the pixels of S_ir set to 0, all channels)
                                             pearson(a, d) = sum((a-mean a)(d-mean d)) / sqrt(sum (a-mean a)^2 sum (d-mean d)^2)
Metadata: "params" (JSON of every case's parameters), "captum", "torch", "numpy".
Every Captum result is cross-checked against an independent numpy evaluation of the formulas above.
"""
import json
import os
import sys

import captum
import numpy as np
import torch
from captum.attr import Saliency
from captum.metrics import infidelity, sensitivity_max
from safetensors.torch import save_file

N, C, S, H, K = 3, 1, 4, 5, 3
D = C * S * S
TARGET = [0, 2, 1]
INFID_N, INFID_STD, INFID_SEED = 7, 0.1, 0
SENS_N, SENS_R, SENS_SEED = 6, 0.2, 1
DEL_STEPS, DEL_SEED = 4, 2
FAITH_R, FAITH_SIZE, FAITH_SEED = 8, 5, 3
MODEL_SEED = 20261207


def f32(a):
    """Round to float32, keep as float64 (the values every case computes with and the file stores)."""
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def main(out_path):
    os.makedirs(os.path.dirname(out_path) or ".", exist_ok=True)
    torch.set_default_dtype(torch.float64)

    rng = np.random.default_rng(MODEL_SEED)
    w1 = f32(rng.uniform(-1, 1, (H, D)) * (6 / D) ** 0.5)
    b1 = f32(rng.uniform(-0.3, 0.3, H))
    w2 = f32(rng.uniform(-1, 1, (K, H)) * (6 / H) ** 0.5)
    b2 = f32(rng.uniform(-0.1, 0.1, K))
    x = f32(rng.uniform(-1, 1, (N, C, S, S)))
    target = np.array(TARGET, dtype=np.int64)
    infid_noise = f32(np.random.default_rng(INFID_SEED).normal(0.0, INFID_STD, (INFID_N, N, C, S, S)))
    sens_noise = f32(np.random.default_rng(SENS_SEED).uniform(-SENS_R, SENS_R, (SENS_N, N, C, S, S)))
    baseline = f32(np.random.default_rng(DEL_SEED).uniform(-1, 1, (N, C, S, S)))
    frng = np.random.default_rng(FAITH_SEED)
    faith_subsets = np.array([[frng.choice(D, FAITH_SIZE, replace=False) for _ in range(FAITH_R)] for _ in range(N)],
                             dtype=np.int64)

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(D, H), torch.nn.Tanh(), torch.nn.Linear(H, K))
    with torch.no_grad():
        model[1].weight.copy_(torch.from_numpy(w1)); model[1].bias.copy_(torch.from_numpy(b1))
        model[3].weight.copy_(torch.from_numpy(w2)); model[3].bias.copy_(torch.from_numpy(b2))
    model.eval()

    def logits_np(xs):  # independent numpy forward, [M, C, S, S] -> [M, K]
        return np.tanh(xs.reshape(len(xs), -1) @ w1.T + b1) @ w2.T + b2

    xt, tt = torch.from_numpy(x), torch.from_numpy(target)
    attr = f32(Saliency(model).attribute(xt.clone(), target=tt, abs=False).detach().numpy())
    attr_t = torch.from_numpy(attr)

    # 1. Infidelity. perturb_func receives repeat_interleave(x, n, 0): row i*n + k = sample i, perturbation k.
    infid_rows = torch.from_numpy(infid_noise.transpose(1, 0, 2, 3, 4).reshape(N * INFID_N, C, S, S).copy())

    def infid_perturb(inputs):
        assert inputs.shape[0] == N * INFID_N, inputs.shape  # one call, all perturbations
        assert torch.equal(inputs.view(N, INFID_N, C, S, S), xt[:, None].expand(N, INFID_N, C, S, S))
        return infid_rows, inputs - infid_rows

    infid = infidelity(model, infid_perturb, xt, attr_t, target=tt, n_perturb_samples=INFID_N).numpy()
    infid_norm = infidelity(model, infid_perturb, xt, attr_t, target=tt, n_perturb_samples=INFID_N,
                            normalize=True).numpy()
    ft = logits_np(x)[np.arange(N), target]
    a = np.einsum("icpq,kicpq->ik", attr, infid_noise)
    b = ft[:, None] - np.stack([logits_np(x - infid_noise[k])[np.arange(N), target] for k in range(INFID_N)], 1)
    beta = (a * b).sum(1) / (a * a).sum(1)
    np.testing.assert_allclose(infid, ((a - b) ** 2).mean(1), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(infid_norm, ((beta[:, None] * a - b) ** 2).mean(1), rtol=1e-10, atol=1e-14)

    # 2. Sensitivity max. Same layout: row i*n + k = x[i] + sens_noise[k, i].
    sens_rows = torch.from_numpy(sens_noise.transpose(1, 0, 2, 3, 4).reshape(N * SENS_N, C, S, S).copy())

    def sens_perturb(inputs):
        assert inputs.shape[0] == N * SENS_N, inputs.shape
        assert torch.equal(inputs.view(N, SENS_N, C, S, S), xt[:, None].expand(N, SENS_N, C, S, S))
        return inputs + sens_rows

    sal = Saliency(model)
    saliency_abs = sal.attribute(xt.clone(), target=tt).detach().numpy()
    sens = sensitivity_max(sal.attribute, xt, perturb_func=sens_perturb, perturb_radius=SENS_R,
                           n_perturb_samples=SENS_N, norm_ord="fro", target=tt).numpy()

    def grad_np(xs, t):  # d f_t / d x, numpy
        h = np.tanh(xs.reshape(len(xs), -1) @ w1.T + b1)
        return ((w2[t] * (1 - h * h)) @ w1).reshape(xs.shape)

    np.testing.assert_allclose(np.abs(grad_np(x, target)), saliency_abs, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(np.abs(grad_np(x, target)), np.abs(attr), rtol=1e-6, atol=1e-9)
    e0 = np.abs(grad_np(x, target)).reshape(N, -1)
    ratios = np.stack([np.linalg.norm(e0 - np.abs(grad_np(x + sens_noise[k], target)).reshape(N, -1), axis=1)
                       for k in range(SENS_N)], 1) / np.linalg.norm(e0, axis=1, keepdims=True)
    np.testing.assert_allclose(sens, ratios.max(1), rtol=1e-10, atol=1e-14)

    # 3. Deletion.
    def softmax(z):
        z = z - z.max(1, keepdims=True)
        return np.exp(z) / np.exp(z).sum(1, keepdims=True)

    curve = np.zeros((N, DEL_STEPS + 1))
    for i in range(N):
        order = np.argsort(-attr[i].sum(0).reshape(-1), kind="stable")
        for k in range(DEL_STEPS + 1):
            xi = x[i].reshape(C, D).copy()
            idx = order[: int(round(k / DEL_STEPS * D))]
            xi[:, idx] = baseline[i].reshape(C, D)[:, idx]
            curve[i, k] = softmax(logits_np(xi.reshape(1, C, S, S)))[0, target[i]]
    fr = np.linspace(0, 1, DEL_STEPS + 1)
    auc = ((curve[:, 1:] + curve[:, :-1]) / 2 * np.diff(fr)).sum(1)
    with torch.no_grad():  # cross-check the numpy forward with the torch model
        np.testing.assert_allclose(curve[:, 0], torch.softmax(model(xt), 1).numpy()[np.arange(N), target], rtol=1e-12)

    # 4. Faithfulness correlation.
    faith = np.zeros(N)
    for i in range(N):
        av, dv = np.zeros(FAITH_R), np.zeros(FAITH_R)
        for r in range(FAITH_R):
            s = faith_subsets[i, r]
            av[r] = attr[i].reshape(C, D)[:, s].sum()
            xi = x[i].reshape(C, D).copy()
            xi[:, s] = 0.0
            dv[r] = ft[i] - logits_np(xi.reshape(1, C, S, S))[0, target[i]]
        ac, dc = av - av.mean(), dv - dv.mean()
        faith[i] = (ac * dc).sum() / np.sqrt((ac * ac).sum() * (dc * dc).sum())
        np.testing.assert_allclose(faith[i], np.corrcoef(av, dv)[0, 1], rtol=1e-10)

    params = {
        "model": {"f": "W2 tanh(W1 flatten(x) + b1) + b2", "N": N, "C": C, "H": S, "W": S, "hidden": H, "classes": K,
                  "seed": MODEL_SEED, "target": TARGET, "attr": "Saliency(abs=False)"},
        "infidelity": {"n_perturb_samples": INFID_N, "noise": "normal", "std": INFID_STD, "seed": INFID_SEED,
                       "perturbation": "I = infid_noise[k, i], perturbed input = x - I",
                       "captum_row": "i * n_perturb_samples + k", "output": "target logit",
                       "max_examples_per_batch": None},
        "sensitivity_max": {"n_perturb_samples": SENS_N, "perturb_radius": SENS_R, "norm_ord": "fro",
                            "noise": "uniform", "seed": SENS_SEED, "explanation": "Saliency(abs=True)",
                            "perturbed input": "x + sens_noise[k, i]", "captum_row": "i * n_perturb_samples + k"},
        "deletion": {"steps": DEL_STEPS, "baseline": "uniform [-1, 1]", "seed": DEL_SEED,
                     "order": "attr summed over channels, descending, ties by lower pixel index",
                     "deleted_at_step_k": "round(k / steps * 16)", "score": "softmax prob of target",
                     "auc": "trapezoid over fractions linspace(0, 1, steps + 1)"},
        "faithfulness": {"subsets": FAITH_R, "subset_size": FAITH_SIZE, "seed": FAITH_SEED, "baseline": 0.0,
                         "output": "target logit", "similarity": "pearson",
                         "sampling": "rng.choice(16, subset_size, replace=False) per (i, r)"},
    }
    fl = lambda v: torch.from_numpy(np.ascontiguousarray(v)).float()
    out = {
        "w1": fl(w1), "b1": fl(b1), "w2": fl(w2), "b2": fl(b2), "x": fl(x), "target": torch.from_numpy(target),
        "attr": fl(attr),
        "infid_noise": fl(infid_noise), "infidelity": fl(infid), "infidelity_normalized": fl(infid_norm),
        "sens_noise": fl(sens_noise), "saliency_abs": fl(saliency_abs), "sensitivity_max": fl(sens),
        "baseline": fl(baseline), "deletion_curve": fl(curve), "deletion_auc": fl(auc),
        "faith_subsets": torch.from_numpy(faith_subsets), "faithfulness": fl(faith),
    }
    meta = {"params": json.dumps(params, sort_keys=True), "captum": captum.__version__, "torch": torch.__version__,
            "numpy": np.__version__}
    save_file({k: v.contiguous() for k, v in out.items()}, out_path, metadata=meta)
    for k, v in out.items():
        print(f"{k:22s} {list(v.shape)} {v.dtype}" + (f"  {v.flatten().tolist()}" if v.numel() <= 15 else ""))
    print("wrote", out_path, os.path.getsize(out_path), "bytes")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "Tests/ScorersTests/Fixtures/scorer-golden.safetensors")
