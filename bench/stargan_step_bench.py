#!/usr/bin/env python3
"""A StarGAN v2 training step: quac-host's org.quac.stargan-converter against the same networks,
losses and optimizers in PyTorch, on the same threads, measured in one run; time per step and peak
memory (max RSS) of each side.

    bash bench/stargan_step_bench.sh      # builds release, then runs this with the oracle python

One step is QuAC's solver step: the discriminator with latent-style fakes (BCE real + BCE fake + R1 by
double backward) and an Adam update, the same with reference-style fakes, generator + mapping network +
style encoder with the latent-style loss (adversarial + style + cycle), the generator with the
reference-style loss (adding style invariance), then the moving averages of the generating networks.
Adam lr 1e-4 (mapping network 1e-6), betas (0, 0.99), weight decay 1e-4, He-normal weights.

Sizes (SIZES=128,32 by default):
  128: QuAC's configuration for 128x128 images: channels 2^14 / 128 = 128 doubling to 512, style 64,
       latent 16, mapping width 512, 1 input channel, 2 classes, batch 8;
  32:  the demo's (examples/synth-stargan): channels 16 capped at 32, style 16, latent 8, mapping 64.
quac-host: `quac-host train` of a manifest with only the converter to train (random images in
[-1, 1], no validation, samples or intermediate checkpoints; --isolation none so that one process
holds everything), its log's seconds per step (log_every 1); the median of the steps after WARMUP.
PyTorch: the networks of scripts/golden/stargan_golden.py (QuAC's, in float32) in a child process
of this script with torch.set_num_threads(THREADS), the same batch composition, median of the steps
after WARMUP. Peak memory: each child's ru_maxrss from wait4 (the whole process: runtime, libraries,
weights, optimizer states, activations). Environment: THREADS (default nproc), STEPS (timed steps,
default 3 at 128 and 30 at 32), WARMUP (default 1), SIZES.
"""
import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

CONFIGS = {
    128: dict(image_size=128, input_channels=1, num_classes=2, channels=128, max_channels=512, style_dim=64,
              latent_dim=16, mapping_dim=512, batch_size=8),
    32: dict(image_size=32, input_channels=1, num_classes=2, channels=16, max_channels=32, style_dim=16,
             latent_dim=8, mapping_dim=64, batch_size=8),
}
DEFAULT_STEPS = {128: 3, 32: 30}
IMAGES = 32


def median(v):
    v = sorted(v)
    n = len(v)
    return v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])


def run_measured(cmd, **kw):
    """Runs cmd; returns (stdout, stderr, wall seconds, max RSS in MiB) of that child alone."""
    with tempfile.TemporaryFile("w+") as fo, tempfile.TemporaryFile("w+") as fe:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=fo, stderr=fe, text=True, **kw)
        _, status, usage = os.wait4(p.pid, 0)  # (not p.wait(): wait4 gives this child's own rusage)
        p.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        fo.seek(0), fe.seek(0)
        out, err = fo.read(), fe.read()
    if p.returncode != 0:
        sys.stderr.write(err[-4000:])
        raise SystemExit(f"{cmd[0]} exited with {p.returncode}")
    return out, err, wall, usage.ru_maxrss / 1024.0


# ---------------------------------------------------------------------------------------------- PyTorch


def torch_child(size, steps, warmup, threads):
    """The PyTorch side, in its own process so that its peak memory is its own."""
    import torch
    sys.path.insert(0, os.path.join(ROOT, "scripts", "golden"))
    import stargan_golden as sg

    torch.set_num_threads(threads)
    c = CONFIGS[size]
    torch.manual_seed(0)
    nets = dict(generator=sg.Generator(c), mapping_network=sg.MappingNetwork(c), style_encoder=sg.StyleEncoder(c),
                discriminator=sg.Discriminator(c))
    for net in nets.values():
        net.apply(sg.he_init)
    ema = {k: copy.deepcopy(nets[k]) for k in ("generator", "mapping_network", "style_encoder")}
    opt = {k: torch.optim.Adam(v.parameters(), lr=1e-6 if k == "mapping_network" else 1e-4, betas=(0.0, 0.99),
                               weight_decay=1e-4) for k, v in nets.items()}
    n, s = c["batch_size"], c["image_size"]
    images = torch.rand(IMAGES, c["input_channels"], s, s) * 2 - 1
    labels = torch.arange(IMAGES) % 2

    def batch():
        src = torch.randint(0, IMAGES, (n,))
        ref = torch.randint(0, IMAGES, (n,))
        x = images[src].clone()
        return dict(x_real=x, x_ref=images[ref].clone(), x_aug=torch.flip(x, [3]), z_trg=torch.randn(n, c["latent_dim"]),
                    y_org=labels[src], y_trg=labels[ref], flips=torch.tensor([1.0, 0.0, 0.0, 1.0]))

    def reset():
        for o in opt.values():
            o.zero_grad(set_to_none=False)

    def step(b):
        for latent in (True, False):
            loss, _ = sg.d_loss(nets, b, latent)
            reset()
            loss.backward()
            opt["discriminator"].step()
        loss, _ = sg.g_loss(nets, b, True)
        reset()
        loss.backward()
        for k in ("generator", "mapping_network", "style_encoder"):
            opt[k].step()
        loss, _ = sg.g_loss(nets, b, False)
        reset()
        loss.backward()
        opt["generator"].step()
        with torch.no_grad():
            for k, e in ema.items():
                for p, q in zip(nets[k].parameters(), e.parameters()):
                    q.lerp_(p, 1 - 0.999)

    times = []
    for _ in range(warmup + steps):
        b = batch()
        t0 = time.perf_counter()
        step(b)
        times.append(time.perf_counter() - t0)
    params = sum(p.numel() for v in nets.values() for p in v.parameters())
    print(json.dumps({"times": times, "torch": torch.__version__, "parameters": params}))


# ---------------------------------------------------------------------------------------------- quac-host


def host_side(host, size, steps, warmup, threads, tmp):
    from safetensors.numpy import save_file
    import numpy as np

    c = CONFIGS[size]
    rng = np.random.default_rng(0)
    s, ch = c["image_size"], c["input_channels"]
    save_file({"images": rng.uniform(-1, 1, (IMAGES, ch, s, s)).astype(np.float32),
               "labels": (np.arange(IMAGES) % 2).astype(np.int64)}, os.path.join(tmp, f"data-{size}.safetensors"))
    total = warmup + steps
    params = {k: v for k, v in c.items()}
    params.update(seed=0, steps=total, log_every=1, sample_every=0, val_every=0, checkpoint_every=total)
    manifest = {
        "name": f"stargan-step-{size}", "output": f"run-{size}", "seed": 0,
        "data": {"format": "safetensors", "path": f"data-{size}.safetensors", "x": "images", "label": "labels"},
        "classifier": {"plugin": "org.quac.mlp-classifier", "name": "mlp",
                       "params": {"input_shape": [ch, s, s], "num_classes": 2, "hidden": 0}},
        "converter": {"plugin": "org.quac.stargan-converter", "name": "stargan", "params": params,
                      "train": {"data": {"format": "safetensors", "path": f"data-{size}.safetensors", "x": "images",
                                         "label": "labels"}, "seed": 0}},
        "attributors": [],
    }
    with open(os.path.join(tmp, f"pipeline-{size}.json"), "w") as f:
        json.dump(manifest, f)
    shutil.rmtree(os.path.join(tmp, f"run-{size}"), ignore_errors=True)
    env = dict(os.environ, QUAC_PLUGIN_PATH=os.path.join(ROOT, "plugins"), QUAC_ENGINE_THREADS=str(threads))
    _, err, wall, rss = run_measured([host, "train", f"pipeline-{size}.json", "--isolation", "none"], cwd=tmp, env=env)
    per_step = [float(m.group(2)) for m in re.finditer(r"step (\d+)/\d+ \(([0-9.]+) s/step\)", err)]
    if len(per_step) != total:
        sys.stderr.write(err[-4000:])
        raise SystemExit(f"expected {total} step records in quac-host's log, found {len(per_step)}")
    return per_step, wall, rss


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--torch-child":
        torch_child(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
        return
    host = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else os.path.join(ROOT, ".build", "release", "quac-host")
    threads = int(os.environ.get("THREADS", str(os.cpu_count())))
    warmup = int(os.environ.get("WARMUP", "1"))
    sizes = [int(v) for v in os.environ.get("SIZES", "128,32").split(",")]
    tmp = tempfile.mkdtemp(prefix="quac-stargan-step-")
    try:
        for size in sizes:
            steps = int(os.environ.get("STEPS", str(DEFAULT_STEPS.get(size, 10))))
            c = CONFIGS[size]
            print(f"StarGAN v2 training step, {size}x{size}: channels {c['channels']} (cap {c['max_channels']}), style "
                  f"{c['style_dim']}, latent {c['latent_dim']}, mapping {c['mapping_dim']}, batch {c['batch_size']}, "
                  f"threads {threads}; median of {steps} steps after {warmup} warm-up", flush=True)
            ours, ours_wall, ours_rss = host_side(host, size, steps, warmup, threads, tmp)
            out, _, theirs_wall, theirs_rss = run_measured(
                [sys.executable, os.path.abspath(__file__), "--torch-child", str(size), str(steps), str(warmup), str(threads)])
            info = json.loads(out.strip().splitlines()[-1])
            t_ours, t_theirs = median(ours[warmup:]), median(info["times"][warmup:])
            print(f"  quac-host:      {t_ours:8.3f} s/step  (steps {', '.join(f'{v:.3f}' for v in ours)}; whole "
                  f"`quac-host train` {ours_wall:.1f} s)  peak memory {ours_rss:8.1f} MiB")
            print(f"  PyTorch {info['torch']}: {t_theirs:8.3f} s/step  (steps {', '.join(f'{v:.3f}' for v in info['times'])}; "
                  f"whole process {theirs_wall:.1f} s)  peak memory {theirs_rss:8.1f} MiB   ({info['parameters'] / 1e6:.1f}M parameters)")
            ratio, mem = t_theirs / t_ours, ours_rss / theirs_rss
            print(f"  speed ratio (PyTorch s/step / quac-host s/step): {ratio:.2f}x (target: at least 1.5x -> "
                  f"{'met' if ratio >= 1.5 else 'missed'});  memory quac-host / PyTorch: {mem:.2f} (target: at most 1 -> "
                  f"{'met' if mem <= 1 else 'missed'})", flush=True)
    finally:
        if os.environ.get("KEEP"):
            print("  kept", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
