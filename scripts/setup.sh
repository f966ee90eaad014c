#!/usr/bin/env bash
# Installs what building, testing and the demo need on a fresh Debian machine: the C libraries the
# package links (OpenBLAS, libffi, json-c, libpng, libtiff), libtorch for the TorchScript classifier plugin, and, with --test, a Python virtual
# environment with numpy, safetensors and pandas for the round-trip and output tests (.venv-test),
# chromium for the report's rendering test, strace for the durability test, cargo for the Rust
# SDK's tests, .venv-torch (Debian's PyTorch, Captum) for the Captum-through-the-bridge tests and
# slurm-wlm with munge for the sharded-run test on a single-node Slurm. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
# libpython3-dev and python3-numpy: the Python bridge plugin (SDK/python/bridge) embeds Debian's Python.
# libtorch-dev (and g++) build the TorchScript classifier plugin (org.quac.torchscript-classifier).
for pkg in libopenblas-dev libffi-dev libjson-c-dev libpng-dev libtiff-dev pkg-config make gcc g++ python3-venv \
           libpython3-dev python3-numpy libtorch-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

if [ "${1:-}" = "--test" ]; then
  # strace for the test that checks folders are fsynced after renames.
  if ! command -v strace >/dev/null 2>&1; then
    echo "setup: installing strace (durability test)"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq strace >/dev/null
  fi
  # cargo (and rustc) for the Rust SDK's tests: the crate's layout test and the Rust example.
  if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: installing cargo (Rust SDK tests)"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq cargo >/dev/null
  fi
  # A single-node Slurm (scripts/slurm-local.sh) for the sharded-run test.
  if ! [ -x /usr/sbin/slurmctld ] || ! [ -x /usr/sbin/slurmd ] || ! [ -x /usr/sbin/munged ]; then
    echo "setup: installing slurm-wlm and munge (Slurm test)"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq slurm-wlm munge >/dev/null
  fi
  # A real browser for the report's rendering test.
  if ! command -v chromium >/dev/null 2>&1; then
    echo "setup: installing chromium (report rendering test)"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
  fi
  # Debian's PyTorch with Captum from PyPI, for the tests that run Captum methods through the Python
  # bridge: .venv-torch sees the system's torch, NumPy 1.24 and matplotlib; Captum is pinned and comes
  # without dependencies, so nothing pulls NumPy 2 in (Debian's torch is built against 1.24).
  if ! .venv-torch/bin/python -c 'import torch, captum.attr' 2>/dev/null; then
    echo "setup: creating .venv-torch (Debian's python3-torch, captum 0.7.0)"
    tneed=()
    for pkg in python3-torch python3-matplotlib python3-tqdm python3-packaging; do
      dpkg -s "$pkg" >/dev/null 2>&1 || tneed+=("$pkg")
    done
    if [ ${#tneed[@]} -gt 0 ]; then
      SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
      $SUDO apt-get update -qq
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${tneed[@]}" >/dev/null
    fi
    /usr/bin/python3 -m venv --system-site-packages .venv-torch
    .venv-torch/bin/pip install -q --disable-pip-version-check --no-deps "captum==0.7.0"
  fi
  if ! .venv-test/bin/python -c 'import numpy, safetensors, pandas' 2>/dev/null; then
    echo "setup: creating .venv-test (numpy, safetensors, pandas)"
    python3 -m venv .venv-test
    .venv-test/bin/pip install -q --disable-pip-version-check numpy safetensors pandas
  fi
fi
