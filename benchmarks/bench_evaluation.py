"""Encode-once evaluation vs sentence-transformers' InformationRetrievalEvaluator run once per dimension.

Both score the same queries and corpus with the offline MiniLM at 384/256/128/64/32 dimensions; the
numbers must agree to 1e-6 and the encode-once path should be several times faster, because the evaluator
re-encodes everything for every dimension.

    python benchmarks/bench_evaluation.py [--passages 300] [--queries 100]

The corpus is the sample PDFs' chunks, topped up with generated passages; each query is one sentence
of a passage (inverse cloze), and that passage is its relevant document.
"""

from __future__ import annotations

import argparse
import random
import re
import tempfile
import time
from pathlib import Path

from helpers.core import config
from helpers.core.models import load_embedding_model
from helpers.evaluation.metrics import METRICS, IRData, aggregate, evaluate_model

DIMS = [384, 256, 128, 64, 32]


def sample_chunks() -> list[str]:
    """Texts of the sample corpus' chunks (none if the sample PDFs are missing)."""
    from helpers.chunking.chunkers import build_chunks, load_chunks

    if not any(config.SAMPLE_CORPUS_DIR.glob("*.pdf")):
        return []
    with tempfile.TemporaryDirectory() as tmp:
        build_chunks(config.SAMPLE_CORPUS_DIR, Path(tmp) / "chunks.jsonl")
        return [c.text for c in load_chunks(Path(tmp) / "chunks.jsonl")]


def generated_passages(n: int, words: list[str], seed: int = 0) -> list[str]:
    """``n`` passages of 6-8 sentences of random words drawn from ``words``."""
    rng = random.Random(seed)

    def sentence() -> str:
        return " ".join(rng.choices(words, k=rng.randint(8, 15))).capitalize() + "."

    return [" ".join(sentence() for _ in range(rng.randint(6, 8))) for _ in range(n)]


def build_data(n_passages: int, n_queries: int, seed: int = 0) -> IRData:
    """Corpus of ``n_passages`` and ``n_queries`` inverse-cloze queries with one relevant passage each."""
    texts = sample_chunks()[:n_passages]
    words = sorted({w for t in texts for w in re.findall(r"[a-z]{4,}", t.lower())}) or ["alpha", "beta"]
    texts += generated_passages(n_passages - len(texts), words, seed)
    corpus = {f"d{i:05d}": t for i, t in enumerate(texts)}
    rng = random.Random(seed)
    picked = rng.sample(sorted(corpus), min(n_queries, len(corpus)))
    queries = {f"q{i}": rng.choice(re.split(r"(?<=[.!?])\s+", corpus[cid])) for i, cid in enumerate(picked)}
    return IRData(queries, corpus, {f"q{i}": {cid} for i, cid in enumerate(picked)})


def main(argv: list[str] | None = None) -> None:
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--passages", type=int, default=300)
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args(argv)

    model = load_embedding_model("fallback", device="cpu").model
    data = build_data(args.passages, args.queries)
    print(f"{len(data.queries)} queries, {len(data.corpus)} passages, dims {DIMS}")
    model.encode(["warm-up"] * 4)

    started = time.perf_counter()
    ours = {d: aggregate(pq) for d, pq in evaluate_model(model, data, DIMS, show_progress=False).items()}
    ours_s = time.perf_counter() - started

    started = time.perf_counter()
    theirs = {d: InformationRetrievalEvaluator(data.queries, data.corpus, data.relevant, truncate_dim=d,
                                               write_csv=False)(model) for d in DIMS}
    theirs_s = time.perf_counter() - started

    print(f"\n{'dim':>5} {'ndcg@10 ours':>13} {'ndcg@10 evaluator':>18} {'max |diff| (15 metrics)':>24}")
    diffs = {d: max(abs(ours[d][m] - theirs[d][f"cosine_{m}"]) for m in METRICS) for d in DIMS}
    for d in DIMS:
        print(f"{d:>5} {ours[d]['ndcg@10']:>13.6f} {theirs[d]['cosine_ndcg@10']:>18.6f} {diffs[d]:>24.2e}")
    worst = max(diffs.values())
    print()
    for label, value in ((f"encode once, score {len(DIMS)} dims", f"{ours_s:.1f} s"),
                         (f"evaluator once per dim (x{len(DIMS)})", f"{theirs_s:.1f} s"),
                         ("speedup", f"{theirs_s / ours_s:.1f}x"),
                         ("max abs diff, all dims", f"{worst:.2e} ({'OK' if worst < 1e-6 else 'MISMATCH'})")):
        print(f"{label:<32}: {value}")
    if worst >= 1e-6:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
