#!/usr/bin/env python3
"""Fixtures for the native reader of PyTorch checkpoints (torch.save files, read without Python).

Run with the oracle environment (bash scripts/oracle-env.sh sets up ~/.cache/quac-oracle, torch 1.13):
    ~/.cache/quac-oracle/bin/python scripts/golden/torch_checkpoint_golden.py \
        Tests/QuacHostTests/Fixtures/torch-checkpoints

Everything is drawn from fixed seeds, and rerunning writes byte-identical files. Writes:
- dtypes.pt: torch.save (zip format, pickle protocol 2) of a dict with
    "f32" float32 [2,3], "f16" float16 [4], "bf16" bfloat16 [2,2], "f64" float64 [3],
    "i64" int64 [5] (negative values included),
    "transposed" = a float32 [3,4] tensor's .t() (shape [4,3], stride (1,4), saved as is),
    "shared_a" = base[2:6], "shared_b" = base[4:12].view(2,4), "strided" = base[::3], all three views of
        ONE storage (base = torch.arange(12.), float32): storage offsets 2 / 4 / 0, strides (1,) /
        (4,1) / (3,), one storage record,
    "nested" = {"inner": {"w": float32 [2,2]}, "list": [float32 [2], float32 [1]]},
    "scalar" = a 0-d float32 tensor (3.5), "count" = 7, "name" = "abc", "ratio" = 0.25,
    "flag" = True, "nothing" = None, "pair" = (1, 2).
- dtypes-expected.safetensors: every tensor leaf of that dict, contiguous, in its own dtype, keyed by its
  path with "/" between levels and list indices as elements ("f32", "transposed", "shared_b",
  "nested/inner/w", "nested/list/0", "scalar" with shape []). __metadata__["non_tensor_leaves"] is a JSON
  object of the other leaves ({"count": 7, "name": "abc", ..., "pair": [1, 2]}; "pair" is a tuple).
- dtypes-legacy.pt: the same dict saved with _use_new_zipfile_serialization=False (the pre-1.6 format:
  magic pickle, protocol pickle, sys-info pickle, main pickle, storage-key list pickle, then each
  storage as an int64 element count and its raw bytes). torch names legacy storages by their memory
  address; this script renames them "0", "1", ... in order of first use (and orders the raw storages like
  the new key list) so that the file is deterministic. Nothing else is changed and torch.load reads it.
- hostile.pt, hostile-eval.pt: {"w": torch.ones(2), "evil": Evil()} where Evil.__reduce__ returns
  (os.system, ("touch hostile-marker",)) (pickled as the global "posix system") or
  (builtins.eval, ("1+1",)) (protocol 2 writes it as the global "__builtin__ eval"). A reader must refuse
  them.
  NEVER load these two files with torch.load or pickle.load (this script never does): unpickling
  runs the call.
- cnn.pt: torch.save(model.state_dict()) of QuAC's Vgg2D as org.quac.cnn-classifier's "vgg" preset
  builds it (Sources/Plugins/EngineModels/CNNArchitecture.swift) for input_shape [1,16,16], channels
  [4,8], fc [16], num_classes 3, dropout 0:
    features   = Sequential(Conv2d(1,4,3,padding=1), BatchNorm2d(4), ReLU(), Conv2d(4,4,3,padding=1),
                            BatchNorm2d(4), ReLU(), MaxPool2d(2), Conv2d(4,8,3,padding=1), BatchNorm2d(8),
                            ReLU(), Conv2d(8,8,3,padding=1), BatchNorm2d(8), ReLU(), MaxPool2d(2))  # [8,4,4]
    flatten    = x.view(N, -1)                                                                   # [128]
    classifier = Sequential(Linear(128,16), ReLU(), Dropout(0), Linear(16,3))
  Kaiming-normal weights (fan_in, ReLU gain) and 0.1 * N(0,1) biases, drawn batch norm affines and
  running statistics (running_var in [0.5, 1.5), num_batches_tracked = 100, eps 1e-5), all float32
  (num_batches_tracked int64 0-d). The logits spread over several units, so a wrong layer shows.
- cnn-expected.safetensors: "x" float32 [4,1,16,16] uniform in [-1,1], "logits" float32 [4,3] =
  model.eval()(x) computed in float64 (on a .double() copy) and rounded to float32.
- stargan-ema.pt: torch.save({"generator": G.state_dict(), "mapping_network": M.state_dict(),
  "style_encoder": S.state_dict()}) as QuAC's solver saves its EMA networks, for the tiny configuration of
  scripts/golden/stargan_golden.py (its CFG: 32x32 gray, 2 classes, channels 4 capped at 8, style 8,
  latent 4, mapping width 16) built with that script's classes (imported from it) and its init (He normal
  weights, zero biases, instance-norm affines perturbed by 0.1 * N(0,1)), float32, eval mode.
- stargan-expected.safetensors: "x" float32 [2,1,32,32] in [-1,1], "y" int64 [2] = [1, 0] (target
  classes), "z" float32 [2,4] ~ N(0,1), "mapping" = M(z, y) [2,8], "style" = S(x, y) [2,8],
  "generated" = G(x, M(z, y)) [2,1,32,32], computed in float64 (on .double() copies, from the float32
  inputs) and stored as float32. __metadata__ holds the configuration (image_size, input_channels,
  num_classes, channels, max_channels, style_dim, latent_dim, mapping_dim) as decimal strings.
"""
import builtins
import copy
import importlib.util
import io
import json
import os
import pickle
import pickletools
import struct
import sys

import torch
import torch.nn as nn
from safetensors.torch import save as safetensors_bytes

HERE = os.path.dirname(os.path.abspath(__file__))


def save_file(tensors, path, metadata):
    """safetensors.torch.save_file with the __metadata__ keys sorted (the library writes them in hash-map
    order, which changes from run to run), so that reruns are byte-identical."""
    raw = safetensors_bytes(tensors, metadata=metadata)
    n, = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    assert len(text) == n
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", n) + text + raw[8 + n:])


def load_stargan_module():
    spec = importlib.util.spec_from_file_location("stargan_golden", os.path.join(HERE, "stargan_golden.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ---------------------------------------------------------------------------------------------- dtypes


def dtypes_dict():
    g = torch.Generator().manual_seed(11)
    base = torch.arange(12.0)
    t = torch.randn(3, 4, generator=g)
    return {
        "f32": torch.randn(2, 3, generator=g),
        "f16": torch.randn(4, generator=g).to(torch.float16),
        "bf16": torch.randn(2, 2, generator=g).to(torch.bfloat16),
        "f64": torch.randn(3, generator=g, dtype=torch.float64),
        "i64": torch.tensor([-3, 0, 5, -9_000_000_000, 2**40 + 1], dtype=torch.int64),
        "transposed": t.t(),
        "shared_a": base[2:6],
        "shared_b": base[4:12].view(2, 4),
        "strided": base[::3],
        "nested": {"inner": {"w": torch.randn(2, 2, generator=g)},
                   "list": [torch.randn(2, generator=g), torch.randn(1, generator=g)]},
        "scalar": torch.tensor(3.5),
        "count": 7,
        "name": "abc",
        "ratio": 0.25,
        "flag": True,
        "nothing": None,
        "pair": (1, 2),
    }


def flatten_leaves(obj, prefix, tensors, others):
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj.detach().contiguous().clone()
    elif isinstance(obj, dict):
        for k, v in obj.items():
            flatten_leaves(v, f"{prefix}/{k}" if prefix else str(k), tensors, others)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            flatten_leaves(v, f"{prefix}/{i}", tensors, others)
    else:
        others[prefix] = list(obj) if isinstance(obj, tuple) else obj


def legacy_canonicalize(raw):
    """Renames the storages of a legacy torch.save file ("<address>") to "0", "1", ... in order of first
    use in the main pickle, and writes the raw storages in the order of the new sorted key list."""
    f = io.BytesIO(raw)
    heads = []
    for _ in range(3):  # magic number, protocol version, sys info
        start = f.tell()
        pickle.load(f)  # plain ints and a dict of ints/bools
        heads.append(raw[start:f.tell()])
    main_start = f.tell()
    ops = list(pickletools.genops(f))
    main_end = f.tell()
    keys_start = main_end
    old_keys = pickle.load(f)  # a list of str
    keys_end = f.tell()
    assert all(isinstance(k, str) for k in old_keys)
    # the keys in order of first use: the persistent ids are ('storage', <T>Storage, key, location, numel, None)
    ops_key_order = []
    for op, arg, pos in ops:
        if op.name == "BINUNICODE" and arg in old_keys and arg not in ops_key_order:
            ops_key_order.append(arg)
    assert sorted(ops_key_order) == sorted(old_keys), (ops_key_order, old_keys)
    rename = {k: str(i) for i, k in enumerate(ops_key_order)}
    # raw storages, in the file's key order: int64 element count, then count * element size bytes
    elem = element_sizes(ops, old_keys)
    pos = keys_end
    blobs = {}
    for k in old_keys:
        n, = struct.unpack("<q", raw[pos:pos + 8])
        size = 8 + n * elem[k]
        blobs[k] = raw[pos:pos + size]
        pos += size
    assert pos == len(raw), (pos, len(raw))
    # rewrite the main pickle: BINUNICODE 'X' + uint32 length + utf-8
    out = bytearray()
    main = raw[main_start:main_end]
    cursor = 0
    for op, arg, p in ops:
        p -= main_start
        if op.name == "BINUNICODE" and arg in rename:
            out += main[cursor:p]
            b = rename[arg].encode()
            out += b"X" + struct.pack("<I", len(b)) + b
            cursor = p + 1 + 4 + len(arg.encode())
    out += main[cursor:]
    new_keys = sorted(rename.values())
    back = {v: k for k, v in rename.items()}
    keys_pickle = pickle.dumps(new_keys, protocol=2)
    assert raw[keys_start:keys_start + 2] == keys_pickle[:2]
    return b"".join(heads) + bytes(out) + keys_pickle + b"".join(blobs[back[k]] for k in new_keys)


STORAGE_SIZES = {"FloatStorage": 4, "HalfStorage": 2, "BFloat16Storage": 2, "DoubleStorage": 8,
                 "LongStorage": 8, "IntStorage": 4, "ShortStorage": 2, "CharStorage": 1, "ByteStorage": 1,
                 "BoolStorage": 1}


def element_sizes(ops, keys):
    """Maps each storage key to its element size, from the storage type (GLOBAL 'torch <T>Storage', or a
    BINGET of its memoized copy) that precedes the key in its persistent id."""
    sizes, memo, last_type, prev = {}, {}, None, None
    for op, arg, _ in ops:
        if op.name == "GLOBAL":
            mod, name = arg.split(" ")
            if mod == "torch" and name in STORAGE_SIZES:
                last_type = name
        elif op.name in ("BINPUT", "LONG_BINPUT") and prev is not None and prev[0] == "GLOBAL":
            memo[arg] = prev[1].split(" ")[1]
        elif op.name in ("BINGET", "LONG_BINGET") and memo.get(arg) in STORAGE_SIZES:
            last_type = memo[arg]
        elif op.name == "BINUNICODE" and arg in keys and arg not in sizes:
            assert last_type is not None
            sizes[arg] = STORAGE_SIZES[last_type]
        prev = (op.name, arg)
    return sizes


def write_dtypes(out):
    d = dtypes_dict()
    torch.save(d, os.path.join(out, "dtypes.pt"))
    tensors, others = {}, {}
    flatten_leaves(d, "", tensors, others)
    save_file(tensors, os.path.join(out, "dtypes-expected.safetensors"),
              metadata={"non_tensor_leaves": json.dumps(others, sort_keys=True),
                        "script": "scripts/golden/torch_checkpoint_golden.py"})
    buf = io.BytesIO()
    torch.save(d, buf, _use_new_zipfile_serialization=False)
    with open(os.path.join(out, "dtypes-legacy.pt"), "wb") as f:
        f.write(legacy_canonicalize(buf.getvalue()))
    # check both files against the expected leaves (our own files: safe to load)
    for name in ("dtypes.pt", "dtypes-legacy.pt"):
        back = torch.load(os.path.join(out, name))
        bt, bo = {}, {}
        flatten_leaves(back, "", bt, bo)
        assert bt.keys() == tensors.keys() and bo == others, name
        for k, v in tensors.items():
            assert bt[k].dtype == v.dtype and bt[k].shape == v.shape and torch.equal(bt[k], v), (name, k)
        assert back["shared_a"].storage().data_ptr() == back["shared_b"].storage().data_ptr(), name
        assert back["strided"].stride() == (3,) and back["transposed"].stride() == (1, 4), name


# --------------------------------------------------------------------------------------------- hostile


class Evil:
    def __reduce__(self):
        return (os.system, ("touch hostile-marker",))


class EvilEval:
    def __reduce__(self):
        return (builtins.eval, ("1+1",))


def write_hostile(out):
    # Written only, never read back.
    torch.save({"w": torch.ones(2), "evil": Evil()}, os.path.join(out, "hostile.pt"))
    torch.save({"w": torch.ones(2), "evil": EvilEval()}, os.path.join(out, "hostile-eval.pt"))


# ------------------------------------------------------------------------------------------------- cnn


class Vgg2D(nn.Module):
    def __init__(self, input_shape, channels, fc, num_classes, dropout):
        super().__init__()
        layers, c_in = [], input_shape[0]
        h, w = input_shape[1], input_shape[2]
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(),
                       nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU(), nn.MaxPool2d(2)]
            c_in, h, w = c, h // 2, w // 2
        self.features = nn.Sequential(*layers)
        cls, width = [], c_in * h * w
        for units in fc:
            cls += [nn.Linear(width, units), nn.ReLU(), nn.Dropout(dropout)]
            width = units
        cls.append(nn.Linear(width, num_classes))
        self.classifier = nn.Sequential(*cls)

    def forward(self, x):
        h = self.features(x)
        return self.classifier(h.view(h.size(0), -1))


def write_cnn(out):
    torch.manual_seed(5)
    model = Vgg2D([1, 16, 16], [4, 8], [16], 3, 0.0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):  # as the preset's "kaiming_normal", plus drawn biases
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                m.bias.copy_(0.1 * torch.randn_like(m.bias))
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(1 + 0.2 * torch.randn_like(m.weight))
                m.bias.copy_(0.2 * torch.randn_like(m.bias))
                m.running_mean.copy_(0.3 * torch.randn_like(m.running_mean))
                m.running_var.copy_(0.5 + torch.rand_like(m.running_var))
                m.num_batches_tracked.fill_(100)
    model.eval()
    torch.save(model.state_dict(), os.path.join(out, "cnn.pt"))
    x = torch.rand(4, 1, 16, 16) * 2 - 1
    m64 = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        logits = m64(x.double()).float()
    save_file({"x": x.contiguous(), "logits": logits.contiguous()}, os.path.join(out, "cnn-expected.safetensors"),
              metadata={"input_shape": "[1, 16, 16]", "channels": "[4, 8]", "fc": "[16]", "num_classes": "3",
                        "dropout": "0", "script": "scripts/golden/torch_checkpoint_golden.py"})


# --------------------------------------------------------------------------------------------- stargan


def write_stargan(out):
    sg = load_stargan_module()
    c = sg.CFG
    torch.manual_seed(7)
    nets = dict(generator=sg.Generator(c), mapping_network=sg.MappingNetwork(c), style_encoder=sg.StyleEncoder(c))
    for net in nets.values():
        net.apply(sg.he_init)
        with torch.no_grad():  # as stargan_golden.py: exercise the instance-norm affines
            for pn, p in net.named_parameters():
                if p.dim() == 1 and ("norm" in pn or pn.startswith("to_rgb.0")):
                    p.add_(0.1 * torch.randn_like(p))
        net.eval()
    torch.save({k: v.state_dict() for k, v in nets.items()}, os.path.join(out, "stargan-ema.pt"))
    s = c["image_size"]
    x = torch.rand(2, c["input_channels"], s, s) * 2 - 1
    y = torch.tensor([1, 0], dtype=torch.int64)
    z = torch.randn(2, c["latent_dim"])
    d = {k: copy.deepcopy(v).double().eval() for k, v in nets.items()}
    with torch.no_grad():
        mapping = d["mapping_network"](z.double(), y)
        style = d["style_encoder"](x.double(), y)
        generated = d["generator"](x.double(), mapping)
    tensors = dict(x=x, y=y, z=z, mapping=mapping.float(), style=style.float(), generated=generated.float())
    meta = {k: str(c[k]) for k in ("image_size", "input_channels", "num_classes", "channels", "max_channels",
                                   "style_dim", "latent_dim", "mapping_dim")}
    meta["script"] = "scripts/golden/torch_checkpoint_golden.py"
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(out, "stargan-expected.safetensors"),
              metadata=meta)


def main(out):
    os.makedirs(out, exist_ok=True)
    write_dtypes(out)
    write_hostile(out)
    write_cnn(out)
    write_stargan(out)
    for name in sorted(os.listdir(out)):
        print(f"{name}: {os.path.getsize(os.path.join(out, name))} bytes")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "Tests/QuacHostTests/Fixtures/torch-checkpoints")
