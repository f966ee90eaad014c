#!/usr/bin/env bash
# The Python bridge's per-call overhead (issue: under 1 ms per batch of 16 images): builds the bridge
# (optimised) and a driver that calls a no-op Python attributor and a no-op C attributor through the
# ABI, and prints both and their difference.   bash bench/python_bridge_bench.sh [CALLS]
set -euo pipefail
cd "$(dirname "$0")/.."
build=.build-bench-python
make -s -C SDK/python/bridge BUILD_DIR="$PWD/$build" QUAC_SDK_OPT="-O2 -Wall -Wextra"
cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -I SDK/include -o "$build/bridge_bench" bench/python_bridge/bridge_bench.c -ldl
"$build/bridge_bench" "$PWD/$build/libquac_python.so" "$PWD/bench/python_bridge/noop.py" "${1:-2000}"
