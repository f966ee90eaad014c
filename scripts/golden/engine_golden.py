#!/usr/bin/env python3
"""Golden values for the engine's parity tests (Tests/EngineTests/Golden).

Run with Debian's python3-torch (bash scripts/oracle-env.sh sets up ~/.cache/quac-oracle):
    ~/.cache/quac-oracle/bin/python scripts/golden/engine_golden.py Tests/EngineTests/Golden

Inputs are drawn in float32 with fixed seeds; PyTorch then computes in float64 and the results are
stored as float32, so the Swift tests compare against the exact values of the same float32 inputs.
Each case stores its inputs, `out`, a random `seed` of out's shape, and `grad.<input>` = the gradient
of sum(out * seed) with respect to each input. The file's __metadata__["cases"] is a JSON object
{case: {"op": ..., "inputs": [...], params...}} that the Swift test dispatches on.
"""
import json
import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

torch.manual_seed(0)


def rand(*shape, low=-1.0, high=1.0):
    return (torch.rand(tuple(shape), dtype=torch.float32) * (high - low) + low)


def spread(*shape, gap=0.05):
    """Distinct values (no ties for max and max pooling), shuffled."""
    n = 1
    for s in shape:
        n *= s
    v = (torch.randperm(n).to(torch.float32) - n / 2) * gap
    return v.reshape(shape)


class Writer:
    def __init__(self):
        self.tensors = {}
        self.cases = {}

    def case(self, name, op, inputs, fn, **params):
        """inputs: list of (name, float32 tensor, differentiable)."""
        xs = [t.to(torch.float64).requires_grad_(d) for (_, t, d) in inputs]
        out = fn(*xs)
        seed = rand(*out.shape).to(torch.float64)
        diff = [x for x in xs if x.requires_grad]
        grads = torch.autograd.grad((out * seed).sum(), diff, allow_unused=True) if diff else []
        gi = iter(grads)
        for (n, t, d), x in zip(inputs, xs):
            self.tensors[f"{name}/{n}"] = t.contiguous().clone()
            if d:
                g = next(gi)
                self.tensors[f"{name}/grad.{n}"] = (torch.zeros_like(x) if g is None else g).to(torch.float32).contiguous()
        self.tensors[f"{name}/out"] = out.detach().to(torch.float32).contiguous()
        self.tensors[f"{name}/seed"] = seed.to(torch.float32).contiguous()
        self.cases[name] = dict(op=op, inputs=[n for (n, _, _) in inputs],
                                differentiable=[n for (n, _, d) in inputs if d], **params)

    def save(self, path, extra=None):
        meta = {"cases": json.dumps(self.cases)}
        if extra:
            meta.update(extra)
        save_file(self.tensors, path, metadata=meta)


def ops(w):
    x = rand(3, 5, low=-2, high=2)
    for name, f in [("relu", F.relu), ("tanh", torch.tanh), ("sigmoid", torch.sigmoid), ("exp", torch.exp),
                    ("abs", torch.abs), ("neg", torch.neg)]:
        w.case(name, name, [("x", x, True)], f)
    w.case("leaky_relu", "leaky_relu", [("x", x, True)], lambda a: F.leaky_relu(a, 0.2), slope=0.2)
    w.case("softplus", "softplus", [("x", x * 12, True)], lambda a: F.softplus(a, beta=2, threshold=20), beta=2.0, threshold=20.0)
    pos = rand(3, 5, low=0.2, high=3)
    for name, f in [("log", torch.log), ("sqrt", torch.sqrt), ("rsqrt", torch.rsqrt)]:
        w.case(name, name, [("x", pos, True)], f)
    w.case("pow", "pow", [("x", pos, True)], lambda a: a ** 1.7, p=1.7)
    a, b = rand(2, 3, 4), rand(3, 1)
    for name, f in [("add", torch.add), ("sub", torch.sub), ("mul", torch.mul)]:
        w.case(name, name, [("a", a, True), ("b", b, True)], f)
    w.case("div", "div", [("a", a, True), ("b", rand(3, 1, low=0.5, high=2), True)], torch.div)
    t = rand(2, 3, 4)
    w.case("sum_axes", "sum", [("x", t, True)], lambda v: v.sum(dim=(0, 2), keepdim=True), axes=[0, 2], keep=True)
    w.case("mean_axis", "mean", [("x", t, True)], lambda v: v.mean(dim=1), axes=[1], keep=False)
    s = spread(2, 3, 4)
    w.case("max_axis", "max", [("x", s, True)], lambda v: v.max(dim=2).values, axes=[2], keep=False)
    w.case("logsumexp", "logsumexp", [("x", t * 3, True)], lambda v: torch.logsumexp(v, dim=1), axes=[1])
    w.case("softmax", "softmax", [("x", rand(3, 6, low=-3, high=3), True)], lambda v: F.softmax(v, dim=1), axis=1)
    w.case("log_softmax", "log_softmax", [("x", rand(2, 4, 3, low=-3, high=3), True)], lambda v: F.log_softmax(v, dim=1), axis=1)
    w.case("permute", "permute", [("x", t, True)], lambda v: v.permute(2, 0, 1) * 1.0, order=[2, 0, 1])
    w.case("concat", "concat", [("a", t, True), ("b", rand(2, 2, 4), True)], lambda p, q: torch.cat([p, q], 1), axis=1)
    w.case("slice", "slice", [("x", t, True)], lambda v: v[:, 1:3], axis=1, start=1, end=3)
    w.case("pad", "pad", [("x", t, True)], lambda v: F.pad(v, (2, 1, 0, 1)), padding=[[0, 0], [0, 1], [2, 1]])
    w.case("flip", "flip", [("x", t, True)], lambda v: torch.flip(v, [0, 2]), axes=[0, 2])
    w.case("matmul", "matmul", [("a", rand(3, 4), True), ("b", rand(4, 5), True)], torch.matmul)
    w.case("bmm", "matmul", [("a", rand(2, 3, 4), True), ("b", rand(2, 4, 5), True)], torch.matmul)
    # Losses (scalar outputs).
    logits = rand(5, 4, low=-3, high=3)
    labels = torch.tensor([0, 3, 1, 1, 2])
    w.case("cross_entropy", "cross_entropy", [("x", logits, True)], lambda v: F.cross_entropy(v, labels),
           labels=labels.tolist())
    target = rand(5, 4, low=0, high=1)
    w.case("bce_logits", "bce_logits", [("x", logits, True), ("t", target, True)],
           lambda v, q: F.binary_cross_entropy_with_logits(v, q))
    w.case("mse", "mse", [("a", logits, True), ("b", target, True)], F.mse_loss)
    w.case("l1", "l1", [("a", logits, True), ("b", target, True)], F.l1_loss)
    probs = F.softmax(rand(5, 4, low=-2, high=2), dim=1)
    w.case("kl_div", "kl_div", [("x", F.log_softmax(logits, 1), True), ("t", probs, True)],
           lambda v, q: F.kl_div(v, q, reduction="batchmean"), reduction="batchmean")


def layers(w):
    w.case("linear", "linear", [("x", rand(4, 5), True), ("w", rand(3, 5), True), ("b", rand(3), True)], F.linear)
    x = rand(2, 3, 7, 6)
    wt, b = rand(4, 3, 3, 3), rand(4)
    for name, st, pd, dl in [("conv_s1p1", 1, 1, 1), ("conv_s2p1", 2, 1, 1), ("conv_dil2", 1, 2, 2), ("conv_s2p0", 2, 0, 1)]:
        w.case(name, "conv2d", [("x", x, True), ("w", wt, True), ("b", b, True)],
               lambda p, q, r, st=st, pd=pd, dl=dl: F.conv2d(p, q, r, stride=st, padding=pd, dilation=dl),
               stride=st, padding=pd, dilation=dl)
    w.case("conv_1x1", "conv2d", [("x", x, True), ("w", rand(5, 3, 1, 1), True), ("b", rand(5), True)],
           lambda p, q, r: F.conv2d(p, q, r), stride=1, padding=0, dilation=1)
    w.case("conv_transpose", "conv_transpose2d", [("x", rand(2, 3, 4, 5), True), ("w", rand(3, 2, 3, 3), True), ("b", rand(2), True)],
           lambda p, q, r: F.conv_transpose2d(p, q, r, stride=2, padding=1, output_padding=1),
           stride=2, padding=1, output_padding=1)
    s = spread(2, 3, 7, 6)
    w.case("max_pool", "max_pool2d", [("x", s, True)], lambda v: F.max_pool2d(v, 3, 2, 1), kernel=3, stride=2, padding=1)
    w.case("max_pool2", "max_pool2d", [("x", s, True)], lambda v: F.max_pool2d(v, 2), kernel=2, stride=2, padding=0)
    w.case("avg_pool", "avg_pool2d", [("x", x, True)], lambda v: F.avg_pool2d(v, 3, 2, 1), kernel=3, stride=2, padding=1,
           count_include_pad=True)
    w.case("avg_pool_nopad", "avg_pool2d", [("x", x, True)], lambda v: F.avg_pool2d(v, 3, 2, 1, count_include_pad=False),
           kernel=3, stride=2, padding=1, count_include_pad=False)
    w.case("adaptive_avg", "adaptive_avg_pool2d", [("x", x, True)], lambda v: F.adaptive_avg_pool2d(v, (3, 4)), size=[3, 4])
    w.case("upsample", "upsample", [("x", x, True)], lambda v: F.interpolate(v, scale_factor=2, mode="nearest"), scale=2)
    g, bb = rand(3, low=0.5, high=1.5), rand(3)
    rm, rv = rand(3), rand(3, low=0.5, high=2)
    w.case("batch_norm_train", "batch_norm", [("x", x, True), ("w", g, True), ("b", bb, True), ("rm", rm, False), ("rv", rv, False)],
           lambda p, q, r, m, v: F.batch_norm(p, m.clone(), v.clone(), q, r, training=True, momentum=0.1, eps=1e-5),
           training=True)
    # Running statistics after one training step.
    m2, v2 = rm.double().clone(), rv.double().clone()
    F.batch_norm(x.double(), m2, v2, None, None, training=True, momentum=0.1, eps=1e-5)
    w.tensors["batch_norm_train/rm_after"] = m2.float()
    w.tensors["batch_norm_train/rv_after"] = v2.float()
    w.case("batch_norm_eval", "batch_norm", [("x", x, True), ("w", g, True), ("b", bb, True), ("rm", rm, False), ("rv", rv, False)],
           lambda p, q, r, m, v: F.batch_norm(p, m, v, q, r, training=False, eps=1e-5), training=False)
    w.case("instance_norm", "instance_norm", [("x", x, True), ("w", g, True), ("b", bb, True)],
           lambda p, q, r: F.instance_norm(p, weight=q, bias=r, eps=1e-5))
    w.case("adain", "adain", [("x", x, True), ("gamma", rand(2, 3), True), ("beta", rand(2, 3), True)],
           lambda p, q, r: (1 + q[:, :, None, None]) * F.instance_norm(p, eps=1e-5) + r[:, :, None, None])


CNN_ARCH = {"type": "sequential", "layers": [
    {"type": "conv2d", "in": 3, "out": 8, "kernel": 3, "padding": 1},
    {"type": "batch_norm", "channels": 8},
    {"type": "relu"},
    {"type": "max_pool2d", "kernel": 2},
    {"type": "conv2d", "in": 8, "out": 16, "kernel": 3, "padding": 1, "stride": 2},
    {"type": "batch_norm", "channels": 16},
    {"type": "leaky_relu", "slope": 0.2},
    {"type": "adaptive_avg_pool2d", "size": [1, 1]},
    {"type": "flatten"},
    {"type": "linear", "in": 16, "out": 4},
]}


def torch_cnn():
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(8, 16, 3, padding=1, stride=2), torch.nn.BatchNorm2d(16), torch.nn.LeakyReLU(0.2),
        torch.nn.AdaptiveAvgPool2d((1, 1)), torch.nn.Flatten(), torch.nn.Linear(16, 4))


def cnn(path):
    net = torch_cnn()
    with torch.no_grad():  # non-trivial running statistics
        for m in net:
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    state = {k: v.clone() for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    x = rand(4, 3, 12, 12)
    y = torch.tensor([0, 1, 3, 2])
    t = {f"weights/{k}": v.float().contiguous() for k, v in state.items()}
    t["x"], t["y"] = x, y
    net = net.double()
    # Training mode: loss, parameter gradients, running statistics after the step.
    net.train()
    logits = net(x.double())
    loss = F.cross_entropy(logits, y)
    params = dict(net.named_parameters())
    grads = torch.autograd.grad(loss, list(params.values()))
    t["train/logits"], t["train/loss"] = logits.detach().float(), loss.detach().float().reshape(1)
    for (k, _), g in zip(params.items(), grads):
        t[f"train/grad/{k}"] = g.float()
    for k, v in net.state_dict().items():
        if "running" in k:
            t[f"train/after/{k}"] = v.float()
    # Evaluation mode from the original weights.
    net.load_state_dict({k: v.double() for k, v in state.items()}, strict=False)
    net.eval()
    t["eval/logits"] = net(x.double()).detach().float()
    # R1 penalty (double backward): 0.5 * mean over the batch of |d f_y / dx|^2, its parameter gradients.
    xr = x.double().requires_grad_(True)
    out = net(xr).gather(1, y[:, None]).sum()
    (gx,) = torch.autograd.grad(out, xr, create_graph=True)
    r1 = 0.5 * gx.pow(2).sum() / x.shape[0]
    targets = list(params.values()) + [xr]
    r1grads = torch.autograd.grad(r1, targets, allow_unused=True)
    r1grads = [torch.zeros_like(v) if g is None else g for v, g in zip(targets, r1grads)]
    t["r1/value"] = r1.detach().float().reshape(1)
    for (k, _), g in zip(list(params.items()) + [("x", None)], r1grads):
        t[f"r1/grad/{k}"] = g.float()
    save_file({k: v.contiguous() for k, v in t.items()}, path, metadata={"architecture": json.dumps(CNN_ARCH)})


GAN_ARCH = {"type": "graph", "output": "head", "nodes": [
    {"name": "stem", "layer": {"type": "conv2d", "in": 2, "out": 4, "kernel": 3, "padding": 1}},
    {"name": "norm", "layer": {"type": "instance_norm", "channels": 4, "affine": True}},
    {"name": "act", "layer": {"type": "leaky_relu", "slope": 0.2}},
    {"name": "up", "layer": {"type": "conv_transpose2d", "in": 4, "out": 3, "kernel": 4, "stride": 2, "padding": 1}},
    {"name": "skip", "layer": {"type": "upsample", "scale": 2}, "input": "input"},
    {"name": "cat", "op": "concat", "inputs": ["up", "skip"], "axis": 1},
    {"name": "down", "layer": {"type": "avg_pool2d", "kernel": 2}},
    {"name": "body", "layer": {"type": "conv2d", "in": 5, "out": 5, "kernel": 3, "padding": 1}},
    {"name": "soft", "layer": {"type": "softplus"}},
    {"name": "sum", "op": "add", "inputs": ["down", "soft"]},
    {"name": "pool", "layer": {"type": "adaptive_avg_pool2d", "size": [2, 2]}},
    {"name": "flat", "layer": {"type": "flatten"}},
    {"name": "head", "layer": {"type": "linear", "in": 20, "out": 3}},
]}


class GanNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = torch.nn.Conv2d(2, 4, 3, padding=1)
        self.norm = torch.nn.InstanceNorm2d(4, affine=True)
        self.up = torch.nn.ConvTranspose2d(4, 3, 4, stride=2, padding=1)
        self.body = torch.nn.Conv2d(5, 5, 3, padding=1)
        self.head = torch.nn.Linear(20, 3)

    def forward(self, x):
        h = self.up(F.leaky_relu(self.norm(self.stem(x)), 0.2))
        d = F.avg_pool2d(torch.cat([h, F.interpolate(x, scale_factor=2, mode="nearest")], 1), 2)
        s = d + F.softplus(self.body(d))
        return self.head(F.adaptive_avg_pool2d(s, (2, 2)).flatten(1))


def gan(path):
    """A generator-like graph (instance norm, transposed conv, upsampling, concat, skip): loss
    gradients and the R1 penalty's gradients (double backward)."""
    net = GanNet()
    with torch.no_grad():
        net.norm.weight.uniform_(0.5, 1.5)
        net.norm.bias.uniform_(-0.5, 0.5)
    t = {f"weights/{k}": v.float().clone() for k, v in net.state_dict().items()}
    net = net.double()
    x, y = rand(3, 2, 8, 8), torch.tensor([2, 0, 1])
    t["x"], t["y"] = x, y
    xr = x.double().requires_grad_(True)
    logits = net(xr)
    t["logits"] = logits.detach().float()
    params = dict(net.named_parameters())
    loss = F.cross_entropy(logits, y)
    for (k, _), g in zip(params.items(), torch.autograd.grad(loss, list(params.values()), retain_graph=True)):
        t[f"grad/{k}"] = g.float()
    (gx,) = torch.autograd.grad(logits.gather(1, y[:, None]).sum(), xr, create_graph=True)
    r1 = 0.5 * gx.pow(2).sum() / x.shape[0]
    t["r1/value"] = r1.detach().float().reshape(1)
    targets = list(params.values()) + [xr]
    for (k, v), g in zip(list(params.items()) + [("x", xr)], torch.autograd.grad(r1, targets, allow_unused=True)):
        t[f"r1/grad/{k}"] = (torch.zeros_like(v) if g is None else g).float()
    save_file({k: v.contiguous() for k, v in t.items()}, path, metadata={"architecture": json.dumps(GAN_ARCH)})


OPTIMIZERS = {
    "sgd": ("SGD", dict(lr=0.1)),
    "sgd_momentum": ("SGD", dict(lr=0.1, momentum=0.9, weight_decay=0.01)),
    "sgd_nesterov": ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.001)),
    "adam": ("Adam", dict(lr=0.01, betas=(0.9, 0.999), eps=1e-8)),
    "adam_wd": ("Adam", dict(lr=0.01, betas=(0.0, 0.99), weight_decay=1e-2)),
    "adamw": ("AdamW", dict(lr=0.01, betas=(0.9, 0.99), weight_decay=0.1)),
}


def optim(path):
    """Parameter trajectories of torch.optim under a fixed sequence of gradients (float32, as training)."""
    steps, n = 6, 7
    t = {"p0": rand(n), "grads": rand(steps, n, low=-2, high=2)}
    for name, (cls, kw) in OPTIMIZERS.items():
        p = torch.nn.Parameter(t["p0"].clone())
        opt = getattr(torch.optim, cls)([p], **kw)
        traj = []
        for i in range(steps):
            p.grad = t["grads"][i].clone()
            opt.step()
            traj.append(p.detach().clone())
        t[f"{name}/trajectory"] = torch.stack(traj)
    cfg = {k: {"class": c, **{a: (list(b) if isinstance(b, tuple) else b) for a, b in kw.items()}} for k, (c, kw) in OPTIMIZERS.items()}
    save_file({k: v.contiguous() for k, v in t.items()}, path, metadata={"optimizers": json.dumps(cfg)})


ATTR_ARCH = {"type": "sequential", "layers": [
    {"type": "conv2d", "in": 2, "out": 4, "kernel": 3, "padding": 1},
    {"type": "batch_norm", "channels": 4},
    {"type": "relu"},
    {"type": "max_pool2d", "kernel": 2},
    {"type": "conv2d", "in": 4, "out": 6, "kernel": 3},
    {"type": "tanh"},
    {"type": "flatten"},
    {"type": "linear", "in": 24, "out": 8},
    {"type": "leaky_relu", "slope": 0.1},
    {"type": "linear", "in": 8, "out": 3},
]}


SMALL_ATTR_ARCH = {"type": "sequential", "layers": [
    {"type": "conv2d", "in": 2, "out": 3, "kernel": 3}, {"type": "relu"},
    {"type": "conv2d", "in": 3, "out": 2, "kernel": 3}, {"type": "sigmoid"}, {"type": "flatten"},
    {"type": "linear", "in": 32, "out": 3}, {"type": "softplus"}, {"type": "linear", "in": 3, "out": 3},
]}


class _Rescale(torch.autograd.Function):
    """DeepLift's rescale rule for an elementwise nonlinearity on a [x; x0] batch."""

    @staticmethod
    def forward(ctx, inp, fn):
        with torch.enable_grad():
            i = inp.detach().requires_grad_(True)
            out = fn(i)
            (ordinary,) = torch.autograd.grad(out.sum(), i)
        ctx.save_for_backward(inp, out.detach(), ordinary)
        return out.detach()

    @staticmethod
    def backward(ctx, g):
        inp, out, ordinary = ctx.saved_tensors
        di = torch.cat(2 * [inp.chunk(2)[0] - inp.chunk(2)[1]])
        do = torch.cat(2 * [out.chunk(2)[0] - out.chunk(2)[1]])
        return torch.where(di.abs() < 1e-7, g * ordinary, g * do / di), None


class _RescaleMaxPool(torch.autograd.Function):
    """Captum's documented max-pool rule (deep_lift.py, maxpool), on a [x; x0] batch."""

    @staticmethod
    def forward(ctx, inp, k):
        out, idx = F.max_pool2d(inp, k, return_indices=True)
        ctx.save_for_backward(inp, out, idx)
        ctx.k = k
        return out

    @staticmethod
    def backward(ctx, g):
        inp, out, idx = ctx.saved_tensors
        o, o0 = out.chunk(2)
        m = torch.max(o, o0)
        dout = torch.cat([m - o0, o - m])
        u = F.max_unpool2d(g * dout, idx, ctx.k, ctx.k, 0, list(inp.shape))
        s = torch.cat(2 * [u.chunk(2)[0] + u.chunk(2)[1]])
        di = torch.cat(2 * [inp.chunk(2)[0] - inp.chunk(2)[1]])
        ordinary = F.max_unpool2d(g, idx, ctx.k, ctx.k, 0, list(inp.shape))
        return torch.where(di.abs() < 1e-7, ordinary, s / di), None


def deeplift_reference(net, x, x0, target):
    """DeepLift multipliers times (x - x0), rules applied explicitly (no module hooks)."""
    both = torch.cat([x, x0]).requires_grad_(True)
    h = both
    for m in net:
        if isinstance(m, torch.nn.MaxPool2d):
            h = _RescaleMaxPool.apply(h, m.kernel_size)
        elif isinstance(m, (torch.nn.ReLU, torch.nn.Tanh, torch.nn.LeakyReLU, torch.nn.Sigmoid, torch.nn.Softplus)):
            h = _Rescale.apply(h, m)
        else:
            h = m(h)
    (g,) = torch.autograd.grad(h.gather(1, torch.cat([target, target])[:, None]).sum(), both)
    return (x - x0) * g[: x.shape[0]]


def attributions(path):
    """DeepLift (rescale rule with a baseline) and guided backpropagation on a small eval-mode CNN.

    Guided backpropagation is Captum's GuidedBackprop. DeepLift is the rule as Captum documents it,
    applied explicitly (deeplift_reference): Captum 0.7's module hooks deviate from their own rule in
    networks that pool next to nonlinearities (their attributions then miss summation to delta); its
    output is stored as `deeplift_captum` for reference and agrees where Captum is self-consistent.
    """
    from captum.attr import DeepLift, GuidedBackprop
    net = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(4, 6, 3), torch.nn.Tanh(), torch.nn.Flatten(), torch.nn.Linear(24, 8),
        torch.nn.LeakyReLU(0.1), torch.nn.Linear(8, 3))
    with torch.no_grad():
        net[1].running_mean.uniform_(-0.3, 0.3)
        net[1].running_var.uniform_(0.5, 1.5)
    t = {f"weights/{k}": v.float().clone() for k, v in net.state_dict().items() if "num_batches" not in k}
    net = net.double().eval()
    x, x0 = rand(3, 2, 8, 8), rand(3, 2, 8, 8)
    target = torch.tensor([2, 0, 1])
    t["x"], t["baseline"], t["target"] = x, x0, target
    t["deeplift"] = deeplift_reference(net, x.double(), x0.double(), target).detach().float()
    t["deeplift_captum"] = DeepLift(net).attribute(x.double(), baselines=x0.double(), target=target).detach().float()
    t["guided"] = GuidedBackprop(net).attribute(x.double(), target=target).detach().float()
    # A pooling-free network, where Captum's hooks and the rule agree.
    small = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.ReLU(), torch.nn.Conv2d(3, 2, 3), torch.nn.Sigmoid(),
                                torch.nn.Flatten(), torch.nn.Linear(32, 3), torch.nn.Softplus(), torch.nn.Linear(3, 3))
    for k, v in small.state_dict().items():
        t[f"small/weights/{k}"] = v.float().clone()
    small = small.double().eval()
    ref = deeplift_reference(small, x.double(), x0.double(), target)
    cap = DeepLift(small).attribute(x.double(), baselines=x0.double(), target=target)
    assert (ref - cap).abs().max() < 1e-10, "Captum and the explicit rule disagree on the pooling-free net"
    t["small/deeplift"] = cap.detach().float()
    save_file({k: v.contiguous() for k, v in t.items()}, path,
              metadata={"architecture": json.dumps(ATTR_ARCH), "small_architecture": json.dumps(SMALL_ATTR_ARCH)})


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "Tests/EngineTests/Golden"
    os.makedirs(out, exist_ok=True)
    w = Writer()
    ops(w)
    w.save(os.path.join(out, "engine_ops.safetensors"))
    w = Writer()
    layers(w)
    w.save(os.path.join(out, "engine_layers.safetensors"))
    cnn(os.path.join(out, "engine_cnn.safetensors"))
    optim(os.path.join(out, "engine_optim.safetensors"))
    attributions(os.path.join(out, "engine_attributions.safetensors"))
    gan(os.path.join(out, "engine_gan.safetensors"))


if __name__ == "__main__":
    main()
