#!/bin/bash
# Counterfactuals at QuAC's size with a StarGAN trained elsewhere: makes a full-size QuAC StarGAN
# checkpoint for 128x128 images with PyTorch (bench/stargan_import_bench.py, which also times PyTorch's
# generation), imports it with `quac-host import`, and runs a pipeline whose converter generates one
# candidate per image (candidates 1, max_tries 1: one mapping-network and one generator forward, plus
# the classifier's choice). Prints images/s for quac-host and for PyTorch on this machine.
#   PYTHON=...  the oracle Python with torch (default ~/.cache/quac-oracle/bin/python; scripts/oracle-env.sh)
#   IMAGES=16   images to convert
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-$HOME/.cache/quac-oracle/bin/python}"
IMAGES="${IMAGES:-16}"
OUT=runs/stargan-import
swift build -c release >/dev/null
BIN=.build/release/quac-host
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load: $(cut -d' ' -f1-3 /proc/loadavg)"
mkdir -p "$OUT"
REF=$("$PY" bench/stargan_import_bench.py "$OUT" 2>/dev/null)
echo "pytorch: $REF"
PARAMS='{"image_size": 128, "input_channels": 1, "num_classes": 2, "channels": 128, "max_channels": 512, "style_dim": 64, "latent_dim": 16, "mapping_dim": 512}'
$BIN import "$OUT/000000_nets_ema.ckpt" --as org.quac.stargan-converter --params "$PARAMS" --output "$OUT/stargan.safetensors"
$BIN data synth --output "$OUT/data" --size 128 --count "$IMAGES" --format safetensors >/dev/null
cat > "$OUT/pipeline.json" <<JSON
{"name": "stargan-import", "output": "run", "seed": 0, "batch_size": 8,
 "data": {"format": "safetensors", "path": "data/test.safetensors", "x": "images", "label": "labels", "limit": $IMAGES},
 "classifier": {"plugin": "org.quac.cnn-classifier", "params": {"input_shape": [1, 128, 128], "num_classes": 2}},
 "converter": {"plugin": "org.quac.stargan-converter", "name": "stargan",
               "params": $(echo "$PARAMS" | sed 's/}$//'), "weights": "stargan.safetensors", "candidates": 1, "max_tries": 1}},
 "attributors": [{"plugin": "org.quac.random"}], "scorers": []}
JSON
rm -rf "$OUT/run"
START=$(date +%s.%N)
LOG=$($BIN run "$OUT/pipeline.json" 2>&1)
END=$(date +%s.%N)
echo "$LOG" | grep -E "convert|counterfactual" || true
SECONDS_CONVERT=$(echo "$LOG" | grep -E "^convert" | grep -oE "done in [0-9.]+ s" | grep -oE "[0-9.]+" | head -1)
python3 - "$REF" "${SECONDS_CONVERT:-0}" "$IMAGES" "$START" "$END" <<'PY'
import json, sys
ref = json.loads(sys.argv[1]); conv = float(sys.argv[2]); n = int(sys.argv[3])
print(f"quac-host: {n} images converted in {conv:.2f} s = {n / conv:.2f} images/s (whole run {float(sys.argv[5]) - float(sys.argv[4]):.1f} s)" if conv else "quac-host: no convert timing found")
print(f"pytorch {ref['torch']}: {ref['torch_images_per_s']:.2f} images/s (mapping + generator only), {ref['parameters']/1e6:.1f} M parameters")
if conv: print(f"ratio quac-host / pytorch: {(n / conv) / ref['torch_images_per_s']:.2f}")
PY
