"""Retrieval quality on the gold questions: base model vs the kit recipe vs the seed recipe, at every dim.

    python benchmarks/bench_training_quality.py [--epochs 3] [--model fallback] [--profile smoke]

The sample PDFs are chunked, offline questions generated (once, in runs/bench-training-<profile>/), and the
base model is fine-tuned three times on the same pairs for the same number of epochs: with the kit's
recipe, with the kit's recipe minus its corpus rotation, and with the seed recipe
(helpers.training.settings.seed_recipe). They, the base model and the base model rotated onto the chunks (no
training) are scored with nDCG@10 on the hand-written gold questions, which no recipe saw, at every
Matryoshka dimension of the model: what the rotation does and what training adds are separate columns.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

from training_common import recipes, sample_run


def gold_ndcg(model, chunks, dims: list[int]) -> dict[int, float]:
    """nDCG@10 of ``model`` on the gold questions at each of ``dims``."""
    from helpers.evaluation.metrics import aggregate, evaluate_model, ir_from_gold

    per_dim = evaluate_model(model, ir_from_gold(chunks), dims, show_progress=False)
    return {dim: aggregate(per_query)["ndcg@10"] for dim, per_query in per_dim.items()}


def main() -> None:
    from helpers.core import console

    console.kit_lines_only()  # finetune leaves logging to its caller
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3, help="the same for every recipe")
    parser.add_argument("--model", default="fallback", help="base model id or folder")
    parser.add_argument("--profile", default="smoke", help="profile used to generate the pairs")
    args = parser.parse_args()

    from helpers.chunking.chunkers import load_chunks
    from helpers.core.models import load_embedding_model
    from helpers.training.dims import matryoshka_dims
    from helpers.training.rotation import add_corpus_rotation
    from helpers.training.trainer import finetune

    paths = sample_run(args.profile)
    chunks = load_chunks(paths.chunks)
    base = load_embedding_model(args.model).model
    dims = matryoshka_dims(base)
    scores = {"base": gold_ndcg(base, chunks, dims)}
    add_corpus_rotation(base, [c.text for c in chunks])
    scores["base, rotated"] = gold_ndcg(base, chunks, dims)
    configs = recipes(dims[0], epochs=args.epochs, profile=args.profile)
    configs = {"kit": configs["kit"], "kit, no rotation": replace(configs["kit"], corpus_rotation=False),
               "seed": configs["seed"]}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, cfg in configs.items():
            results[name] = finetune(paths.pairs, Path(tmp) / name, model_id=args.model, config=cfg,
                                     resume=False, progress=False)
            tuned = load_embedding_model(str(Path(tmp) / name), quiet=True).model
            scores[name] = gold_ndcg(tuned, chunks, dims)
    _report(scores, results, dims)


def _report(scores: dict[str, dict[int, float]], results: dict, dims: list[int]) -> None:
    names = list(scores)
    print(f"\nGold nDCG@10 ({len(dims)} dims; train pairs: {results['kit'].n_train}, "
          f"base: {results['kit'].base_model})")
    width = max(map(len, names))
    print("dim   " + "  ".join(f"{n:>{width}}" for n in names))
    for dim in dims:
        print(f"{dim:<5} " + "  ".join(f"{scores[n][dim]:{width}.3f}" for n in names))
    for name in results:
        r = results[name]
        settings = {k: r.config[k] for k in ("batch_size", "lr", "batch_sampler", "use_query_prompt", "dims")}
        print(f"{name}: {r.steps} steps in {r.train_seconds:.0f} s, loss {r.loss_start:.3f} -> "
              f"{r.loss_end:.3f}, {settings}")
    beats = all(scores["kit"][d] > scores["base"][d] for d in dims)
    small = min(d for d in dims if d >= 128)
    trained = all(scores["kit"][d] > scores["base, rotated"][d] for d in dims)
    print(f"kit beats base at every dim: {beats}; "
          f"kit@{small} >= base@{dims[0]}: {scores['kit'][small] >= scores['base'][dims[0]]}; "
          f"training beats the rotation alone at every dim: {trained}")


if __name__ == "__main__":
    main()
