"""Static embeddings vs the MiniLM fallback on this CPU: training and encoding speed, and gold nDCG@10.

    python benchmarks/bench_static_vs_minilm.py [--epochs 3] [--static-lr 0.02]

Both models are fine-tuned with the kit's recipe, each with its preset's learning rate, on the same
offline pairs of the sample corpus (built once under runs/bench-training-smoke/), with validation off so
that pairs/s is training alone. Encoding speed is the corpus chunks encoded per second by the base model
(after one warm-up batch). Quality is nDCG@10 at the full dimension on the hand-written gold questions,
which neither model trained on. The static model is the one distilled offline from the fallback (model2vec,
cached after its first use). Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench_training_quality import gold_ndcg
from training_common import sample_run

MODELS = {"static": "static-distilled", "MiniLM": "fallback"}


def encode_speed(model, texts: list[str], batch_size: int = 32) -> float:
    """Sentences per second over ``texts``, after a warm-up batch."""
    model.encode(texts[:batch_size], batch_size=batch_size)
    started = time.perf_counter()
    model.encode(texts, batch_size=batch_size)
    return len(texts) / (time.perf_counter() - started)


def measure(preset: str, paths, chunks, epochs: int, lr: float | None, out: Path) -> dict:
    """Speeds and gold nDCG@10 (base, fine-tuned) of one model."""
    from helpers.core.models import load_embedding_model
    from helpers.training.settings import TrainConfig
    from helpers.training.trainer import finetune

    loaded = load_embedding_model(preset, quiet=True)
    dim = loaded.model.get_embedding_dimension()
    overrides = {"epochs": epochs, "evals_per_run": 0} | ({"lr": lr} if lr else {})
    cfg = TrainConfig.from_profile("smoke", preset=loaded.preset, **overrides)
    result = finetune(paths.pairs, out, model_id=preset, config=cfg, resume=False, progress=False)
    tuned = load_embedding_model(str(out), quiet=True).model
    return {"loaded": loaded.loaded, "dim": dim, "lr": cfg.lr, "batch": cfg.batch_size, "steps": result.steps,
            "pairs/s": result.pairs_per_second,
            "sentences/s": encode_speed(loaded.model, [c.text for c in chunks]),
            "gold base": gold_ndcg(loaded.model, chunks, [dim])[dim],
            "gold fine-tuned": gold_ndcg(tuned, chunks, [dim])[dim]}


def main() -> None:
    from helpers.core import console

    console.kit_lines_only()  # finetune leaves logging to its caller
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3, help="the same for both models")
    parser.add_argument("--static-lr", type=float, default=None, help="default: the static preset's")
    args = parser.parse_args()

    from helpers.chunking.chunkers import load_chunks

    paths = sample_run("smoke")
    chunks = load_chunks(paths.chunks)
    lrs = {"static": args.static_lr}
    with tempfile.TemporaryDirectory() as tmp:
        rows = {name: measure(preset, paths, chunks, args.epochs, lrs.get(name), Path(tmp) / name)
                for name, preset in MODELS.items()}
    _report(rows, chunks)


def _report(rows: dict[str, dict], chunks) -> None:
    static, minilm = rows["static"], rows["MiniLM"]
    print(f"\n{len(chunks)} corpus chunks; gold nDCG@10 at each model's full dimension")
    print(f"{'':<16}" + "".join(f"{name:>14}" for name in rows) + f"{'static/MiniLM':>16}")
    for key in ("dim", "lr", "batch", "steps", "pairs/s", "sentences/s", "gold base", "gold fine-tuned"):
        ratio = f"{static[key] / minilm[key]:>15.1f}x" if key in ("pairs/s", "sentences/s") else ""
        print(f"{key:<16}" + "".join(f"{_fmt(r[key]):>14}" for r in rows.values()) + ratio)
    print("static:", static["loaded"], "| MiniLM:", minilm["loaded"])


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if value < 1 else f"{value:,.1f}"
    return str(value)


if __name__ == "__main__":
    main()
