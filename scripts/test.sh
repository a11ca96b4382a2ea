#!/usr/bin/env bash
# One command: set up the environment, then run every test and every notebook (nbval, smoke profile).
# Runs are written to a temporary folder so your own runs/ is neither read nor changed.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
export KIT_PROFILE=smoke MPLBACKEND=Agg
KIT_RUNS_DIR="$(mktemp -d)"
export KIT_RUNS_DIR
trap 'rm -rf "$KIT_RUNS_DIR"' EXIT
python -m pytest tests notebooks benchmarks/corpora --nbval-lax "$@"
