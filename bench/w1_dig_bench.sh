#!/bin/bash
# W1: builds quac-host in release and compares its DIntegratedGradients with Captum's on QuAC's VGG.
# Needs the oracle Python (torch + captum): $PYTHON, default ~/.cache/quac-oracle/bin/python
# (bash scripts/oracle-env.sh makes it).
#   THREADS=n (default nproc), REPEATS=3, INTERNAL_BATCH=64, KEEP=1 keeps the run folder
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
run_python_bench bench/w1_dig_bench.py
