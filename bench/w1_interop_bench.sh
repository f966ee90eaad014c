#!/bin/bash
# W1 through the TorchScript plugin (against Captum on the same module) and through an imported ONNX
# VGG (against the engine's own VGG), in one run: bench/w1_interop_bench.py. Builds quac-host and the
# TorchScript plugin in release. Needs libtorch-dev (scripts/setup.sh) and the oracle Python (torch +
# captum): $PYTHON, default ~/.cache/quac-oracle/bin/python (bash scripts/oracle-env.sh makes it).
#   THREADS=n (default nproc), REPEATS=3, N=16 images, INTERNAL_BATCH=64, KEEP=1 keeps the run folder
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
    flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)
    if grep -q avx512bw <<<"$flags"; then export OPENBLAS_CORETYPE=SkylakeX
    elif grep -q avx2 <<<"$flags"; then export OPENBLAS_CORETYPE=Haswell; fi
fi
export THREADS="${THREADS:-$(nproc)}"
make -s release >/dev/null
[ -f .build/release/libQuacTorchScript.so ] || { echo "the TorchScript plugin is absent: install libtorch-dev (scripts/setup.sh)"; exit 1; }
PY="${PYTHON:-$HOME/.cache/quac-oracle/bin/python}"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}, load: $(cut -d' ' -f1-3 /proc/loadavg)"
"$PY" bench/w1_interop_bench.py "$(pwd)/.build/release/quac-host"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
