#!/bin/bash
# The empirical-family targets on examples/empirical: builds quac-host in release, makes the synthetic
# cells, runs the example (the CNN, both methods, both explainers trained in the same run) and prints
# each explainer's speed, QuAC score and MSE against the method it imitates (bench/empirical_bench.py).
#   PYTHON=...  a Python with numpy and safetensors (default .venv-test/bin/python; make test creates it)
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release >/dev/null
.build/release/quac-host data synth --output runs/synth-data --size 32 --count 1024 --format safetensors >/dev/null
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load: $(cut -d' ' -f1-3 /proc/loadavg)"
QUAC_PLUGIN_PATH="$PWD/plugins" .build/release/quac-host run examples/empirical/pipeline.json -q
"${PYTHON:-.venv-test/bin/python}" bench/empirical_bench.py runs/empirical
