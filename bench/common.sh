# Sourced by the bench scripts (from the repository root).
# OpenBLAS picks its kernel when it loads: quac-host sets OPENBLAS_CORETYPE itself where OpenBLAS would
# fall back to its generic kernel, and torch loads the same OpenBLAS, so both sides get the kernel of
# this CPU's widest vector set.
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
    flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)
    if grep -q avx512bw <<<"$flags"; then export OPENBLAS_CORETYPE=SkylakeX
    elif grep -q avx2 <<<"$flags"; then export OPENBLAS_CORETYPE=Haswell; fi
fi
export THREADS="${THREADS:-$(nproc)}"
PY="${PYTHON:-$HOME/.cache/quac-oracle/bin/python}"

# The machine, OpenBLAS's kernel, the kernels' instruction set and the load, for the record.
machine_line() {
    echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset}, ISA ${QUAC_ENGINE_ISA:-auto}, load: $(cut -d' ' -f1-3 /proc/loadavg)"
}

# Builds quac-host in release, then runs the oracle Python's bench script with its path.
run_python_bench() {
    swift build -c release >/dev/null
    machine_line
    "$PY" "$1" "$(pwd)/.build/release/quac-host"
    echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
}
