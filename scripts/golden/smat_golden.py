#!/usr/bin/env python3
"""Golden values for one SMAT-style outer (meta) step (Tests/MetaLearningTests/SMATTests.swift,
testOuterStepMatchesPyTorch; Swift: SMATMath.swift, SMATStudent.swift, SMATTraining.swift metaGradient /
metaUpdate).

Run with the oracle environment (bash scripts/oracle-env.sh sets up ~/.cache/quac-oracle):
    ~/.cache/quac-oracle/bin/python scripts/golden/smat_golden.py Tests/MetaLearningTests/Fixtures/smat-golden

Writes outer_step.safetensors. A tiny student (input [1, 8, 8], P = 64 positions, channels [2, 3], 3
classes): nn.Sequential(0 Conv2d(1,2,3,p=1), 1 ReLU, 2 MaxPool2d(2), 3 Conv2d(2,3,3,p=1), 4 ReLU,
5 MaxPool2d(4) (global), 6 Flatten, 7 Linear(3,3)); N = 6 training and M = 5 validation samples; H = 3
teacher heads. One outer step, in float32 as the Swift engine computes it:
    heads    = standardize(heads_raw)          (c = v - mean_P; (c / (sqrt(mean_P c^2 + 1e-12) + 1e-5)))
    logE     = log_softmax(sum_h sparsemax(phi)_h heads[:, h], over P)
    logQ     = log_softmax(sum_c sparsemax(psi)_c standardize(relu(conv0(x)))[:, c], over P)
    inner    = CE(student(x), y) + beta * sum(exp(logE) (logE - logQ)) / N
    theta'   = theta - lr * (d inner/d theta + mu * buf)       (create_graph: second order)
    outer    = CE(student_theta'(xv), yv)
    dphi     = d outer / d phi; clipped as clip_grad_norm_(clip); one AdamW step from a fresh state.
Two cases: a, phi with all 3 heads in sparsemax's support and a clip the gradient stays under; b, one
head outside the support and a clip that scales the gradient down.

Tensors (float32 unless said): inputs phi_a, phi_b [3], heads_raw [N, H, P], heads [N, H, P] (the
standardized heads, what metaGradient takes), x [N,1,8,8], y [N] int64, xv [M,1,8,8], yv [M] int64, psi
[2]; the student's state under "student.": its weights by state name ("student.0.weight", ...),
"student.psi", and its SGD momentum buffers "student.momentum.0".."student.momentum.6" (one per weight
in state order, then psi's, which is zero and unused here). Per case c in {a, b}: inner_c, outer_c [1],
dphi_c (unclipped), dphi_clipped_c, dphi_f64_c (float64: the same computation from the same float32
inputs in float64, for diagnosis), phi_after_c. __metadata__["hyperparameters"] is a JSON object with
lr, momentum, beta, meta_lr, meta_wd, clip_a, clip_b, adam_betas, adam_eps; also "torch" and "shapes".

The script checks (and prints) central finite differences of outer in phi, in float64, against
dphi_f64, and that clipping is inactive in case a and active in case b.
"""
import json
import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

N, M, H, C_IN, S, CLASSES = 6, 5, 3, 1, 8, 3
CHANNELS = [2, 3]
P = S * S
HP = {"lr": 0.1, "momentum": 0.9, "beta": 0.7, "meta_lr": 0.01, "meta_wd": 0.01, "clip_a": 5.0, "clip_b": 0.002,
      "adam_betas": [0.9, 0.999], "adam_eps": 1e-8}
PHI = {"a": [0.5, 0.3, 0.1],     # sparsemax: tau = -1/30, weights [0.5333, 0.3333, 0.1333], all in the support
       "b": [0.9, 0.3, -0.5]}    # sparsemax: tau = 0.1, weights [0.8, 0.2, 0], head 2 outside the support
PSI = [0.7, 0.3]
NAMES = ["0.weight", "0.bias", "3.weight", "3.bias", "7.weight", "7.bias"]


def standardize(v):
    c = v - v.mean(-1, keepdim=True)
    std = ((c * c).mean(-1, keepdim=True) + 1e-12).sqrt()
    return c / (std + 1e-5)


def sparsemax(z):
    """Sparsemax over the last axis of a vector (Martins & Astudillo 2016), differentiable through
    torch ops: the support comes from the sorted cumulative sums, tau = (sum over the support - 1) / k,
    so the gradient on the support is g - mean_S(g), zero outside."""
    zs, _ = torch.sort(z, descending=True)
    cums = torch.cumsum(zs, 0)
    j = torch.arange(1, z.numel() + 1, dtype=z.dtype)
    k = int((1 + j * zs > cums).nonzero().max()) + 1
    tau = (cums[k - 1] - 1) / k
    return torch.clamp(z - tau, min=0)


def student_forward(w, x):
    """The student nn.Sequential written functionally with weights w (list in NAMES order): logits and
    the head maps relu(conv0(x)) as [N, c, P]."""
    a1 = F.relu(F.conv2d(x, w[0], w[1], padding=1))
    h = F.max_pool2d(a1, 2)
    h = F.relu(F.conv2d(h, w[2], w[3], padding=1))
    h = F.max_pool2d(h, 4)
    logits = F.linear(torch.flatten(h, 1), w[4], w[5])
    return logits, a1.reshape(a1.shape[0], a1.shape[1], -1)


def outer_loss(phi, d):
    """inner loss, outer loss (after one simulated SGD-momentum step) as functions of phi, from the
    tensors in d (all of phi's dtype)."""
    weights = [d[n].clone().requires_grad_(True) for n in NAMES]
    logE = F.log_softmax((sparsemax(phi)[None, :, None] * standardize(d["heads_raw"])).sum(1), dim=1)
    logits, heads = student_forward(weights, d["x"])
    logQ = F.log_softmax((sparsemax(d["psi"])[None, :, None] * standardize(heads)).sum(1), dim=1)
    inner = F.cross_entropy(logits, d["y"]) + HP["beta"] * (logE.exp() * (logE - logQ)).sum() / N
    grads = torch.autograd.grad(inner, weights, create_graph=True)
    stepped = [w - HP["lr"] * (g + HP["momentum"] * d["buf"][i]) for i, (w, g) in enumerate(zip(weights, grads))]
    outer = F.cross_entropy(student_forward(stepped, d["xv"])[0], d["yv"])
    return inner, outer


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(C_IN, CHANNELS[0], 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(CHANNELS[0], CHANNELS[1], 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(4),
        torch.nn.Flatten(), torch.nn.Linear(CHANNELS[1], CLASSES))
    state = {k: v.detach().clone().float() for k, v in net.state_dict().items()}
    with torch.no_grad():   # PyTorch's default init is small for 9-tap convs: widen so the maps are lively
        state["0.weight"] *= 2.0
        state["3.weight"] *= 2.0
        state["7.weight"] *= 2.0
        state["0.bias"] = state["0.bias"].abs() + 0.05
        state["3.bias"] = state["3.bias"].abs() + 0.05
    assert list(state) == NAMES, list(state)
    g = torch.Generator().manual_seed(20261217)
    buf = [torch.randn(state[n].shape, generator=g) * 0.1 for n in NAMES]
    heads_raw = torch.randn(N, H, P, generator=g).abs()
    x = torch.randn(N, C_IN, S, S, generator=g)
    xv = torch.randn(M, C_IN, S, S, generator=g)
    y = torch.tensor([0, 1, 2, 1, 0, 2], dtype=torch.int64)
    yv = torch.tensor([2, 1, 0, 0, 1], dtype=torch.int64)
    psi = torch.tensor(PSI, dtype=torch.float32)

    # The ReLUs are alive: some positive activations per sample in both conv layers.
    with torch.no_grad():
        a1 = F.relu(F.conv2d(torch.cat([x, xv]), state["0.weight"], state["0.bias"], padding=1))
        a2 = F.relu(F.conv2d(F.max_pool2d(a1, 2), state["3.weight"], state["3.bias"], padding=1))
        print(f"active ReLUs: layer 0 {float((a1 > 0).float().mean()):.2f}, layer 3 {float((a2 > 0).float().mean()):.2f}; "
              f"per-sample pooled features > 0: {int((F.max_pool2d(a2, 4).flatten(1) > 0).sum())} of {a2.shape[0] * CHANNELS[1]}")
        assert (a1.flatten(2) > 0).any(-1).all() and (F.max_pool2d(a2, 4).flatten(1) > 0).any(-1).all()

    def data(dtype):
        d = {n: state[n].to(dtype) for n in NAMES}
        d.update(heads_raw=heads_raw.to(dtype), x=x.to(dtype), xv=xv.to(dtype), y=y, yv=yv, psi=psi.to(dtype),
                 buf=[b.to(dtype) for b in buf])
        return d

    d32, d64 = data(torch.float32), data(torch.float64)
    out = {"heads_raw": heads_raw, "heads": standardize(heads_raw), "x": x, "y": y, "xv": xv, "yv": yv, "psi": psi,
           "student.psi": psi.clone()}
    for n in NAMES:
        out["student." + n] = state[n]
    for i, b in enumerate(buf + [torch.zeros_like(psi)]):
        out[f"student.momentum.{i}"] = b

    for case, start in PHI.items():
        clip = HP["clip_" + case]
        phi = torch.tensor(start, dtype=torch.float32, requires_grad=True)
        print(f"case {case}: phi {start}, sparsemax {sparsemax(phi.detach()).tolist()}")
        inner, outer = outer_loss(phi, d32)
        dphi = torch.autograd.grad(outer, phi)[0]

        phi64 = torch.tensor(start, dtype=torch.float32).double().requires_grad_(True)
        _, outer64 = outer_loss(phi64, d64)
        dphi64 = torch.autograd.grad(outer64, phi64)[0]

        # Central differences of the float64 outer loss in phi.
        eps = 1e-5
        fd = torch.zeros(3, dtype=torch.float64)
        for i in range(3):
            e = torch.zeros(3, dtype=torch.float64)
            e[i] = eps
            with torch.enable_grad():   # the inner gradient needs autograd even here
                fp = outer_loss((phi64.detach() + e), d64)[1].item()
                fm = outer_loss((phi64.detach() - e), d64)[1].item()
            fd[i] = (fp - fm) / (2 * eps)
        rel = float((fd - dphi64).abs().max() / dphi64.abs().max())
        print(f"  outer {outer.item():.8f} (f64 {outer64.item():.10f}), inner {inner.item():.8f}")
        print(f"  dphi     f32 {dphi.tolist()}")
        print(f"  dphi_f64     {dphi64.tolist()}")
        print(f"  central FD   {fd.tolist()} (eps {eps})")
        print(f"  FD vs dphi_f64: max |diff| / max |dphi_f64| = {rel:.2e}; f32 vs f64: "
              f"{float((dphi.double() - dphi64).abs().max() / dphi64.abs().max()):.2e}")
        assert rel < 1e-6, rel

        # clip_grad_norm_ then AdamW from a fresh state (step 1).
        p = torch.nn.Parameter(phi.detach().clone())
        p.grad = dphi.clone()
        norm = float(torch.nn.utils.clip_grad_norm_([p], clip))
        clipped = p.grad.detach().clone()
        print(f"  ||dphi|| = {norm:.6g}, clip {clip}: {'scaled by %.6g' % (clip / (norm + 1e-6)) if clip / (norm + 1e-6) < 1 else 'not clipped'}")
        assert (clip / (norm + 1e-6) < 1) == (case == "b"), "case a must not clip, case b must"
        opt = torch.optim.AdamW([p], lr=HP["meta_lr"], betas=tuple(HP["adam_betas"]), eps=HP["adam_eps"],
                                weight_decay=HP["meta_wd"])
        opt.step()
        print(f"  phi after   {p.detach().tolist()}")
        # Adam's first step is ~ lr * sign(g): every gradient entry is either exactly 0 or far above
        # float32 noise, so its sign (and phi_after) is robust.
        nz = dphi[dphi != 0].abs()
        assert nz.numel() == 0 or float(nz.min()) > 1e-3 * float(dphi.abs().max()), dphi

        out.update({f"phi_{case}": phi.detach().clone(), f"inner_{case}": inner.detach().reshape(1),
                    f"outer_{case}": outer.detach().reshape(1), f"dphi_{case}": dphi.detach(),
                    f"dphi_clipped_{case}": clipped, f"dphi_f64_{case}": dphi64.detach(),
                    f"phi_after_{case}": p.detach().clone()})

    for k, v in out.items():
        assert v.dtype in (torch.float32, torch.int64) or k.startswith("dphi_f64"), (k, v.dtype)
    meta = {"hyperparameters": json.dumps(HP), "torch": torch.__version__,
            "shapes": json.dumps({"N": N, "M": M, "H": H, "input_shape": [C_IN, S, S], "channels": CHANNELS, "classes": CLASSES})}
    path = os.path.join(out_dir, "outer_step.safetensors")
    save_file({k: v.contiguous() for k, v in out.items()}, path, metadata=meta)
    print("wrote", path)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "Tests/MetaLearningTests/Fixtures/smat-golden")
