#!/usr/bin/env bash
# Update the lock: resolve pyproject.toml's dependencies anew (uv.lock), then export constraints.txt,
# the same versions for pip. Run the tests afterwards (bash scripts/test.sh) and commit both files.
#   bash scripts/lock.sh              keep locked versions where pyproject.toml still allows them
#   bash scripts/lock.sh --upgrade    move every package to its newest allowed version
# torch and the CUDA libraries only torch needs are left out of constraints.txt: setup keeps an
# installed torch (Colab, conda) and otherwise installs the build that fits the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v uv >/dev/null || { echo "uv is needed to lock: pip install uv" >&2; exit 2; }
uv lock "$@"
torch_only=$(python3 - <<'PY'
import tomllib
lock = tomllib.load(open("uv.lock", "rb"))
print(" ".join(sorted({p["name"] for p in lock["package"]
                       if p["name"] in ("torch", "triton") or p["name"].startswith(("nvidia-", "cuda-"))})))
PY
)
args=()
for name in $torch_only; do args+=(--no-emit-package "$name"); done
uv export --quiet --frozen --all-extras --no-hashes --no-emit-project "${args[@]}" -o constraints.txt
echo "Locked $(grep -c '^name = ' uv.lock) packages; constraints.txt pins $(grep -c '==' constraints.txt)."

# constraints-colab.txt: what the notebooks' setup cell installs on Colab (python -m helpers.core.colab),
# the colab extra resolved for Colab's Python 3.13 against the packages Colab has (colab/pip-freeze.gpu.txt):
# Colab's version of every package it has, its kernel, numpy, pandas, pyarrow, protobuf and torch
# unmoved, nothing downgraded but the changes helpers/core/colab.py names. torch is Colab's: left out.
python3 -m helpers.core.colab lock
echo "constraints-colab.txt pins $(grep -c '==' constraints-colab.txt) for Colab."
