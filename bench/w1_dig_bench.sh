#!/bin/bash
# W1: builds quac-host in release and compares its DIntegratedGradients with Captum's on QuAC's VGG.
# Needs the oracle Python (torch + captum): $PYTHON, default ~/.cache/quac-oracle/bin/python
# (bash scripts/oracle-env.sh makes it).
#   THREADS=n (default nproc), REPEATS=3, INTERNAL_BATCH=64, KEEP=1 keeps the run folder
set -euo pipefail
cd "$(dirname "$0")/.."
# quac-host picks OPENBLAS_CORETYPE itself; torch loads the same OpenBLAS, so set it for both.
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
    flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)
    if grep -q avx512bw <<<"$flags"; then export OPENBLAS_CORETYPE=SkylakeX
    elif grep -q avx2 <<<"$flags"; then export OPENBLAS_CORETYPE=Haswell; fi
fi
export THREADS="${THREADS:-$(nproc)}"
swift build -c release >/dev/null
PY="${PYTHON:-$HOME/.cache/quac-oracle/bin/python}"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}, load: $(cut -d' ' -f1-3 /proc/loadavg)"
"$PY" bench/w1_dig_bench.py "$(pwd)/.build/release/quac-host"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
