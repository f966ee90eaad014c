#!/bin/bash
# The engine's C kernels alone on one core (bench/kernels_bench.c): the no-packing GEMM on W1's largest
# linear layer, Winograd against the direct convolution. Builds with clang at -O2 (as the package does).
#   QUAC_ENGINE_ISA=avx2|sse runs a narrower instruction set
set -euo pipefail
cd "$(dirname "$0")/.."
K=Sources/EngineKernels
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT
clang -O2 -I"$K/include" -I"$K" "$K"/{gemm,winograd,direct_conv,isa,scratch}.c bench/kernels_bench.c -o "$OUT/kernels_bench" -lpthread
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load: $(cut -d' ' -f1-3 /proc/loadavg)"
"$OUT/kernels_bench"
