#!/usr/bin/env bash
# Creates the reference ("oracle") Python environment that the golden-file generators in
# scripts/golden/ and scripts/logic/ and the reference halves of the benchmarks in bench/ run with:
# Debian's CPU PyTorch, SciPy, scikit-learn and SymPy, plus Captum, OpenCV, safetensors and torch_explain
# from PyPI, pinned to NumPy 1.24 (Debian's torch and scipy are built against NumPy 1.x, and the QuAC
# evaluator's reference relies on NumPy 1.x casting).
#
# Usage: bash scripts/oracle-env.sh [VENV_DIR]
#   VENV_DIR defaults to $QUAC_ORACLE_VENV, else ~/.cache/quac-oracle (where bench/*.sh look unless
#   PYTHON is set). Then run scripts with VENV_DIR/bin/python, or PYTHON=VENV_DIR/bin/python bash bench/...
# Idempotent; installs Debian packages (with sudo when not root) only when they are missing.
set -euo pipefail
venv=${1:-${QUAC_ORACLE_VENV:-$HOME/.cache/quac-oracle}}

if ! /usr/bin/python3 -c 'import torch, scipy, PIL, sklearn, sympy' 2>/dev/null || ! dpkg -s python3-venv >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-torch python3-scipy python3-pil python3-sklearn python3-sympy python3-venv >/dev/null
fi
[ -x "$venv/bin/python" ] || /usr/bin/python3 -m venv --system-site-packages "$venv"
# --no-deps keeps pip from replacing Debian's NumPy (and torch, scikit-learn, SymPy) with newer wheels,
# and torch_explain from pulling in pandas, which it declares but does not import.
"$venv/bin/pip" install -q --disable-pip-version-check --no-deps \
  "numpy==1.24.2" "captum==0.7.0" "opencv-python-headless<4.9" "safetensors" "torch-explain==1.5.1"
# What importing captum.attr pulls in.
"$venv/bin/pip" install -q --disable-pip-version-check "numpy==1.24.2" "matplotlib<3.9" "tqdm" "packaging"
"$venv/bin/python" - <<'PY'
import captum, cv2, numpy, safetensors, scipy, sklearn, sympy, torch, torch_explain
import torch_explain.logic.nn.entropy
print("oracle environment ready: torch", torch.__version__, "captum", captum.__version__,
      "numpy", numpy.__version__, "opencv", cv2.__version__, "scipy", scipy.__version__,
      "scikit-learn", sklearn.__version__, "sympy", sympy.__version__, "torch_explain", torch_explain.__version__)
PY
echo "python: $venv/bin/python"
