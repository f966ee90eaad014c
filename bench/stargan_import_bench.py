#!/usr/bin/env python3
"""Generation at QuAC's size from a checkpoint made by PyTorch (issue: use what QuAC users have).

Run through bench/stargan_import_bench.sh. Step 1 (`make OUT_DIR`): QuAC's StarGAN networks at full size
for 128x128 gray images (channels 2^14/128 = 128 doubling to a cap of 512, style 64, latent 16, mapping
width 512, 2 classes; the module layout of scripts/golden/stargan_golden.py, which is QuAC's), He-normal
weights, saved as QuAC's solver saves its EMA networks ({"generator", "mapping_network", "style_encoder"}
state dicts in one torch.save file); then PyTorch's own generation speed on this machine (mapping network
+ generator, batches of 8, 2 threads, no grad), as the reference. Prints JSON.
"""
import importlib.util
import json
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("stargan_golden", os.path.join(HERE, "..", "scripts", "golden", "stargan_golden.py"))
sg = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sg)

CFG = dict(image_size=128, input_channels=1, num_classes=2, channels=2 ** 14 // 128, max_channels=512, style_dim=64,
           latent_dim=16, mapping_dim=512)


def make(out_dir, images=16, batch=8):
    torch.manual_seed(0)
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    nets = dict(generator=sg.Generator(CFG), mapping_network=sg.MappingNetwork(CFG), style_encoder=sg.StyleEncoder(CFG))
    for n in nets.values():
        n.apply(sg.he_init)
        n.eval()
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "000000_nets_ema.ckpt")
    torch.save({k: v.state_dict() for k, v in nets.items()}, path)
    g, m = nets["generator"], nets["mapping_network"]
    x = torch.rand(images, 1, 128, 128) * 2 - 1
    y = torch.arange(images) % 2
    with torch.no_grad():
        g(x[:2], m(torch.randn(2, 16), y[:2]))   # warm-up
        start = time.perf_counter()
        for i in range(0, images, batch):
            g(x[i:i + batch], m(torch.randn(min(batch, images - i), 16), y[i:i + batch]))
        seconds = time.perf_counter() - start
    params = sum(p.numel() for n in nets.values() for p in n.parameters())
    print(json.dumps({"checkpoint": path, "config": CFG, "parameters": params, "torch": torch.__version__,
                      "torch_images": images, "torch_seconds": seconds, "torch_images_per_s": images / seconds}))


if __name__ == "__main__":
    make(sys.argv[1])
