#!/usr/bin/env bash
# Multi-GPU training throughput: one GPU against all of them, in-batch negatives gathered across the
# processes or not, with a randomly initialised BERT-base (Arctic-embed-m's shape: 12 layers, 768 hidden).
#   bash benchmarks/bench_multi_gpu.sh          (a machine with GPUs; a few minutes after the install)
# Installs the kit from the lock first (scripts/setup.sh: constraints.txt, torch kept when present), builds
# the sample corpus' offline pairs (train split only, so no validation is timed), then runs the training
# entry point under torchrun for BENCH_STEPS steps (default 50) of BENCH_BATCH pairs per GPU (default 32,
# BENCH_SEQ tokens, default 256) and prints pairs per second as the Trainer measures them (all processes
# together). Timings are printed, never asserted.
#   BENCH_CPU=2 BENCH_SHAPE=tiny BENCH_STEPS=2   the same commands on 2 CPU processes (gloo), to try the
#                                                script on a machine without GPUs
set -euo pipefail
cd "$(dirname "$0")/.."
steps="${BENCH_STEPS:-50}" batch="${BENCH_BATCH:-32}" seq="${BENCH_SEQ:-256}" shape="${BENCH_SHAPE:-base}"
gpus=$( (nvidia-smi -L 2>/dev/null || true) | grep -c '^GPU' || true)
processes="${BENCH_CPU:-$gpus}"
if [ "$processes" -lt 1 ]; then
  echo "No GPU here: run this where GPUs are (BENCH_CPU=2 tries the same commands on 2 CPU processes)."
  exit 0
fi
# shellcheck disable=SC1091
. scripts/setup.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

model=$(python - "$work" "$shape" "$seq" <<'EOF' | tail -1
import sys
from pathlib import Path

sys.path.insert(0, "benchmarks")
from datasets import DatasetDict, load_from_disk
from training_common import sample_run

from helpers.core.random_models import build_random_bert

work, shape, seq = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
pairs = load_from_disk(str(sample_run().pairs))
DatasetDict({"train": pairs["train"]}).save_to_disk(str(work / "pairs"))
print(build_random_bert(work / "model", shape, max_seq_length=seq))
EOF
)

train() {  # train PROCESSES GATHER: the summary line "pairs/s seconds loss_end" of one run
  local out="$work/out-$1-$2"
  torchrun --nproc-per-node "$1" -m helpers.training --pairs "$work/pairs" --output "$out" \
    --model "$model" --max-steps "$steps" --batch-size "$batch" --max-seq-length "$seq" \
    --no-corpus-rotation --merge-alphas '' --no-resume "--$2" >"$out.log" 2>&1 \
    || { grep -E "Error|error:" "$out.log" | tail -5 >&2; echo "failed"; return; }
  python - "$out.log" <<'EOF'
import json, sys
text = open(sys.argv[1]).read()
s = json.loads(text[text.rindex('{\n  "output_dir"'):])
print(f"{s['pairs_per_second']:>10} {s['train_seconds']:>10} {s['loss_end']:>10.4f}")
EOF
}

printf '%-10s %-28s %10s %10s %10s\n' processes negatives pairs/s seconds loss_end
printf '%-10s %-28s %s\n' 1 "own batch" "$(train 1 no-gather-across-devices)"
if [ "$processes" -gt 1 ]; then
  printf '%-10s %-28s %s\n' "$processes" "own batch" "$(train "$processes" no-gather-across-devices)"
  printf '%-10s %-28s %s\n' "$processes" "gathered from all processes" "$(train "$processes" gather-across-devices)"
fi
