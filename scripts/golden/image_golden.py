#!/usr/bin/env python3
"""Golden images for the PNG/TIFF readers and the resize (Tests/QuacCoreTests/ImageIOTests.swift).

Run with the oracle environment (bash scripts/oracle-env.sh sets up ~/.cache/quac-oracle):
    ~/.cache/quac-oracle/bin/python scripts/golden/image_golden.py Tests/QuacCoreTests/Fixtures/images

Writes small images made by independent encoders (OpenCV, PIL, and a hand-rolled TIFF writer for the
layouts those cannot make: tiles, separate planes) and expected.safetensors, holding for every file
name the pixel array a reader must return, shaped [H, W, C] (RGB order, alpha last), in the file's
sample type (uint8, uint16 or float32). It also holds resize goldens from
torch.nn.functional.interpolate(mode="bilinear", antialias=True, align_corners=False):
    resize_in_a [2, 13, 17] -> resize_out_a [2, 5, 5]     (shrink both ways)
    resize_in_b [2, 5, 7]   -> resize_out_b [2, 12, 12]   (enlarge both ways)
    resize_in_c [1, 13, 5]  -> resize_out_c [1, 8, 8]     (shrink rows, enlarge columns)
"""
import os
import struct
import sys
import zlib

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.numpy import save_file


def main(out):
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(7)
    expected = {}

    def put(name, arr):
        arr = np.ascontiguousarray(arr)
        if arr.ndim == 2:
            arr = arr[:, :, None]
        expected[name] = arr

    def cv_write(name, arr_rgb):
        """OpenCV stores BGR(A); arr_rgb is RGB(A) or gray."""
        a = arr_rgb
        if a.ndim == 3 and a.shape[2] == 3:
            a = a[:, :, ::-1]
        elif a.ndim == 3 and a.shape[2] == 4:
            a = a[:, :, [2, 1, 0, 3]]
        assert cv2.imwrite(os.path.join(out, name), np.ascontiguousarray(a)), name
        put(name, arr_rgb)

    g8 = rng.integers(0, 256, (5, 7), dtype=np.uint8)
    g8[0, 0], g8[0, 1] = 0, 255
    g16 = rng.integers(0, 65536, (6, 4), dtype=np.uint16)
    g16[0, 0], g16[0, 1] = 0, 65535
    rgb8 = rng.integers(0, 256, (4, 5, 3), dtype=np.uint8)
    rgba8 = rng.integers(0, 256, (3, 4, 4), dtype=np.uint8)
    rgb16 = rng.integers(0, 65536, (3, 5, 3), dtype=np.uint16)
    f32 = rng.random((4, 6), dtype=np.float32)
    f32[0, 0], f32[0, 1] = 0.0, 1.0

    # PNG via OpenCV: 8/16-bit gray, RGB, RGBA.
    cv_write("gray8.png", g8)
    cv_write("gray16.png", g16)
    cv_write("rgb8.png", rgb8)
    cv_write("rgba8.png", rgba8)
    cv_write("rgb16.png", rgb16)

    # PNG via PIL: gray+alpha, palette, 1-bit.
    la = rng.integers(0, 256, (4, 3, 2), dtype=np.uint8)
    Image.fromarray(la, mode="LA").save(os.path.join(out, "graya8.png"))
    put("graya8.png", la)
    palette = rng.integers(0, 256, (4, 3), dtype=np.uint8)
    idx = rng.integers(0, 4, (5, 6), dtype=np.uint8)
    p = Image.fromarray(idx, mode="P")
    p.putpalette(palette.flatten().tolist() + [0] * (768 - 12))
    p.save(os.path.join(out, "palette.png"))
    put("palette.png", palette[idx])
    bits = rng.integers(0, 2, (5, 9)).astype(bool)
    Image.fromarray(bits).save(os.path.join(out, "gray1.png"))
    put("gray1.png", bits.astype(np.uint8) * 255)

    # PNGs with color-space chunks: values must still come back as stored.
    with open(os.path.join(out, "gray8.png"), "rb") as f:
        data = f.read()
    with open(os.path.join(out, "gray8_gamma.png"), "wb") as f:
        f.write(insert_after_ihdr(data, b"gAMA", struct.pack(">I", 100000)))
    put("gray8_gamma.png", g8)
    with open(os.path.join(out, "gray16.png"), "rb") as f:
        data = f.read()
    with open(os.path.join(out, "gray16_srgb.png"), "wb") as f:
        f.write(insert_after_ihdr(data, b"sRGB", b"\x00"))
    put("gray16_srgb.png", g16)

    # TIFF via OpenCV: 8/16-bit gray and RGB, float32 gray.
    cv_write("gray8.tif", g8)
    cv_write("gray16.tif", g16)
    cv_write("rgb8.tif", rgb8)
    cv_write("rgb16.tif", rgb16)
    cv_write("float32.tif", f32)

    # Multi-page TIFF via PIL: the first page is read.
    pages = [Image.fromarray(g8), Image.fromarray(255 - g8)]
    pages[0].save(os.path.join(out, "multipage.tif"), save_all=True, append_images=pages[1:])
    put("multipage.tif", g8)

    # Palette TIFF via PIL (read through TIFFReadRGBAImage).
    p.save(os.path.join(out, "palette.tif"))
    put("palette.tif", palette[idx])

    # Hand-made TIFFs: 16x16 tiles over a 20x18 8-bit gray image; separate planes (RGB, 16-bit, 2 strips);
    # MinIsWhite 8-bit gray (stored inverted).
    t8 = rng.integers(0, 256, (18, 20), dtype=np.uint8)
    with open(os.path.join(out, "tiled8.tif"), "wb") as f:
        f.write(tiff_tiled_gray8(t8, 16))
    put("tiled8.tif", t8)
    planar = rng.integers(0, 65536, (5, 4, 3), dtype=np.uint16)
    with open(os.path.join(out, "planar16.tif"), "wb") as f:
        f.write(tiff_planar_rgb16(planar, rows_per_strip=3))
    put("planar16.tif", planar)
    with open(os.path.join(out, "miniswhite8.tif"), "wb") as f:
        f.write(tiff_strips_gray8(255 - g8, photometric=0))
    put("miniswhite8.tif", g8)

    # Resize goldens.
    torch.manual_seed(0)
    cases = [("a", (2, 13, 17), (5, 5)), ("b", (2, 5, 7), (12, 12)), ("c", (1, 13, 5), (8, 8))]
    for name, shape, size in cases:
        x = torch.rand(shape, dtype=torch.float32) * 2 - 1
        y = F.interpolate(x[None], size=size, mode="bilinear", antialias=True, align_corners=False)[0]
        expected[f"resize_in_{name}"] = x.numpy()
        expected[f"resize_out_{name}"] = y.numpy()

    save_file(expected, os.path.join(out, "expected.safetensors"),
              metadata={"generator": "scripts/golden/image_golden.py", "opencv": cv2.__version__,
                        "torch": torch.__version__, "pil": Image.__version__})
    print(f"wrote {len(expected)} arrays to {out}")


def chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def insert_after_ihdr(png, kind, body):
    end = 8 + 8 + 13 + 4  # signature, IHDR header, IHDR data, CRC
    return png[:end] + chunk(kind, body) + png[end:]


def tiff(width, height, entries, data):
    """A little-endian classic TIFF: header, data blocks, one IFD. entries: (tag, type, values); a value
    list of type 'offsets' is patched to the data block offsets."""
    out = bytearray(b"II*\x00" + struct.pack("<I", 0))
    offsets = []
    for block in data:
        offsets.append(len(out))
        out += block
        if len(out) % 2:
            out += b"\x00"
    extra = bytearray()
    ifd_at = len(out)
    n = len(entries)
    extra_at = ifd_at + 2 + 12 * n + 4
    ifd = bytearray(struct.pack("<H", n))
    for tag, typ, values in sorted(entries, key=lambda e: e[0]):
        if values == "offsets":
            values = offsets
        fmt = {3: "H", 4: "I"}[typ]
        size = {3: 2, 4: 4}[typ]
        packed = struct.pack("<" + fmt * len(values), *values)
        if len(packed) <= 4:
            ifd += struct.pack("<HHI", tag, typ, len(values)) + packed.ljust(4, b"\x00")
        else:
            ifd += struct.pack("<HHII", tag, typ, len(values), extra_at + len(extra))
            extra += packed
    ifd += struct.pack("<I", 0)
    out += ifd + extra
    struct.pack_into("<I", out, 4, ifd_at)
    return bytes(out)


def tiff_tiled_gray8(img, tile):
    h, w = img.shape
    blocks = []
    for ty in range(0, h, tile):
        for tx in range(0, w, tile):
            t = np.zeros((tile, tile), np.uint8)
            part = img[ty:ty + tile, tx:tx + tile]
            t[:part.shape[0], :part.shape[1]] = part
            blocks.append(t.tobytes())
    entries = [(256, 4, [w]), (257, 4, [h]), (258, 3, [8]), (259, 3, [1]), (262, 3, [1]), (277, 3, [1]),
               (284, 3, [1]), (322, 4, [tile]), (323, 4, [tile]), (324, 4, "offsets"),
               (325, 4, [len(b) for b in blocks])]
    return tiff(w, h, entries, blocks)


def tiff_planar_rgb16(img, rows_per_strip):
    h, w, _ = img.shape
    blocks = []
    for c in range(3):
        for y in range(0, h, rows_per_strip):
            blocks.append(img[y:y + rows_per_strip, :, c].astype("<u2").tobytes())
    entries = [(256, 4, [w]), (257, 4, [h]), (258, 3, [16, 16, 16]), (259, 3, [1]), (262, 3, [2]),
               (273, 4, "offsets"), (277, 3, [3]), (278, 4, [rows_per_strip]),
               (279, 4, [len(b) for b in blocks]), (284, 3, [2])]
    return tiff(w, h, entries, blocks)


def tiff_strips_gray8(img, photometric):
    h, w = img.shape
    blocks = [img.tobytes()]
    entries = [(256, 4, [w]), (257, 4, [h]), (258, 3, [8]), (259, 3, [1]), (262, 3, [photometric]),
               (273, 4, "offsets"), (277, 3, [1]), (278, 4, [h]), (279, 4, [len(blocks[0])])]
    return tiff(w, h, entries, blocks)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "Tests/QuacCoreTests/Fixtures/images")
