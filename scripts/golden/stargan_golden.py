#!/usr/bin/env python3
"""Golden values of the StarGAN v2 losses (Tests/QuacHostTests/StarGANTests.swift).

Run with Debian's python3-torch (bash scripts/oracle-env.sh sets up ~/.cache/quac-oracle):
    ~/.cache/quac-oracle/bin/python scripts/golden/stargan_golden.py Tests/QuacHostTests/Fixtures/stargan-golden

A tiny configuration (32x32 gray images, channels 4 capped at 8, style 8, latent 4, mapping width 16,
2 classes, batch 3) of QuAC's networks (src/quac/training/stargan.py) with He-normal weights and
perturbed instance-norm affines, in float32, and one batch. PyTorch computes in float64 the loss terms
of QuAC's solver (compute_d_loss with the R1 penalty by double backward, compute_g_loss with the
flipped fake for the style term and the style invariance term in the reference pass) and the gradient
norms of the parameters each pass updates. The file holds the weights as "<network>/<state_dict
name>", the batch as "batch/<name>" and the results as "expected/<term>" (float64).
"""
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

CFG = dict(image_size=32, input_channels=1, num_classes=2, channels=4, max_channels=8, style_dim=8,
           latent_dim=4, mapping_dim=16)


class ResBlk(nn.Module):
    def __init__(self, dim_in, dim_out, normalize=False, downsample=False):
        super().__init__()
        self.normalize, self.downsample, self.learned_sc = normalize, downsample, dim_in != dim_out
        self.conv1 = nn.Conv2d(dim_in, dim_in, 3, 1, 1)
        self.conv2 = nn.Conv2d(dim_in, dim_out, 3, 1, 1)
        if normalize:
            self.norm1 = nn.InstanceNorm2d(dim_in, affine=True)
            self.norm2 = nn.InstanceNorm2d(dim_in, affine=True)
        if self.learned_sc:
            self.conv1x1 = nn.Conv2d(dim_in, dim_out, 1, 1, 0, bias=False)

    def forward(self, x):
        s = self.conv1x1(x) if self.learned_sc else x
        if self.downsample:
            s = F.avg_pool2d(s, 2)
        h = self.norm1(x) if self.normalize else x
        h = self.conv1(F.leaky_relu(h, 0.2))
        if self.downsample:
            h = F.avg_pool2d(h, 2)
        if self.normalize:
            h = self.norm2(h)
        h = self.conv2(F.leaky_relu(h, 0.2))
        return (s + h) / math.sqrt(2)


class AdaIN(nn.Module):
    def __init__(self, style_dim, c):
        super().__init__()
        self.norm = nn.InstanceNorm2d(c, affine=False)
        self.fc = nn.Linear(style_dim, 2 * c)

    def forward(self, x, s):
        h = self.fc(s).view(s.size(0), -1, 1, 1)
        gamma, beta = torch.chunk(h, 2, dim=1)
        return (1 + gamma) * self.norm(x) + beta


class AdainResBlk(nn.Module):
    def __init__(self, dim_in, dim_out, style_dim, upsample=False):
        super().__init__()
        self.upsample, self.learned_sc = upsample, dim_in != dim_out
        self.conv1 = nn.Conv2d(dim_in, dim_out, 3, 1, 1)
        self.conv2 = nn.Conv2d(dim_out, dim_out, 3, 1, 1)
        self.norm1 = AdaIN(style_dim, dim_in)
        self.norm2 = AdaIN(style_dim, dim_out)
        if self.learned_sc:
            self.conv1x1 = nn.Conv2d(dim_in, dim_out, 1, 1, 0, bias=False)

    def forward(self, x, s):
        h = F.leaky_relu(self.norm1(x, s), 0.2)
        if self.upsample:
            h = F.interpolate(h, scale_factor=2, mode="nearest")
        h = self.conv2(F.leaky_relu(self.norm2(self.conv1(h), s), 0.2))
        sc = F.interpolate(x, scale_factor=2, mode="nearest") if self.upsample else x
        if self.learned_sc:
            sc = self.conv1x1(sc)
        return (h + sc) / math.sqrt(2)


class Generator(nn.Module):
    def __init__(self, c):
        super().__init__()
        dim_in = c["channels"]
        self.from_rgb = nn.Conv2d(c["input_channels"], dim_in, 3, 1, 1)
        self.encode, self.decode = nn.ModuleList(), nn.ModuleList()
        self.to_rgb = nn.Sequential(nn.InstanceNorm2d(dim_in, affine=True), nn.LeakyReLU(0.2),
                                    nn.Conv2d(dim_in, c["input_channels"], 1, 1, 0))
        dim_out = dim_in
        for _ in range(max(int(math.log2(c["image_size"])) - 4, 0)):
            dim_out = min(dim_in * 2, c["max_channels"])
            self.encode.append(ResBlk(dim_in, dim_out, normalize=True, downsample=True))
            self.decode.insert(0, AdainResBlk(dim_out, dim_in, c["style_dim"], upsample=True))
            dim_in = dim_out
        for _ in range(2):
            self.encode.append(ResBlk(dim_out, dim_out, normalize=True))
            self.decode.insert(0, AdainResBlk(dim_out, dim_out, c["style_dim"]))

    def forward(self, x, s):
        x = self.from_rgb(x)
        for b in self.encode:
            x = b(x)
        for b in self.decode:
            x = b(x, s)
        return torch.tanh(self.to_rgb(x))


def pick(out, y):
    return out[torch.arange(y.size(0)), y]


class MappingNetwork(nn.Module):
    def __init__(self, c):
        super().__init__()
        m = c["mapping_dim"]
        layers = [nn.Linear(c["latent_dim"], m), nn.ReLU()]
        for _ in range(3):
            layers += [nn.Linear(m, m), nn.ReLU()]
        self.shared = nn.Sequential(*layers)
        self.unshared = nn.ModuleList([nn.Sequential(nn.Linear(m, m), nn.ReLU(), nn.Linear(m, m), nn.ReLU(),
                                                     nn.Linear(m, m), nn.ReLU(), nn.Linear(m, c["style_dim"]))
                                       for _ in range(c["num_classes"])])

    def forward(self, z, y):
        h = self.shared(z)
        return pick(torch.stack([u(h) for u in self.unshared], dim=1), y)


def trunk(c):
    dim_in = c["channels"]
    blocks = [nn.Conv2d(c["input_channels"], dim_in, 3, 1, 1)]
    dim_out = dim_in
    for _ in range(int(math.log2(c["image_size"])) - 2):
        dim_out = min(dim_in * 2, c["max_channels"])
        blocks.append(ResBlk(dim_in, dim_out, downsample=True))
        dim_in = dim_out
    blocks += [nn.LeakyReLU(0.2), nn.Conv2d(dim_out, dim_out, 4, 1, 0), nn.LeakyReLU(0.2)]
    return blocks, dim_out


class StyleEncoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        blocks, d = trunk(c)
        self.shared = nn.Sequential(*blocks)
        self.unshared = nn.ModuleList([nn.Linear(d, c["style_dim"]) for _ in range(c["num_classes"])])

    def forward(self, x, y):
        h = self.shared(x).view(x.size(0), -1)
        return pick(torch.stack([u(h) for u in self.unshared], dim=1), y)


class Discriminator(nn.Module):
    def __init__(self, c):
        super().__init__()
        blocks, d = trunk(c)
        self.main = nn.Sequential(*blocks, nn.Conv2d(d, c["num_classes"], 1, 1, 0))

    def forward(self, x, y):
        return pick(self.main(x).view(x.size(0), -1), y)


def he_init(m):
    if isinstance(m, (nn.Conv2d, nn.Linear)):
        nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
        if m.bias is not None:
            nn.init.constant_(m.bias, 0)


def adv_loss(logits, target):
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, float(target)))


def r1_reg(d_out, x_in):
    g = torch.autograd.grad(d_out.sum(), x_in, create_graph=True, retain_graph=True)[0]
    return 0.5 * g.pow(2).view(x_in.size(0), -1).sum(1).mean(0)


def d_loss(nets, b, latent):
    x = b["x_real"].clone().requires_grad_()
    out = nets["discriminator"](x, b["y_org"])
    real = adv_loss(out, 1)
    reg = r1_reg(out, x)
    with torch.no_grad():
        s = nets["mapping_network"](b["z_trg"], b["y_trg"]) if latent else nets["style_encoder"](b["x_ref"], b["y_trg"])
        fake = nets["generator"](b["x_real"], s)
    fk = adv_loss(nets["discriminator"](fake, b["y_trg"]), 0)
    total = real + fk + reg
    return total, dict(real=real, fake=fk, reg=reg, total=total)


def g_loss(nets, b, latent):
    x = b["x_real"]
    s_trg = nets["mapping_network"](b["z_trg"], b["y_trg"]) if latent else nets["style_encoder"](b["x_ref"], b["y_trg"])
    x_fake = nets["generator"](x, s_trg)
    adv = adv_loss(nets["discriminator"](x_fake, b["y_trg"]), 1)
    fl = b["flips"][0:2] if latent else b["flips"][2:4]
    seen = x_fake
    if fl[0] > 0:
        seen = torch.flip(seen, [3])
    if fl[1] > 0:
        seen = torch.flip(seen, [2])
    sty = torch.mean(torch.abs(nets["style_encoder"](seen, b["y_trg"]) - s_trg))
    s_org = nets["style_encoder"](x, b["y_org"])
    cyc = torch.mean(torch.abs(nets["generator"](x_fake, s_org) - x))
    if not latent:
        sty2 = torch.mean(torch.abs(nets["style_encoder"](b["x_aug"], b["y_org"]) - s_org))
        sty = (sty + sty2) / 2
    total = adv + sty + cyc
    return total, dict(adv=adv, sty=sty, cyc=cyc, total=total)


def grad_norm(loss, params):
    gs = torch.autograd.grad(loss, params, allow_unused=True)
    return torch.sqrt(sum((g.pow(2).sum() for g in gs if g is not None), torch.zeros((), dtype=torch.float64)))


def main(out_dir):
    torch.manual_seed(3)
    c = CFG
    nets = dict(generator=Generator(c), mapping_network=MappingNetwork(c), style_encoder=StyleEncoder(c),
                discriminator=Discriminator(c))
    tensors = {}
    for name, net in nets.items():
        net.apply(he_init)
        with torch.no_grad():
            for pn, p in net.named_parameters():
                if p.dim() == 1 and ("norm" in pn or pn.startswith("to_rgb.0")):
                    p.add_(0.1 * torch.randn_like(p))  # exercise the instance-norm affines
        for pn, p in net.state_dict().items():
            tensors[f"{name}/{pn}"] = p.detach().float().contiguous().clone()
    n, s = 3, c["image_size"]
    batch = dict(x_real=torch.rand(n, 1, s, s) * 2 - 1, x_ref=torch.rand(n, 1, s, s) * 2 - 1,
                 z_trg=torch.randn(n, c["latent_dim"]), y_org=torch.tensor([0, 1, 1]), y_trg=torch.tensor([1, 0, 1]),
                 flips=torch.tensor([1.0, 0.0, 0.0, 1.0]))
    batch["x_aug"] = torch.flip(batch["x_real"], [3])
    for k, v in batch.items():
        tensors[f"batch/{k}"] = v.float().contiguous().clone()
    nets = {k: v.double() for k, v in nets.items()}
    b = {k: (v.double() if v.is_floating_point() else v) for k, v in batch.items()}
    expected = {}
    for latent in (True, False):
        p = "d_latent" if latent else "d_ref"
        total, terms = d_loss(nets, b, latent)
        for k, v in terms.items():
            expected[f"{p}.{k}"] = v.item()
        expected[f"{p}.grad_norm"] = grad_norm(total, list(nets["discriminator"].parameters())).item()
    for latent in (True, False):
        p = "g_latent" if latent else "g_ref"
        total, terms = g_loss(nets, b, latent)
        for k, v in terms.items():
            expected[f"{p}.{k}"] = v.item()
        upd = ["generator", "mapping_network", "style_encoder"] if latent else ["generator"]
        expected[f"{p}.grad_norm"] = grad_norm(total, [q for u in upd for q in nets[u].parameters()]).item()
    for k, v in expected.items():
        tensors[f"expected/{k}"] = torch.tensor([v], dtype=torch.float64)
        print(f"{k} = {v:.8f}")
    os.makedirs(out_dir, exist_ok=True)
    save_file(tensors, os.path.join(out_dir, "losses.safetensors"),
              metadata={"config": str(CFG), "script": "scripts/golden/stargan_golden.py"})


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "Tests/QuacHostTests/Fixtures/stargan-golden")
