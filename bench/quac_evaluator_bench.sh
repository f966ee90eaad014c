#!/bin/bash
# W2: builds quac-host in release and compares the QuAC evaluator with the Python reference.
# Needs the oracle Python: $PYTHON, default ~/.cache/quac-oracle/bin/python
# (bash scripts/oracle-env.sh makes it).
set -euo pipefail
cd "$(dirname "$0")/.."
SCRATCH="${SCRATCH:-.build-quac}"
swift build -c release --scratch-path "$SCRATCH" >/dev/null
PY="${PYTHON:-$HOME/.cache/quac-oracle/bin/python}"
exec "$PY" bench/quac_evaluator_bench.py "$SCRATCH/release/quac-host"
