#!/usr/bin/env bash
# One command: set up the environment, then run the whole course headless (python -m helpers run).
# Extra arguments go to `python -m helpers run`, e.g. --pdfs my_pdfs --profile workshop.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
python -m helpers run "$@"
