"""Training throughput and peak memory: the kit recipe (plain and cached loss) vs the seed recipe.

    python benchmarks/bench_training_speed.py [--pairs-per-recipe 192] [--random-arctic] [--model fallback]

``kit-cached`` is the kit recipe with CachedMultipleNegativesRankingLoss (mini-batches of 8): the same
batch of 32 and its negatives in less memory. Every recipe sees the same number of pairs from the sample
corpus' offline pairs (built on first use under runs/bench-training-smoke/), in its own process so that
peak memory is its own: on a GPU ``torch.cuda.max_memory_allocated``, on a CPU the process's maximum
resident set size (model, optimizer and activations together). ``--random-arctic`` trains a randomly
initialised BERT-base instead (Arctic-embed-m's shape: 12 layers, 768 hidden, 512 tokens): the speed and
memory of the real model without downloading it. Validation is off, so the numbers are training only.
Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from training_common import recipes, sample_run


def peak_memory_mb() -> tuple[float, str]:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20, "GPU allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process max RSS"


def run_one(name: str, model_id: str, pairs_per_recipe: int, max_seq_length: int | None) -> dict:
    """Train recipe ``name`` for about ``pairs_per_recipe`` pairs; its speed and peak memory."""
    from helpers.core.models import load_embedding_model
    from helpers.training.trainer import finetune

    full_dim = load_embedding_model(model_id, quiet=True).model.get_embedding_dimension()
    configs = recipes(full_dim)
    configs["kit-cached"] = replace(configs["kit"], loss="cached_mnrl", mini_batch_size=8)
    cfg = configs[name]
    cfg.max_steps = math.ceil(pairs_per_recipe / cfg.batch_size)
    cfg.evals_per_run = 0
    cfg.max_seq_length = max_seq_length or cfg.max_seq_length
    with tempfile.TemporaryDirectory() as tmp:
        result = finetune(sample_run().pairs, Path(tmp) / "model", model_id=model_id, config=cfg,
                          resume=False, progress=False)
    memory, memory_kind = peak_memory_mb()
    return {"recipe": name, "loss": cfg.loss, "batch": cfg.batch_size, "sampler": cfg.batch_sampler,
            "dims": cfg.dims or "all", "prompt": cfg.use_query_prompt, "precision": cfg.precision,
            "steps": result.steps, "pairs/s": result.pairs_per_second, "peak MB": round(memory),
            "memory": memory_kind,
            "loss start->end": f"{result.loss_start:.3f}->{result.loss_end:.3f}"}


def main() -> None:
    from helpers.core import console

    console.kit_lines_only()  # finetune leaves logging to its caller
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs-per-recipe", type=int, default=192)
    parser.add_argument("--model", default="fallback", help="base model id or folder")
    parser.add_argument("--random-arctic", action="store_true", help="a random BERT-base, 512 tokens")
    parser.add_argument("--only", help=argparse.SUPPRESS)  # child process: one recipe, JSON out
    parser.add_argument("--max-seq-length", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only:
        row = run_one(args.only, args.model, args.pairs_per_recipe, args.max_seq_length)
        print("RESULT " + json.dumps(row))
        return

    sample_run()  # build the pairs once, outside the measured processes
    with tempfile.TemporaryDirectory() as tmp:
        model, seq = args.model, None
        if args.random_arctic:
            from helpers.core.random_models import build_random_bert

            model, seq = str(build_random_bert(tmp, "base", max_seq_length=512)), 512
        rows = [_child(name, model, args.pairs_per_recipe, seq) for name in ("kit", "kit-cached", "seed")]
    _print_table(rows)


def _child(name: str, model: str, pairs: int, seq: int | None) -> dict:
    command = [sys.executable, __file__, "--only", name, "--model", model, "--pairs-per-recipe", str(pairs)]
    command += ["--max-seq-length", str(seq)] if seq else []
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"recipe {name} failed:\n{done.stderr[-3000:]}")
    return json.loads(next(line for line in done.stdout.splitlines() if line.startswith("RESULT "))[7:])


def _print_table(rows: list[dict]) -> None:
    keys = list(rows[0])
    widths = {k: max(len(k), *(len(str(r[k])) for r in rows)) for k in keys}
    print("  ".join(k.ljust(widths[k]) for k in keys))
    for row in rows:
        print("  ".join(str(row[k]).ljust(widths[k]) for k in keys))


if __name__ == "__main__":
    main()
