#!/bin/bash
# A StarGAN v2 training step, quac-host against PyTorch, at 128x128 (QuAC's configuration) and 32x32
# (the demo's): seconds per step and peak memory of each, in one run. Needs the oracle Python (torch):
# $PYTHON, default ~/.cache/quac-oracle/bin/python (bash scripts/oracle-env.sh makes it).
#   THREADS=n (default nproc), SIZES=128,32, STEPS (timed steps), WARMUP=1, KEEP=1 keeps the run folder
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
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}, ISA ${QUAC_ENGINE_ISA:-auto}, load: $(cut -d' ' -f1-3 /proc/loadavg)"
"$PY" bench/stargan_step_bench.py "$(pwd)/.build/release/quac-host"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
