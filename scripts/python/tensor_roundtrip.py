#!/usr/bin/env python3
"""Cross-checks quac-host's safetensors and NPY I/O against numpy and the safetensors library.

    tensor_roundtrip.py write DIR   write reference files with numpy/safetensors, plus DIR/expected.json
                                    (per tensor: dtype, shape, little-endian C-order bytes as hex, their
                                    sha256, and the values when all are finite)
    tensor_roundtrip.py check DIR   load the files Swift wrote into DIR (same names, from the bytes in
                                    expected.json) and compare them with the same cases; exits 1 listing
                                    every mismatch

Run by Tests/QuacCoreTests/PythonRoundTripTests.swift (needs numpy and safetensors).
"""
import hashlib
import json
import os
import struct
import sys

import numpy as np
import numpy.lib.format as npformat
import safetensors
import safetensors.numpy

# numpy dtype -> safetensors dtype string (numpy has no bfloat16, so BF16 is tested in Swift only).
ST_DTYPE = {
    "float64": "F64", "float32": "F32", "float16": "F16",
    "int64": "I64", "int32": "I32", "int16": "I16", "int8": "I8",
    "uint64": "U64", "uint32": "U32", "uint16": "U16", "uint8": "U8",
    "bool": "BOOL",
}


def sample(dtype):
    """A few values per dtype that exercise its edges (extremes, signs, specials, subnormals)."""
    dt = np.dtype(dtype)
    if dt.kind == "f":
        info = np.finfo(dt)
        return np.array([0.0, -0.0, 1.5, -2.25, float(info.max), float(info.tiny) / 4, np.inf, -np.inf, np.nan],
                        dtype=dt)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        return np.array([0, 1, info.max, info.min, info.max // 3, 7], dtype=dt)
    return np.array([True, False, False, True, True], dtype=dt)


def safetensors_cases():
    dtypes = {f"t_{name}": sample(name) for name in ST_DTYPE}
    dtypes["t_float32_2d"] = np.arange(12, dtype=np.float32).reshape(3, 4) / 8
    shapes = {
        "scalar": np.array(3.25, dtype=np.float32),
        "scalar_i64": np.array(-9, dtype=np.int64),
        "empty": np.zeros((0, 3), dtype=np.float32),
        "empty_u8": np.zeros((2, 0), dtype=np.uint8),
        "image": (np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5) - 60) / 7,
    }
    return {
        "dtypes.safetensors": (dtypes, {"arch": '{"layers": [1, 2]}', "note": "unicode \u00e9\u2713"}),
        "shapes.safetensors": (shapes, None),
    }


def npy_cases():
    """file -> (array, how it is written by `write`: 'save', 'fortran', or an explicit version)."""
    cases = {f"{name}.npy": (sample(name), "save") for name in ST_DTYPE}
    image = (np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5) - 60) / 7
    cases.update({
        "scalar.npy": (np.array(2.5, dtype=np.float64), "save"),
        "empty.npy": (np.zeros((3, 0, 2), dtype=np.int32), "save"),
        "image4d.npy": (image, "save"),
        "fortran2d.npy": (np.arange(12, dtype=np.int32).reshape(3, 4), "fortran"),
        "fortran4d.npy": (image, "fortran"),
        "v2.npy": (np.arange(10, dtype=np.int16).reshape(2, 5), (2, 0)),
        "v3.npy": (np.arange(6, dtype=np.float64).reshape(3, 2) - 2.5, (3, 0)),
        "big_endian_f4.npy": (sample("float32").astype(">f4"), "save"),
        "big_endian_i8.npy": (sample("int64").astype(">i8"), "save"),
        "big_endian_f2.npy": (sample("float16").astype(">f2"), "save"),
    })
    return cases


def little_endian(a):
    return np.ascontiguousarray(a.astype(a.dtype.newbyteorder("<")))


def describe(a):
    le = little_endian(a)
    raw = le.tobytes()
    entry = {
        "dtype": ST_DTYPE[le.dtype.name],
        "shape": list(a.shape),
        "hex": raw.hex(),
        "sha256": hashlib.sha256(raw).hexdigest(),
        "values": None,
    }
    flat = le.ravel()
    if le.dtype.kind != "f" or np.all(np.isfinite(flat)):
        entry["values"] = [int(v) if le.dtype.kind in "iub" else float(v) for v in flat.tolist()]
    return entry


def header_of(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return n, json.loads(f.read(n))


def write(out):
    os.makedirs(out, exist_ok=True)
    expected = {"safetensors": [], "npy": []}
    for file, (tensors, metadata) in safetensors_cases().items():
        path = os.path.join(out, file)
        safetensors.numpy.save_file(tensors, path, metadata=metadata)
        _, header = header_of(path)
        order = sorted((k for k in header if k != "__metadata__"), key=lambda k: header[k]["data_offsets"])
        expected["safetensors"].append({
            "file": file,
            "metadata": metadata or {},
            "order": order,
            "tensors": [dict(name=name, **describe(tensors[name])) for name in order],
        })
    for file, (array, how) in npy_cases().items():
        path = os.path.join(out, file)
        if how == "save":
            np.save(path, array)
        elif how == "fortran":
            np.save(path, np.asfortranarray(array))
            assert np.load(path).flags.f_contiguous
        else:
            with open(path, "wb") as f:
                npformat.write_array(f, array, version=how)
        expected["npy"].append({"file": file, "tensor": describe(array)})
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
    print(f"wrote {len(expected['safetensors'])} safetensors and {len(expected['npy'])} NPY files to {out}")


def same(actual, wanted):
    """Same dtype (byte order aside), shape and bits."""
    a, w = little_endian(actual), little_endian(wanted)
    if a.dtype != w.dtype:
        return f"dtype {a.dtype}, expected {w.dtype}"
    if a.shape != w.shape:
        return f"shape {a.shape}, expected {w.shape}"
    if a.tobytes() != w.tobytes():
        return f"values {a.ravel()[:8].tolist()}..., expected {w.ravel()[:8].tolist()}..."
    return None


def check(folder):
    problems = []
    for file, (tensors, metadata) in safetensors_cases().items():
        path = os.path.join(folder, file)
        try:
            loaded = safetensors.numpy.load_file(path)
            with safetensors.safe_open(path, framework="np") as f:
                got_metadata = f.metadata() or {}
            header_length, header = header_of(path)
        except Exception as e:  # report every unreadable file, not just the first
            problems.append(f"{file}: cannot load: {e}")
            continue
        if header_length % 8:
            problems.append(f"{file}: header length {header_length} is not a multiple of 8")
        if got_metadata != (metadata or {}):
            problems.append(f"{file}: metadata {got_metadata}, expected {metadata or {}}")
        if set(loaded) != set(tensors):
            problems.append(f"{file}: tensors {sorted(loaded)}, expected {sorted(tensors)}")
        for name in sorted(set(loaded) & set(tensors)):
            why = same(loaded[name], tensors[name])
            if why:
                problems.append(f"{file}: tensor {name!r}: {why}")
    for file, (array, _) in npy_cases().items():
        path = os.path.join(folder, file)
        try:
            with open(path, "rb") as f:
                version = npformat.read_magic(f)
                read_header = npformat.read_array_header_1_0 if version == (1, 0) else npformat.read_array_header_2_0
                _, fortran, _ = read_header(f)
                data_offset = f.tell()
            loaded = np.load(path, allow_pickle=False)
        except Exception as e:
            problems.append(f"{file}: cannot load: {e}")
            continue
        if version != (1, 0):
            problems.append(f"{file}: version {version}, expected (1, 0)")
        if fortran:
            problems.append(f"{file}: fortran_order is True, expected C order")
        if data_offset % 64:
            problems.append(f"{file}: data starts at byte {data_offset}, not a multiple of 64")
        why = same(loaded, array)
        if why:
            problems.append(f"{file}: {why}")
    if problems:
        print("\n".join(problems), file=sys.stderr)
        sys.exit(1)
    print(f"ok: {len(safetensors_cases())} safetensors and {len(npy_cases())} NPY files match")


def main(argv):
    if len(argv) != 3 or argv[1] not in ("write", "check"):
        print(__doc__, file=sys.stderr)
        return 2
    (write if argv[1] == "write" else check)(argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
