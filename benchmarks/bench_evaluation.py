"""Encode-once evaluation vs sentence-transformers' InformationRetrievalEvaluator run once per dimension.

Both score the same queries and corpus with the offline MiniLM at 384/256/128/64/32 dimensions; the
numbers must agree to 1e-6 and the encode-once path should be several times faster, because the evaluator
re-encodes everything for every dimension.

    python benchmarks/bench_evaluation.py [--passages 300] [--queries 100]

The corpus is the sample PDFs' chunks, topped up with generated passages; each query is one sentence
of a passage (inverse cloze), and that passage is its relevant document.

    python benchmarks/bench_evaluation.py --memory [--queries 1000] [--sizes 100000,400000]

measures instead what scoring costs in memory at two corpus sizes, with random unit vectors (384 dims, no
model): each size in its own process, the peak resident memory that the evaluation adds (Linux' VmHWM,
reset after the embeddings are made) beside the embeddings themselves and the queries x chunks matrix
that scoring everything at once would have needed.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from helpers.core import config
from helpers.core.models import load_embedding_model
from helpers.evaluation.metrics import METRICS, IRData, aggregate, evaluate_embeddings, evaluate_model

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


def peak_mb() -> float:
    """This process' peak resident memory since the last reset (VmHWM), in MB."""
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024


def memory_one(n_queries: int, n_chunks: int, dim: int = 384, seed: int = 0) -> dict:
    """Peak memory added by scoring ``n_queries`` random queries against ``n_chunks`` random chunks."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    queries = torch.nn.functional.normalize(torch.randn(n_queries, dim, generator=generator), dim=1)
    corpus = torch.nn.functional.normalize(torch.randn(n_chunks, dim, generator=generator), dim=1)
    ids = [f"c{i}" for i in range(n_chunks)]
    rng = random.Random(seed)
    data = IRData(dict.fromkeys((f"q{i}" for i in range(n_queries)), ""), dict.fromkeys(ids, ""),
                  {f"q{i}": set(rng.sample(ids, 2)) for i in range(n_queries)})
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := the memory in use now
    before = peak_mb()
    started = time.perf_counter()
    ndcg = aggregate(evaluate_embeddings(queries, corpus, data, [dim])[dim])["ndcg@10"]
    mb = 4 / 2**20  # float32
    return {"queries": n_queries, "chunks": n_chunks, "embeddings_mb": (n_queries + n_chunks) * dim * mb,
            "dense_matrix_mb": n_queries * n_chunks * mb, "added_peak_mb": peak_mb() - before,
            "seconds": time.perf_counter() - started, "ndcg@10": ndcg}


def memory(n_queries: int, sizes: list[int]) -> None:
    """One process per corpus size, printed side by side."""
    rows = []
    for n in sizes:
        command = [sys.executable, __file__, "--memory-one", str(n), "--queries", str(n_queries)]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        rows.append(json.loads(done.stdout.splitlines()[-1]))
    print(f"{'chunks':>9} {'queries':>8} {'embeddings MB':>14} {'evaluation peak MB':>19} "
          f"{'one dense matrix MB':>20} {'seconds':>8}")
    for r in rows:
        print(f"{r['chunks']:>9} {r['queries']:>8} {r['embeddings_mb']:>14.0f} {r['added_peak_mb']:>19.0f} "
              f"{r['dense_matrix_mb']:>20.0f} {r['seconds']:>8.1f}")


def main(argv: list[str] | None = None) -> None:
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--passages", type=int, default=300)
    parser.add_argument("--queries", type=int, help="default: 100, or 1000 with --memory")
    parser.add_argument("--memory", action="store_true", help="peak memory at two corpus sizes instead")
    parser.add_argument("--sizes", type=lambda s: [int(n) for n in s.split(",")], default=[100_000, 400_000])
    parser.add_argument("--memory-one", type=int, help=argparse.SUPPRESS)  # the child process of --memory
    args = parser.parse_args(argv)
    if args.memory_one:
        print(json.dumps(memory_one(args.queries, args.memory_one)))
        return
    if args.memory:
        memory(args.queries or 1000, args.sizes)
        return

    model = load_embedding_model("fallback", device="cpu").model
    data = build_data(args.passages, args.queries or 100)
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
