#!/usr/bin/env bash
# Create (or reuse) the virtual environment and install the kit into it. Sourced by run.sh and test.sh.
#   KIT_VENV             where the environment lives (default: .venv)
#   KIT_EXTRAS           which extras to install (default: dev = everything + test tools)
#   KIT_TORCH_INDEX_URL  where torch comes from when none is installed, e.g. PyTorch's CPU wheel index
#                        on a machine without a GPU (a bare pip install of torch pulls several GB of CUDA)
# Every package but torch comes at the version in constraints.txt (exported from uv.lock by
# scripts/lock.sh), so nothing is resolved anew: with uv (put into the venv first), else with pip.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
venv="${KIT_VENV:-.venv}"
extras="${KIT_EXTRAS:-dev}"
python_bin="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
  echo "Creating the virtual environment in $venv"
  "$python_bin" -m venv "$venv"
fi
# shellcheck disable=SC1091
. "$venv/bin/activate"

stamp="$venv/.kit-installed"
want="$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16) $extras"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  if ! python -c "import torch" 2>/dev/null; then
    # Pinned to the CPU build this machine type carries; a torch already present (Colab, conda) is kept.
    pip install "torch==${KIT_TORCH_VERSION:-2.13.0}" -c constraints.txt \
      ${KIT_TORCH_INDEX_URL:+--index-url "$KIT_TORCH_INDEX_URL"}
  fi
  if python -m pip install -q "uv==${KIT_UV_VERSION:-0.13.9}"; then
    python -m uv pip install --python "$venv/bin/python" -c constraints.txt -e ".[$extras]"
  else
    echo "uv could not be installed: installing with pip from the same constraints (slower)"
    pip install -c constraints.txt -e ".[$extras]"
  fi
  echo "$want" > "$stamp"
fi
