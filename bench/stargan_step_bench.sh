#!/bin/bash
# A StarGAN v2 training step, quac-host against PyTorch, at 128x128 (QuAC's configuration) and 32x32
# (the demo's): seconds per step and peak memory of each, in one run. Needs the oracle Python (torch):
# $PYTHON, default ~/.cache/quac-oracle/bin/python (bash scripts/oracle-env.sh makes it).
#   THREADS=n (default nproc), SIZES=128,32, STEPS (timed steps), WARMUP=1, KEEP=1 keeps the run folder
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
run_python_bench bench/stargan_step_bench.py
