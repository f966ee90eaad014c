#!/usr/bin/env python3
"""Golden values for the entropy-based Logic Explained Network (LEN): torch_explain's EntropyLinear layer,
its entropy loss, and a full LEN as torch_explain's README builds it (Tests/MetaLearningTests).

Run with the oracle environment (bash scripts/oracle-env.sh sets up ~/.cache/quac-oracle):
    ~/.cache/quac-oracle/bin/python scripts/golden/len_golden.py Tests/MetaLearningTests/Fixtures/len-golden

Writes len.safetensors. All inputs and weights are drawn in float32 from a fixed generator; torch_explain's
modules then run in float64 on those float32 values and every result is stored as float32 (labels int64).

a. EntropyLinear(in_features K = 5, out_features H = 3, n_classes R = 2, temperature T = 0.6):
    entropy.weight [R, H, K], entropy.bias [R, 1, H], c [N = 6, K] in [0, 1], g_out [N, R, H];
    gamma      [R, K]  = sum_h |weight[r, h, k]|                        (L1 norm over h)
    alpha      [R, K]  = softmax_k(gamma / T)
    alpha_norm [R, K]  = alpha / max_k alpha
    mask       [R, K]  = float(alpha_norm > 0.5)                         (both 0 and 1 entries occur)
    out        [N, R, H] = ((c * alpha_norm[r]) @ weight[r]^T + bias[r]) permuted to sample-major
    grad_weight, grad_bias, grad_c = d sum(out * g_out) / d (weight, bias, c)
                                     (through alpha_norm too; max_k passes its gradient to the argmax only,
                                      and the weights keep the argmax away from ties)
    entropy [1] = -sum(alpha * log alpha)   (torch_explain's entropy_logic_loss, summed over both classes)
    grad_entropy_weight [R, H, K] = d entropy / d weight
b. The LEN of torch_explain's README, nn.Sequential(0 EntropyLinear(K, 10, n_classes=R), 1 LeakyReLU,
   2 Linear(10, 4), 3 LeakyReLU, 4 Linear(4, 1)), LeakyReLU slope 0.01 (PyTorch's default):
    len.0.weight [R, 10, K], len.0.bias [R, 1, 10], len.2.weight [4, 10], len.2.bias [4],
    len.4.weight [1, 4], len.4.bias [1]; len_c [N, K] in [0, 1]; len_labels [N] int64 in {0, 1};
    len_logits [N, R] = model(len_c).squeeze(-1)
    len_loss   [1]    = BCEWithLogits(len_logits, one_hot(len_labels)) (mean over N * R)
                        + LAMBDA * entropy_logic_loss(model)            (LAMBDA = 1e-4)
    len_grad.<name>   = d len_loss / d len.<name>, for the six parameters
    len_alpha, len_mask [R, K]: the first layer's alpha and concept mask (float 0/1), for diagnosis.
__metadata__["hyperparameters"] is a JSON object with temperature, lambda, leaky_relu_slope, shapes and the
compute dtype; also "torch" and "torch_explain" versions, and "shapes" (JSON: name -> shape).

The script checks (and prints) that a plain restatement of both computations reproduces torch_explain's
values, and central finite differences (torch.autograd.gradcheck, float64) of that restatement.
"""
import json
import os
import sys

import torch
import torch_explain as te
from safetensors.torch import save_file

K, H, R, N = 5, 3, 2, 6
T, LAMBDA, SLOPE = 0.6, 1e-4, 0.01
LEN_HIDDEN = (10, 4)


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    g = torch.Generator().manual_seed(20261211)

    def uniform(*shape, lo=-1.0, hi=1.0):
        return torch.rand(shape, generator=g, dtype=torch.float32) * (hi - lo) + lo

    out = {}

    # a. One EntropyLinear layer. Column scales spread gamma so that some concepts fall under alpha_norm 0.5.
    scale = torch.tensor([1.0, 0.25, 0.8, 0.1, 0.6])
    w = uniform(R, H, K) * scale
    b = uniform(R, 1, H, lo=-0.3, hi=0.3)
    c = uniform(N, K, lo=0.0, hi=1.0)
    g_out = uniform(N, R, H)
    layer = te.nn.EntropyLinear(K, H, n_classes=R, temperature=T).double()
    with torch.no_grad():
        layer.weight.copy_(w.double())
        layer.bias.copy_(b.double())
    cd = c.double().requires_grad_(True)
    y = layer(cd)
    gamma = layer.weight.norm(dim=1, p=1)
    alpha, alpha_norm, mask = layer.alpha, layer.alpha_norm, layer.concept_mask
    check_mask(alpha_norm, "entropy")
    gw, gb, gc = torch.autograd.grad((y * g_out.double()).sum(), [layer.weight, layer.bias, cd])
    layer(cd.detach())  # a fresh graph for the entropy
    entropy = te.nn.functional.entropy_logic_loss(torch.nn.Sequential(layer))
    (gew,) = torch.autograd.grad(entropy, [layer.weight])
    out.update({
        "entropy.weight": w, "entropy.bias": b, "c": c, "g_out": g_out,
        "gamma": gamma.detach().float(), "alpha": alpha.detach().float(), "alpha_norm": alpha_norm.detach().float(),
        "mask": mask.float(), "out": y.detach().float(),
        "grad_weight": gw.float(), "grad_bias": gb.float(), "grad_c": gc.float(),
        "entropy": entropy.detach().float().reshape(1), "grad_entropy_weight": gew.float(),
    })

    # b. The README's LEN, one loss and its gradients.
    h1, h2 = LEN_HIDDEN
    params = {
        "0.weight": uniform(R, h1, K, lo=-0.4, hi=0.4) * torch.tensor([1.0, 0.3, 0.9, 0.2, 0.7]),
        "0.bias": uniform(R, 1, h1, lo=-0.3, hi=0.3),
        "2.weight": uniform(h2, h1, lo=-(1 / h1) ** 0.5, hi=(1 / h1) ** 0.5),
        "2.bias": uniform(h2, lo=-0.3, hi=0.3),
        "4.weight": uniform(1, h2, lo=-(1 / h2) ** 0.5, hi=(1 / h2) ** 0.5),
        "4.bias": uniform(1, lo=-0.3, hi=0.3),
    }
    len_c = uniform(N, K, lo=0.0, hi=1.0)
    labels = torch.tensor([0, 1, 1, 0, 1, 0], dtype=torch.int64)
    model = torch.nn.Sequential(
        te.nn.EntropyLinear(K, h1, n_classes=R, temperature=T), torch.nn.LeakyReLU(SLOPE),
        torch.nn.Linear(h1, h2), torch.nn.LeakyReLU(SLOPE), torch.nn.Linear(h2, 1)).double()
    model.load_state_dict({k: v.double() for k, v in params.items()})
    logits = model(len_c.double()).squeeze(-1)
    check_mask(model[0].alpha_norm, "len.0")
    one_hot = torch.nn.functional.one_hot(labels, R).double()
    loss = torch.nn.BCEWithLogitsLoss()(logits, one_hot) + LAMBDA * te.nn.functional.entropy_logic_loss(model)
    names = [n for n, _ in model.named_parameters()]
    grads = torch.autograd.grad(loss, list(model.parameters()))
    out.update({"len." + k: v for k, v in params.items()})
    out.update({"len_c": len_c, "len_labels": labels, "len_logits": logits.detach().float(),
                "len_loss": loss.detach().float().reshape(1),
                "len_alpha": model[0].alpha.detach().float(), "len_mask": model[0].concept_mask.float()})
    out.update({"len_grad." + n: gr.float() for n, gr in zip(names, grads)})

    # A plain restatement of both computations agrees with torch_explain, and its gradients with central
    # finite differences (torch.autograd.gradcheck, float64).
    wd, bd = w.double().requires_grad_(), b.double().requires_grad_()
    assert torch.allclose(entropy_linear(wd, bd, c.double())[0], y.detach(), atol=1e-12)
    assert torch.allclose(entropy_linear(wd, bd, c.double())[1], entropy.detach(), atol=1e-12)
    assert torch.autograd.gradcheck(lambda *a: entropy_linear(*a), (wd, bd, c.double().requires_grad_()))
    pd = [params[n].double().requires_grad_() for n in names]
    assert torch.allclose(len_loss(*pd, c=len_c.double(), targets=one_hot), loss.detach(), atol=1e-12)
    assert torch.autograd.gradcheck(lambda *a: len_loss(*a, c=len_c.double(), targets=one_hot), tuple(pd))
    print("restatement and gradcheck: ok (EntropyLinear output and entropy, LEN loss)")

    hyper = {"temperature": T, "lambda": LAMBDA, "leaky_relu_slope": SLOPE, "mask_threshold": 0.5,
             "loss": "BCEWithLogits(mean, one-hot targets) + lambda * entropy_logic_loss",
             "compute_dtype": "float64 (from float32 inputs), stored as float32",
             "entropy_layer": {"in_features": K, "out_features": H, "n_classes": R, "samples": N},
             "len": {"in_features": K, "hidden": list(LEN_HIDDEN), "n_classes": R, "samples": N}}
    meta = {"hyperparameters": json.dumps(hyper), "torch": torch.__version__, "torch_explain": te.__version__,
            "shapes": json.dumps({k: list(v.shape) for k, v in out.items()})}
    path = os.path.join(out_dir, "len.safetensors")
    save_file({k: v.contiguous() for k, v in out.items()}, path, metadata=meta)
    print("mask (a):", mask.int().tolist(), " mask (b):", model[0].concept_mask.int().tolist())
    print("entropy:", float(entropy), " len_loss:", float(loss))
    print("wrote", path)


def entropy_linear(w, b, c, temperature=T):
    """EntropyLinear's forward and its entropy, written out: ([N, R, H] output, entropy)."""
    alpha = torch.softmax(w.abs().sum(dim=1) / temperature, dim=1)
    alpha_norm = alpha / alpha.max(dim=1, keepdim=True).values
    out = torch.einsum("nk,rk,rhk->nrh", c, alpha_norm, w) + b.squeeze(1)
    return out, -(alpha * alpha.log()).sum()


def len_loss(w0, b0, w2, b2, w4, b4, c, targets):
    h, ent = entropy_linear(w0, b0, c)
    h = torch.nn.functional.leaky_relu(h, SLOPE)
    h = torch.nn.functional.leaky_relu(h @ w2.T + b2, SLOPE)
    logits = (h @ w4.T + b4).squeeze(-1)
    return torch.nn.functional.binary_cross_entropy_with_logits(logits, targets) + LAMBDA * ent


def check_mask(alpha_norm, what):
    """Both mask values occur, no alpha_norm sits near 0.5, and each class's argmax is clear."""
    a = alpha_norm.detach()
    m = a > 0.5
    assert bool(m.any()) and bool((~m).any()), f"{what}: mask is all one value: {a}"
    assert float((a - 0.5).abs().min()) > 0.02, f"{what}: alpha_norm too close to 0.5: {a}"
    top2 = a.topk(2, dim=1).values
    assert float((top2[:, 0] - top2[:, 1]).min()) > 1e-3, f"{what}: near tie for the max: {a}"


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "Tests/MetaLearningTests/Fixtures/len-golden")
