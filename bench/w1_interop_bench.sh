#!/bin/bash
# W1 through the TorchScript plugin (against Captum on the same module) and through an imported ONNX
# VGG (against the engine's own VGG), in one run: bench/w1_interop_bench.py. Builds quac-host and the
# TorchScript plugin in release. Needs libtorch-dev (scripts/setup.sh) and the oracle Python (torch +
# captum): $PYTHON, default ~/.cache/quac-oracle/bin/python (bash scripts/oracle-env.sh makes it).
#   THREADS=n (default nproc), REPEATS=3, N=16 images, INTERNAL_BATCH=64, KEEP=1 keeps the run folder
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
make -s release >/dev/null
[ -f .build/release/libQuacTorchScript.so ] || { echo "the TorchScript plugin is absent: install libtorch-dev (scripts/setup.sh)"; exit 1; }
machine_line
"$PY" bench/w1_interop_bench.py "$(pwd)/.build/release/quac-host"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
