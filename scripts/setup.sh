#!/usr/bin/env bash
# Installs what building, testing and the demo need on a fresh Debian machine: the C libraries the
# package links (OpenBLAS, libffi, json-c, libpng, libtiff), libtorch for the TorchScript classifier plugin, and, with --test, a Python virtual
# environment with numpy, safetensors and pandas for the round-trip and output tests (.venv-test),
# chromium for the report's rendering test and strace for the durability test. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
# libtorch-dev (and g++) build the optional TorchScript classifier plugin (org.quac.torchscript-classifier).
for pkg in libopenblas-dev libffi-dev libjson-c-dev libpng-dev libtiff-dev pkg-config make gcc g++ libtorch-dev python3-venv; do
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
  # A real browser for the report's rendering test.
  if ! command -v chromium >/dev/null 2>&1; then
    echo "setup: installing chromium (report rendering test)"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
  fi
  if ! .venv-test/bin/python -c 'import numpy, safetensors, pandas' 2>/dev/null; then
    echo "setup: creating .venv-test (numpy, safetensors, pandas)"
    python3 -m venv .venv-test
    .venv-test/bin/pip install -q --disable-pip-version-check numpy safetensors pandas
  fi
fi
