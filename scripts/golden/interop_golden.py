#!/usr/bin/env python3
"""Model files and golden values for the two doors into quac-host for a PyTorch classifier
(Tests/QuacHostTests/TorchScriptClassifierTests.swift and OnnxImportTests.swift).

Run with the oracle environment (bash scripts/oracle-env.sh sets up ~/.cache/quac-oracle):
    ~/.cache/quac-oracle/bin/python scripts/golden/interop_golden.py Tests/QuacHostTests/Fixtures/interop

Three small networks, all on 1x32x32 inputs in [-1, 1] with 3 classes, random weights and random
batch-norm statistics drawn from a fixed seed:
- vgg:    QuAC's Vgg2D in its small configuration (channels [8, 16], fc [32, 32], dropout 0.5), with
          its own forward (features, f.view(f.size(0), -1), classifier);
- resnet: a stem and two basic residual blocks (the second strided, with a 1x1 projection shortcut),
          global average pooling and a linear layer;
- unet:   a U-Net-like net: an encoder level, max pooling, instance normalisation and leaky ReLU, a
          transposed convolution back up, concatenation with the skip, explicit padding, a sigmoid
          gate (Mul), a tanh, a constant subtracted (Sub), global pooling and a matrix product (MatMul).

Files written:
- vgg_scripted.pt, vgg_traced.pt: torch.jit.save of the VGG, scripted and traced (for
  org.quac.torchscript-classifier);
- <net>_opset11.onnx, <net>_opset17.onnx: torch.onnx.export at opsets 11 and 17 (the VGG with a
  dynamic batch axis, the others with the batch of the example input);
- unsupported.onnx: a tiny graph with an operator the importer does not offer (Erf);
- Sources/Host/Resources/plugins/org.quac.torchscript-classifier.check.pt: a tiny scripted classifier
  (1x8x8 -> 2) that `quac-host plugins check org.quac.torchscript-classifier` runs when given no
  parameters (the manifest's "check" block names it);
- golden.safetensors: x, x_cf [N, 1, 32, 32], labels, target [N]; then per net:
    <net>_logits          f(x), float64 evaluation of the float32 weights
    <net>_dig             Captum's IntegratedGradients(x, baselines=x_cf, target=labels), 50 steps,
                          gausslegendre (what org.quac.d-integrated-gradients computes), on the PyTorch
                          model as exported (float32). Not float64: on the VGG one Gauss-Legendre point
                          sits next to a ReLU kink, where float32 and float64 take different sides, and
                          both float32 computations (PyTorch's and the engine's) differ from float64
                          there by 2e-3 alike
    vgg_deeplift          DeepLift's rescale rule (Captum's rule for max pooling) against x_cf for the
                          labels on the VGG in float64, applied explicitly layer by layer as
                          scripts/golden/engine_golden.py's deeplift_reference does (Captum 0.7's module
                          hooks miss summation to delta where pooling follows a ReLU): what
                          org.quac.d-deeplift computes on the imported network
  and for the TorchScript door, on the float32 module as the plugin runs it:
    ts_logits             f(x) in float32
    ts_grad_logits        a random [N, 3] cotangent
    ts_vjp                torch.autograd.grad of f(x) with that cotangent, float32
    ts_dig                Captum's D-IG as above on the float32 scripted module
"""
import json
import os
import sys

import captum
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from captum.attr import IntegratedGradients
from safetensors.torch import save_file

N, C, S, K = 4, 1, 32, 3
SEED = 20261205


class Vgg2D(nn.Module):
    """QuAC's Vgg2D layout (features / classifier Sequentials, parameter names as its state dict)."""

    def __init__(self, input_size=(1, 32, 32), channels=(8, 16), fc=(32, 32), output_classes=K, dropout=0.5):
        super().__init__()
        layers, cin = [], input_size[0]
        for cout in channels:
            layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                       nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2)]
            cin = cout
        self.features = nn.Sequential(*layers)
        h, w = input_size[1] // 2 ** len(channels), input_size[2] // 2 ** len(channels)
        head, width = [], cin * h * w
        for units in fc:
            head += [nn.Linear(width, units), nn.ReLU(inplace=True), nn.Dropout(dropout)]
            width = units
        head.append(nn.Linear(width, output_classes))
        self.classifier = nn.Sequential(*head)

    def forward(self, raw):
        f = self.features(raw)
        f = f.view(f.size(0), -1)
        return self.classifier(f)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.shortcut is None else self.shortcut(x)))


class SmallResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(C, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.block1 = BasicBlock(8, 8, 1)
        self.block2 = BasicBlock(8, 16, 2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, K)

    def forward(self, x):
        y = self.block2(self.block1(self.stem(x)))
        return self.fc(torch.flatten(self.pool(y), 1))


class SmallUNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.Sequential(nn.Conv2d(C, 8, 3, padding=1), nn.ReLU())
        self.down = nn.MaxPool2d(2)
        self.mid = nn.Sequential(nn.Conv2d(8, 16, 3), nn.InstanceNorm2d(16, affine=True), nn.LeakyReLU(0.2))
        self.up = nn.ConvTranspose2d(16, 8, 2, stride=2)
        self.dec = nn.Sequential(nn.Conv2d(16, 8, 3, padding=1), nn.ReLU())
        self.gate = nn.Conv2d(8, 8, 1)
        self.head = nn.Parameter(torch.empty(8, K))
        self.head_bias = nn.Parameter(torch.empty(K))
        self.offset = nn.Parameter(torch.empty(1, 8, 1, 1))

    def forward(self, x):
        e = self.enc(x)                                   # 8 x 32 x 32
        m = self.mid(self.down(e))                        # 16 x 14 x 14 (no padding)
        m = F.pad(m, (1, 1, 1, 1))                        # 16 x 16 x 16
        u = self.up(m)                                    # 8 x 32 x 32
        d = self.dec(torch.cat([u, e], dim=1))            # 8 x 32 x 32
        d = d * torch.sigmoid(self.gate(d))               # a sigmoid gate
        d = torch.tanh(d) - self.offset                   # Sub with a constant
        p = torch.flatten(F.adaptive_avg_pool2d(d, 1), 1)  # 8
        return p @ self.head + self.head_bias             # MatMul, Add


def randomize(model, g):
    """Weights drawn uniformly at PyTorch's default scale, batch-norm statistics away from 0 and 1."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            fan_in = p[0].numel() if p.dim() > 1 else 8
            p.copy_((torch.rand(p.shape, generator=g) * 2 - 1) * (3 / fan_in) ** 0.5 * 1.5)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_((torch.rand(m.running_mean.shape, generator=g) - 0.5) * 0.4)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) * 0.8 + 0.6)
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) * 0.8 + 0.6)
                m.bias.copy_((torch.rand(m.bias.shape, generator=g) - 0.5) * 0.4)
    model.eval()
    return model


def dig(model, x, cf, y):
    return IntegratedGradients(model).attribute(x, baselines=cf, target=y, n_steps=50, method="gausslegendre")


def main(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(SEED)
    g = torch.Generator().manual_seed(SEED)
    nets = {"vgg": randomize(Vgg2D(), g), "resnet": randomize(SmallResNet(), g), "unet": randomize(SmallUNet(), g)}
    x = torch.rand((N, C, S, S), generator=g) * 2 - 1
    cf = torch.rand((N, C, S, S), generator=g) * 2 - 1
    y = torch.arange(N) % K
    out = {"x": x, "x_cf": cf, "labels": y, "target": (y + 1) % K}
    example = x[:1]

    for name, net in nets.items():
        for opset in (11, 17):
            dynamic = {"x": {0: "N"}, "logits": {0: "N"}} if name == "vgg" else None
            torch.onnx.export(net, example, os.path.join(out_dir, f"{name}_opset{opset}.onnx"), opset_version=opset,
                              input_names=["x"], output_names=["logits"], dynamic_axes=dynamic,
                              do_constant_folding=True)
        ref = _double_copy(net)
        with torch.no_grad():
            out[f"{name}_logits"] = ref(x.double())
        out[f"{name}_dig"] = dig(net, x, cf, y)

    out["vgg_deeplift"] = _deeplift(nets["vgg"], x, cf, y)

    # The TorchScript door: the VGG scripted and traced, evaluated in float32 as the plugin runs it.
    vgg = nets["vgg"]
    scripted = torch.jit.script(vgg)
    traced = torch.jit.trace(vgg, example)
    torch.jit.save(scripted, os.path.join(out_dir, "vgg_scripted.pt"))
    torch.jit.save(traced, os.path.join(out_dir, "vgg_traced.pt"))
    module = torch.jit.load(os.path.join(out_dir, "vgg_scripted.pt")).eval()
    with torch.no_grad():
        out["ts_logits"] = module(x)
    gl = torch.randn((N, K), generator=g)
    xr = x.clone().requires_grad_(True)
    out["ts_grad_logits"] = gl
    out["ts_vjp"] = torch.autograd.grad(module(xr), xr, gl)[0]
    out["ts_dig"] = dig(module, x, cf, y)

    _unsupported(os.path.join(out_dir, "unsupported.onnx"))
    _check_model(g)

    tensors = {k: (v.detach().to(torch.float32) if v.is_floating_point() else v).contiguous() for k, v in out.items()}
    meta = {"sizes": json.dumps({"n": N, "channels": C, "size": S, "classes": K}),
            "captum": captum.__version__, "torch": torch.__version__, "numpy": np.__version__,
            "generator": "scripts/golden/interop_golden.py"}
    save_file(tensors, os.path.join(out_dir, "golden.safetensors"), metadata=meta)
    for name in nets:
        print(name, "logits", [f"{v:.3f}" for v in out[f"{name}_logits"][0].tolist()],
              "max |dig|", f"{out[f'{name}_dig'].abs().max().item():.3g}")


def _double_copy(net):
    """The same float32 weights evaluated in float64: the exact values the importer should reproduce."""
    import copy
    return copy.deepcopy(net).double().eval()


def _deeplift(net, x, cf, y):
    import copy
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from engine_golden import deeplift_reference
    net = copy.deepcopy(net).double().eval()
    for m in net.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False
    flat = nn.Sequential(*net.features, nn.Flatten(), *net.classifier)
    a = deeplift_reference(flat, x.double(), cf.double(), y)
    with torch.no_grad():
        delta = (flat(x.double()) - flat(cf.double())).gather(1, y[:, None])[:, 0]
    assert (a.flatten(1).sum(1) - delta).abs().max() < 1e-8, "DeepLift's summation to delta"
    return a


class _ErfNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(C, 2, 3, padding=1)
        self.fc = nn.Linear(2, K)

    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(torch.erf(self.conv(x)), 1), 1))


def _unsupported(path):
    net = _ErfNet().eval()
    torch.onnx.export(net, torch.zeros(1, C, S, S), path, opset_version=13, input_names=["x"], output_names=["logits"])


def _check_model(g):
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Tanh(), nn.Flatten(), nn.Linear(2 * 8 * 8, 2))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_((torch.rand(p.shape, generator=g) * 2 - 1) * 0.5)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    torch.jit.save(torch.jit.script(net.eval()),
                   os.path.join(root, "Sources/Host/Resources/plugins/org.quac.torchscript-classifier.check.pt"))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "Tests/QuacHostTests/Fixtures/interop")
