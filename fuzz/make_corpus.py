#!/usr/bin/env python3
"""Writes the fuzzers' seed corpora under fuzz/corpus/<target>/: small valid files and a few edge cases.

Standard library only. Run from anywhere: python3 fuzz/make_corpus.py (it rewrites the seed folders)."""
import json
import os
import shutil
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CORPUS = os.path.join(HERE, "corpus")


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


# --- safetensors: u64 LE header length, JSON header, data -------------------------------------------

def safetensors(tensors, metadata=None, pad=0):
    header, blobs, offset = {}, [], 0
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    if metadata is not None:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode() + b" " * pad
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def st_seeds():
    f32 = struct.pack("<6f", *[0.5 * i for i in range(6)])
    put("safetensors", "f32_2x3", safetensors([("x", "F32", [2, 3], f32)]))
    put("safetensors", "multi_meta", safetensors(
        [("a", "I64", [2], struct.pack("<2q", -1, 7)), ("b", "U8", [3], b"\x01\x02\x03"),
         ("c", "F16", [1], b"\x00\x3c"), ("d", "BOOL", [2], b"\x00\x01")],
        metadata={"format": "pt", "note": "seed"}, pad=5))
    # An unaligned tensor (F64 after 3 bytes) and an empty tensor sharing its offset.
    put("safetensors", "unaligned_empty", safetensors(
        [("u", "U8", [3], b"abc"), ("e", "F32", [0, 4], b""), ("f", "F64", [1], struct.pack("<d", 3.25))]))
    put("safetensors", "scalar_bf16", safetensors([("s", "BF16", [], b"\x80\x3f")]))
    put("safetensors", "empty_header", safetensors([]))


# --- NPY: magic, version, header length, dict literal padded to 64, data ----------------------------

def npy(descr, shape, raw, fortran=False, version=1, extra_header=""):
    shape_text = "(" + "".join(f"{d}, " if len(shape) == 1 else f"{d}, " for d in shape).rstrip(", ") + ("," if len(shape) == 1 else "") + ")"
    d = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, %s}" % (descr, "True" if fortran else "False", shape_text, extra_header)
    length_size = 2 if version == 1 else 4
    pad = (-(10 + len(d) + 1 + (length_size - 2))) % 64
    text = (d + " " * pad + "\n").encode("latin-1" if version < 3 else "utf-8")
    return b"\x93NUMPY" + bytes([version, 0]) + struct.pack("<H" if version == 1 else "<I", len(text)) + text + raw


def npy_seeds():
    put("npy", "f4_2x3", npy("<f4", (2, 3), struct.pack("<6f", *range(6))))
    put("npy", "f8_fortran_2x3x2", npy("<f8", (2, 3, 2), struct.pack("<12d", *range(12)), fortran=True))
    put("npy", "i2_bigendian", npy(">i2", (4,), struct.pack(">4h", 1, -2, 300, -400)))
    put("npy", "bool_v2", npy("|b1", (3,), b"\x01\x00\x01", version=2))
    put("npy", "u8_scalar_v3", npy("|u1", (), b"\x07", version=3))
    put("npy", "f2_empty", npy("<f2", (0, 5), b""))
    put("npy", "u4_fortran_big", npy(">u4", (2, 2), struct.pack(">4I", 1, 2, 3, 4), fortran=True))


# --- JSON: documents and schemas (schemas are validated against themselves) ------------------------

def json_seeds():
    put("json", "scalars", '[0, -1, 1.5e300, -0.0, 1E-7, true, false, null, "a\\u00e9\\ud83d\\ude00\\n\\"", 9223372036854775807]')
    put("json", "nested", '{"a": {"b": [1, [2, [3, {}]]], "c": ""}, "d": [], "e": {"f": null}}')
    put("json", "schema_object", json.dumps({
        "type": "object", "required": ["n"], "additionalProperties": False,
        "properties": {"n": {"type": "integer", "minimum": 0, "default": 3},
                       "s": {"type": "string", "pattern": "^[a-z]+$", "minLength": 1, "maxLength": 8},
                       "e": {"enum": ["x", "y", 1]}, "c": {"const": [1, 2]},
                       "l": {"type": "array", "items": {"type": "number"}, "minItems": 1, "uniqueItems": True}}}))
    put("json", "schema_refs", json.dumps({
        "$defs": {"pos": {"type": "integer", "exclusiveMinimum": 0}, "pair": {"type": "array", "prefixItems": [{"$ref": "#/$defs/pos"}, {"type": "string"}]}},
        "anyOf": [{"$ref": "#/$defs/pos"}, {"$ref": "#/$defs/pair"}],
        "oneOf": [{"type": "integer"}, {"type": "array"}], "not": {"const": 0}}))
    put("json", "schema_combinators", json.dumps({
        "type": ["object", "null"], "patternProperties": {"^x-": {"type": "string"}}, "propertyNames": {"maxLength": 10},
        "minProperties": 0, "maxProperties": 4, "dependentRequired": {"a": ["b"]},
        "allOf": [{"if": {"required": ["a"]}, "then": {"properties": {"a": {"multipleOf": 2}}}, "else": True}],
        "contains": {"type": "string"}, "minContains": 1, "maxContains": 2}))
    with open(os.path.join(ROOT, "schemas", "plugin-manifest.schema.json"), "rb") as f:
        put("json", "plugin-manifest.schema", f.read())


# --- pipeline manifests ---------------------------------------------------------------------------

def manifest_seeds():
    for rel in ["examples/toy/pipeline.json", "examples/synth/pipeline.json", "examples/smat/pipeline.json",
                "examples/empirical/pipeline.json", "examples/logic/cells-concept-model.json", "examples/logic/xor.json"]:
        with open(os.path.join(ROOT, rel), "rb") as f:
            put("manifest", rel.replace("examples/", "").replace("/", "_"), f.read())
    put("manifest", "foreign_classifier", json.dumps({
        "name": "ffi", "output": "runs/ffi", "data": {"format": "npy", "x": "x.npy", "label": "y.npy"},
        "classifier": {"foreign": {"library": "libm.so", "symbol": "predict", "num_classes": 2, "input_shape": [3]}},
        "attributors": [{"plugin": "quac.attributions.saliency"}], "scorers": []}))


# --- PNG ------------------------------------------------------------------------------------------

def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png(w, h, depth, color, rows, extra=b"", palette=None, trns=None):
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + extra
    if palette:
        body += chunk(b"PLTE", palette)
    if trns:
        body += chunk(b"tRNS", trns)
    raw = b"".join(b"\x00" + r for r in rows)
    return b"\x89PNG\r\n\x1a\n" + body + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def png_seeds():
    put("png", "gray8_3x2", png(3, 2, 8, 0, [bytes([0, 128, 255]), bytes([1, 2, 3])]))
    put("png", "rgb8_gamma", png(2, 2, 8, 2, [bytes(range(6)), bytes(range(6, 12))], extra=chunk(b"gAMA", struct.pack(">I", 45455))))
    put("png", "rgba16_2x1", png(2, 1, 16, 6, [struct.pack(">8H", 65535, 0, 1000, 32768, 1, 2, 3, 0)]))
    put("png", "palette_trns", png(4, 1, 2, 3, [bytes([0b00011011])], palette=bytes([255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9]), trns=b"\x80"))
    put("png", "gray1_9x1", png(9, 1, 1, 0, [bytes([0b10101010, 0b10000000])]))
    put("png", "graya8_srgb", png(1, 2, 8, 4, [bytes([10, 20]), bytes([30, 255])], extra=chunk(b"sRGB", b"\x00")))
    put("png", "gray16_text", png(1, 1, 16, 0, [b"\x12\x34"], extra=chunk(b"tEXt", b"k\x00v")))


# --- TIFF (little-endian, baseline tags) ----------------------------------------------------------

SHORT, LONG, RATIONAL = 3, 4, 5


def tiff(pages, big_endian=False):
    """pages: list of (tags, blobs) where tags maps tag -> (type, [values]) and the special values
    'STRIPS'/'TILES' in StripOffsets/TileOffsets stand for the offsets of `blobs`."""
    e = ">" if big_endian else "<"
    out = bytearray((b"MM" if big_endian else b"II") + struct.pack(e + "HI", 42, 0))
    first_ifd_at = 4
    prev_link = first_ifd_at
    for tags, blobs in pages:
        offsets = []
        for b in blobs:
            offsets.append(len(out))
            out += b
            if len(out) % 2:
                out += b"\x00"
        tags = dict(tags)
        for t in (273, 324):
            if t in tags and tags[t] == "OFFSETS":
                tags[t] = (LONG, offsets)
        for t in (279, 325):
            if t in tags and tags[t] == "COUNTS":
                tags[t] = (LONG, [len(b) for b in blobs])
        # Out-of-line values first, then the IFD.
        entries = []
        for tag in sorted(tags):
            typ, vals = tags[tag]
            size = {SHORT: 2, LONG: 4, RATIONAL: 8}[typ]
            if typ == RATIONAL:
                packed = b"".join(struct.pack(e + "II", n, d) for n, d in vals)
            else:
                packed = b"".join(struct.pack(e + ("H" if typ == SHORT else "I"), v) for v in vals)
            if len(packed) <= 4:
                entries.append(struct.pack(e + "HHI", tag, typ, len(vals)) + packed.ljust(4, b"\x00"))
            else:
                at = len(out)
                out += packed
                entries.append(struct.pack(e + "HHII", tag, typ, len(vals), at))
            assert size
        if len(out) % 2:
            out += b"\x00"
        ifd_at = len(out)
        struct.pack_into(e + "I", out, prev_link, ifd_at)
        out += struct.pack(e + "H", len(entries)) + b"".join(entries)
        prev_link = len(out)
        out += struct.pack(e + "I", 0)
    return bytes(out)


def strip_tags(w, h, spp, bps, photometric, fmt=1, planar=1, compression=1, rps=None):
    return {256: (LONG, [w]), 257: (LONG, [h]), 258: (SHORT, [bps] * spp), 259: (SHORT, [compression]),
            262: (SHORT, [photometric]), 273: "OFFSETS", 277: (SHORT, [spp]), 278: (LONG, [rps or h]),
            279: "COUNTS", 282: (RATIONAL, [(72, 1)]), 283: (RATIONAL, [(72, 1)]), 284: (SHORT, [planar]),
            296: (SHORT, [2]), 339: (SHORT, [fmt] * spp)}


def tiff_seeds():
    put("tiff", "gray8_4x2", tiff([(strip_tags(4, 2, 1, 8, 1), [bytes(range(0, 256, 32))])]))
    put("tiff", "gray8_miniswhite_2strips", tiff([(strip_tags(2, 2, 1, 8, 0, rps=1), [b"\x00\x10", b"\x20\xff"])]))
    put("tiff", "rgb16_big_endian", tiff([(strip_tags(2, 1, 3, 16, 2), [struct.pack(">6H", 0, 1, 2, 65535, 4, 5)])], big_endian=True))
    put("tiff", "float32_deflate", tiff([(strip_tags(2, 2, 1, 32, 1, fmt=3, compression=8), [zlib.compress(struct.pack("<4f", 0, 0.25, 0.5, 1))])]))
    put("tiff", "rgb8_planar", tiff([(strip_tags(2, 1, 3, 8, 2, planar=2), [b"\x01\x02", b"\x03\x04", b"\x05\x06"])]))
    tiled = strip_tags(20, 17, 1, 8, 1)
    for t in (273, 278, 279):
        del tiled[t]
    tiled.update({322: (LONG, [16]), 323: (LONG, [16]), 324: "OFFSETS", 325: "COUNTS"})
    put("tiff", "gray8_tiled", tiff([(tiled, [bytes([i % 256] * 256) for i in range(4)])]))
    palette = strip_tags(2, 2, 1, 4, 3)
    palette[320] = (SHORT, [i * 4369 for i in range(16)] * 3)
    put("tiff", "palette4_two_pages", tiff([(palette, [b"\x01\x23"]), (strip_tags(1, 1, 1, 8, 1), [b"\x80"])]))
    put("tiff", "rgba8_extrasample", tiff([({**strip_tags(1, 2, 4, 8, 2), 338: (SHORT, [2])}, [bytes(range(8))])]))
    put("tiff", "float16_gray", tiff([(strip_tags(2, 1, 1, 16, 1, fmt=3), [struct.pack("<2H", 0x3C00, 0x3800)])]))


# --- PyTorch checkpoints: the test fixtures that are small enough (zip and legacy formats) -----------

def torch_seeds():
    fixtures = os.path.join(ROOT, "Tests", "QuacHostTests", "Fixtures", "torch-checkpoints")
    # Not stargan-ema.pt (85 KB): over run.sh's max_len for this target.
    for name in ["dtypes.pt", "dtypes-legacy.pt", "cnn.pt", "hostile.pt", "hostile-eval.pt"]:
        with open(os.path.join(fixtures, name), "rb") as f:
            put("torch", name, f.read())


if __name__ == "__main__":
    for t in ["safetensors", "npy", "json", "manifest", "png", "tiff", "torch"]:
        shutil.rmtree(os.path.join(CORPUS, t), ignore_errors=True)
    st_seeds()
    npy_seeds()
    json_seeds()
    manifest_seeds()
    png_seeds()
    tiff_seeds()
    torch_seeds()
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(CORPUS) for f in fs)
    print(f"wrote {CORPUS} ({total} bytes)")
