#!/usr/bin/env python3
"""Golden values for the classifier layers extension and the layer attributors
(Tests/QuacHostTests/LayerAttributionTests.swift).

Run with the oracle environment (bash scripts/oracle-env.sh sets up ~/.cache/quac-oracle):
    ~/.cache/quac-oracle/bin/python scripts/golden/layer_golden.py \
        Tests/QuacHostTests/Fixtures/layer-golden

The network is a small VGG-like CNN for [2, 9, 9] inputs and 3 classes, built the way the engine's
"graph" ModelFile builds org.quac.cnn-classifier's VGG (nodes features / flatten / classifier), so its
module paths and state_dict names are the engine's:
    features   = Sequential(Conv2d(2, 4, 3, padding=1), BatchNorm2d(4), ReLU(), MaxPool2d(2),
                            Conv2d(4, 6, 3, padding=1), ReLU())            # [6, 4, 4] (9 // 2 = 4)
    flatten    = Flatten()                                                 # [96]
    classifier = Sequential(Linear(96, 10), ReLU(), Linear(10, 3))
The batch norm runs in evaluation mode with drawn running statistics. 9x9 inputs make the 4x4 maps of
features.5 resize by a non-integer factor (9/4), which exercises the nearest / bilinear index rules.

Writes two files:
- cnn.safetensors: the state_dict (num_batches_tracked included, as PyTorch saves it), with
  __metadata__["architecture"] = the ModelFile JSON of the network (org.quac.cnn-classifier's
  "weights"; the same JSON goes in its "architecture" parameter).
- golden.safetensors, for N samples x [N, 2, 9, 9] and labels [N] (the explained class):
    logits                       f(x)
    g_logits                     a fixed random seed [N, 3] for the vjp_logits checks
  and for each layer L in LAYERS ("features.2": [4, 9, 9], the first ReLU; "features.5": [6, 4, 4]):
    act.L                        the layer's output (forward hook)
    g_act.L                      a fixed random seed shaped like act.L
    vjp_input.L                  d/dx sum(act.L * g_act.L)
    vjp_logits_own.L             d/dA sum(f * g_logits) at A = act.L (the layer's own activations)
    repl_act.L                   random activations A' shaped like act.L
    repl_logits.L                the logits of the pass whose layer output is replaced by A'
    vjp_logits_repl.L            d/dA sum(f * g_logits) at A = A'
    gradcam.L.nearest            Captum LayerGradCam(model, L).attribute(x, target=labels), then
                                 LayerAttribution.interpolate(., (9, 9), "nearest")   [N, 1, 9, 9]
    lig.L.nearest                Captum LayerIntegratedGradients(model, L).attribute(x, target=labels,
                                 n_steps=LIG_STEPS, method="gausslegendre") (zero input baseline),
                                 summed over channels (dim 1, keepdim), interpolated "nearest"
    lig.L.delta                  its convergence delta (return_convergence_delta=True)
  and, for features.5 only:
    gradcam.features.5.bilinear  interpolate mode "bilinear" (align_corners False)
    gradcam.features.5.relu      relu_attributions=True, nearest
    lig.features.5.bilinear      the channel-summed layer IG, interpolated "bilinear"
  __metadata__: "architecture" (the ModelFile JSON), "layers" (JSON list of {"name", "shape"} as the
  engine lists them: module paths, children before parent), "sizes", versions, "generator".

Weights and inputs are drawn in float32 with a fixed seed; PyTorch and Captum then compute in float64 on
exactly those values, and results are stored as float32, so the Swift tests see only the host's own
float32 rounding. The script refuses draws where float32 rounding could flip a ReLU or a max-pooling
choice between PyTorch and the engine (it checks the margins and says so).
"""
import json
import os
import sys

import captum
import numpy as np
import torch
import torch.nn.functional as F
from captum.attr import LayerAttribution, LayerGradCam, LayerIntegratedGradients
from safetensors.torch import save_file

N, C, S, K = 4, 2, 9, 3
C1, C2, HIDDEN = 4, 6, 10
LIG_STEPS = 20
LAYERS = ("features.2", "features.5")
SEED = 20261205

ARCHITECTURE = {
    "type": "graph", "output": "classifier",
    "nodes": [
        {"name": "features", "layer": {"type": "sequential", "layers": [
            {"type": "conv2d", "in": C, "out": C1, "kernel": 3, "padding": 1},
            {"type": "batch_norm", "channels": C1},
            {"type": "relu"},
            {"type": "max_pool2d", "kernel": 2},
            {"type": "conv2d", "in": C1, "out": C2, "kernel": 3, "padding": 1},
            {"type": "relu"},
        ]}},
        {"name": "flatten", "layer": {"type": "flatten"}},
        {"name": "classifier", "layer": {"type": "sequential", "layers": [
            {"type": "linear", "in": C2 * (S // 2) ** 2, "out": HIDDEN},
            {"type": "relu"},
            {"type": "linear", "in": HIDDEN, "out": K},
        ]}},
    ],
}


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(C, C1, 3, padding=1), torch.nn.BatchNorm2d(C1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(C1, C2, 3, padding=1), torch.nn.ReLU())
        self.flatten = torch.nn.Flatten()
        self.classifier = torch.nn.Sequential(
            torch.nn.Linear(C2 * (S // 2) ** 2, HIDDEN), torch.nn.ReLU(), torch.nn.Linear(HIDDEN, K))

    def forward(self, x):
        return self.classifier(self.flatten(self.features(x)))


def engine_layers(model, shapes):
    """The engine's layer list: every module's path, children before their parent."""
    out = []

    def walk(module, prefix):
        for name, child in module.named_children():
            path = prefix + name
            walk(child, path + ".")
            out.append({"name": path, "shape": shapes[path]})
    walk(model, "")
    return out


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    torch.set_default_dtype(torch.float64)
    g = torch.Generator().manual_seed(SEED)

    def uniform(*shape, low=-1.0, high=1.0):
        return torch.rand(shape, generator=g, dtype=torch.float32) * (high - low) + low

    # float32 weights and batch-norm statistics, copied into a float64 model.
    model = Net()
    state32 = {}
    for name, t in model.state_dict().items():
        if name.endswith("num_batches_tracked"):
            state32[name] = torch.tensor(10, dtype=torch.int64)
        elif name.endswith("running_var"):
            state32[name] = uniform(*t.shape, low=0.5, high=1.5)
        elif name.endswith("running_mean"):
            state32[name] = uniform(*t.shape, low=-0.2, high=0.2)
        elif name.startswith("features.1."):   # batch-norm affine
            state32[name] = uniform(*t.shape, low=0.8, high=1.2) if name.endswith("weight") else uniform(*t.shape, low=-0.1, high=0.1)
        else:   # conv / linear: weights of variance 1 / fan_in (keeps activations O(1)), small biases
            weight = model.state_dict()[name.rsplit(".", 1)[0] + ".weight"]
            fan_in = weight[0].numel()
            bound = (3 / fan_in) ** 0.5 if name.endswith("weight") else (1 / fan_in) ** 0.5
            state32[name] = uniform(*t.shape, low=-bound, high=bound)
    model.load_state_dict({k: (v.double() if v.is_floating_point() else v) for k, v in state32.items()})
    model.eval()
    modules = dict(model.named_modules())

    x32 = uniform(N, C, S, S)
    x = x32.double()
    labels = torch.tensor([s % K for s in range(N)], dtype=torch.int64)

    # Every module's per-sample output shape (what the engine probes with a zero sample).
    shapes, hooks = {}, []
    for name, m in model.named_modules():
        if name:
            hooks.append(m.register_forward_hook(lambda mod, i, o, name=name: shapes.__setitem__(name, list(o.shape[1:]))))
    with torch.no_grad():
        model(torch.zeros(1, C, S, S))
    for h in hooks:
        h.remove()
    layer_list = engine_layers(model, shapes)

    # Margins: float32 rounding must not flip a ReLU or a max-pooling choice (checked on x and on every
    # layer-IG path point below). On the path b + alpha (a - b), two entries of a window share b (the
    # zero input's per-channel constant), so their gap is alpha times that of a and float32 errors in
    # it shrink alike: the pooling margin there is 1e-6 + alpha * 1e-5.
    def check_margins(pre_relus, pooled_inputs, what, pool_margin=1e-5):
        for name, t in pre_relus:
            m = t.abs().min().item()
            assert m > 1e-5, f"{what}: pre-activation of {name} within {m:.2e} of 0; pick another SEED"
        for t in pooled_inputs:
            w = F.unfold(t.reshape(-1, 1, *t.shape[-2:]), kernel_size=2, stride=2)   # [B, 4, windows]
            top = w.sort(dim=1, descending=True).values
            gap = top[:, 0] - top[:, 1]
            # Exact ties come from equal inputs (windows of ReLU'd zeros, on the path the zero input's
            # per-channel constant), equal in float32 too, and both pick the first index.
            close = (gap > 0) & (gap < pool_margin)
            assert not close.any(), f"{what}: a max-pooling window has two near-equal maxima; pick another SEED"

    def internals(xin, replace=None):
        """Pre-ReLU values and the max-pool input of a pass (optionally with a layer replaced)."""
        f = model.features
        with torch.no_grad():
            a0 = f[1](f[0](xin))
            r = f[2](a0)
            if replace and replace[0] == "features.2":
                r = replace[1]
            c = f[4](f[3](r))
            a = f[5](c)
            if replace and replace[0] == "features.5":
                a = replace[1]
            h = model.classifier[0](model.flatten(a))
        return [("features.1", a0), ("features.4", c), ("classifier.0", h)], [r]

    pre, pooled = internals(x)
    check_margins(pre, pooled, "x")

    out = {"x": x32, "labels": labels}
    with torch.no_grad():
        out["logits"] = model(x)
    g_logits = uniform(N, K).double()
    out["g_logits"] = g_logits

    for L in LAYERS:
        layer = modules[L]
        captured = {}

        def keep(mod, i, o):
            captured["a"] = o
        h = layer.register_forward_hook(keep)
        xg = x.clone().requires_grad_(True)
        logits = model(xg)
        h.remove()
        a = captured["a"]
        out[f"act.{L}"] = a
        assert torch.allclose(logits, out["logits"])
        ga = uniform(*a.shape).double()
        out[f"g_act.{L}"] = ga
        out[f"vjp_input.{L}"] = torch.autograd.grad((a * ga).sum(), xg)[0]

        def replaced_pass(values):
            leaf = values.detach().clone().requires_grad_(True)
            h = layer.register_forward_hook(lambda mod, i, o: leaf)
            f = model(x)
            h.remove()
            return f, torch.autograd.grad((f * g_logits).sum(), leaf)[0]

        f_own, grad_own = replaced_pass(a)
        assert torch.allclose(f_own, out["logits"])
        out[f"vjp_logits_own.{L}"] = grad_own
        repl = uniform(*a.shape, low=0.0, high=1.5).double()
        pre, pooled = internals(x, (L, repl))
        check_margins([p for p in pre if L == "features.2" or p[0] == "classifier.0"],
                      pooled if L == "features.2" else [], f"replaced {L}")
        f_repl, grad_repl = replaced_pass(repl)
        out[f"repl_act.{L}"] = repl
        out[f"repl_logits.{L}"] = f_repl
        out[f"vjp_logits_repl.{L}"] = grad_repl

        gc = LayerGradCam(model, layer)
        cam = gc.attribute(x, target=labels)
        out[f"gradcam.{L}.nearest"] = LayerAttribution.interpolate(cam, (S, S), "nearest")
        lig = LayerIntegratedGradients(model, layer)
        attr, delta = lig.attribute(x, target=labels, n_steps=LIG_STEPS, method="gausslegendre",
                                    return_convergence_delta=True)
        summed = attr.sum(dim=1, keepdim=True)
        out[f"lig.{L}.nearest"] = LayerAttribution.interpolate(summed, (S, S), "nearest")
        out[f"lig.{L}.delta"] = delta
        if L == "features.5":
            out[f"gradcam.{L}.bilinear"] = LayerAttribution.interpolate(cam, (S, S), "bilinear")
            out[f"gradcam.{L}.relu"] = LayerAttribution.interpolate(
                gc.attribute(x, target=labels, relu_attributions=True), (S, S), "nearest")
            out[f"lig.{L}.bilinear"] = LayerAttribution.interpolate(summed, (S, S), "bilinear")

        # The layer-IG path (Gauss-Legendre points between the zero input's activations and x's).
        with torch.no_grad():
            base = torch.zeros_like(x)
            hb = layer.register_forward_hook(lambda mod, i, o: captured.__setitem__("b", o))
            model(base)
            hb.remove()
        nodes, _ = np.polynomial.legendre.leggauss(LIG_STEPS)
        for alpha in 0.5 * (1 + nodes):
            point = captured["b"] + float(alpha) * (a.detach() - captured["b"])
            pre, pooled = internals(x, (L, point))
            check_margins([p for p in pre if L == "features.2" or p[0] == "classifier.0"],
                          pooled if L == "features.2" else [], f"layer IG path of {L} at alpha {alpha:.3f}",
                          pool_margin=1e-6 + float(alpha) * 1e-5)

    tensors = {k: (v.detach().to(torch.float32) if v.is_floating_point() else v).contiguous() for k, v in out.items()}
    arch = json.dumps(ARCHITECTURE)
    meta = {"architecture": arch, "layers": json.dumps(layer_list),
            "sizes": json.dumps({"n": N, "channels": C, "size": S, "classes": K, "lig_steps": LIG_STEPS,
                                 "layers": list(LAYERS)}),
            "captum": captum.__version__, "torch": torch.__version__, "numpy": np.__version__,
            "generator": "scripts/golden/layer_golden.py"}
    save_file(tensors, os.path.join(out_dir, "golden.safetensors"), metadata=meta)
    save_file({k: v.contiguous() for k, v in state32.items()}, os.path.join(out_dir, "cnn.safetensors"),
              metadata={"architecture": arch})

    print("layers:", ", ".join(f"{l['name']} {l['shape']}" for l in layer_list))
    for L in LAYERS:
        for key in (f"gradcam.{L}.nearest", f"lig.{L}.nearest"):
            print(f"{key}: max |v| {out[key].abs().max().item():.3g}")
        print(f"lig.{L}.delta", [f"{v:.3g}" for v in out[f"lig.{L}.delta"].tolist()])
    print("logits", out["logits"].tolist())


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "Tests/QuacHostTests/Fixtures/layer-golden")
