#!/bin/bash
# Engine vs PyTorch on QuAC's VGG: builds the tests in release, runs the engine's half
# (bench/EngineBenchmarks/BenchmarkTests.swift, gated by QUAC_ENGINE_BENCH=1), then bench/engine_bench.py,
# which times PyTorch with the same shapes and thread count and prints both with their ratio.
# Needs the oracle Python (torch): $PYTHON, default ~/.cache/quac-oracle/bin/python
# (bash scripts/oracle-env.sh makes it).
#   THREADS=n     threads on both sides (default: nproc)
#   BATCHES=1,16,64
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
export QUAC_ENGINE_THREADS="$THREADS"
export QUAC_ENGINE_BENCH=1 QUAC_ENGINE_BENCH_BATCHES="${BATCHES:-1,16,64}"
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
export QUAC_ENGINE_BENCH_OUT="$OUT/engine.json"

machine_line
# A separate build folder: testable release builds use other flags than `swift build -c release`.
SCRATCH="${SCRATCH:-.build-bench}"
swift test -c release --scratch-path "$SCRATCH" --filter 'EngineBenchmarks.BenchmarkTests' >"$OUT/swift.log" 2>&1 ||
    { tail -30 "$OUT/swift.log" >&2; exit 1; }
grep '^engine bench' "$OUT/swift.log" || true
test -s "$QUAC_ENGINE_BENCH_OUT" || { echo "the engine benchmark wrote no results" >&2; exit 1; }
"$PY" bench/engine_bench.py "$QUAC_ENGINE_BENCH_OUT"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
