"""Peak memory and seconds of the main job's parts that grow with the corpus, at corpus sizes of your choice,
without running the job (no model is loaded).

    python benchmarks/bench_memory_at_scale.py --chunks runs/<run>/chunks.jsonl [--sizes 4000 40000]

Each part runs alone, in its own process, on the first N chunks of a ``chunks.jsonl`` (a run's, e.g. the
chunk stage of ``bench_scaling.py --stage chunk``; cycled when N is larger), with seeded random unit
vectors (384 dims, MiniLM's) where the job would have embeddings: what these parts hold does not depend
on the vectors' values. The parts, each through the kit's own function:

- ``dedup``: the chunk stage's exact and near-duplicate filter (``chunkers.filter_chunks``);
- ``rotation``: the corpus rotation's fit on N chunk vectors (``rotation.principal_rotation``), done in the
  train stage and again for the evaluation's rotated-base row;
- ``questions``: the offline questions' near-duplicate check (``pairs.near_duplicate_of``) on 2 questions
  per chunk (``smoke``);
- ``bm25``: the evaluation's BM25 row (``stage.run_bm25``: index N chunks, rank 300 queries);
- ``qdrant``: the RAG index in local mode, in a folder (``chain.qdrant_client``), N points uploaded in the
  RAG stage's batches with their payloads.

Printed side by side: seconds and peak resident memory (MB, the process' maximum RSS) per part and size,
and the process' RSS before the part (imports and the chunks). Numbers are printed, never asserted.
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DIM = 384
PARTS = ["dedup", "rotation", "questions", "bm25", "qdrant"]


def load(chunks_path: Path, n: int) -> list:
    """The first ``n`` chunks of ``chunks_path``, cycled (with fresh ids) when it holds fewer."""
    from dataclasses import replace

    from helpers.chunking.chunkers import load_chunks

    chunks = load_chunks(chunks_path)
    return [replace(c, id=f"{c.id}-{i}") for i, c in zip(range(n), itertools.cycle(chunks))]


def unit_vectors(n: int, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def run_part(part: str, chunks: list) -> None:
    """Run one part on ``chunks`` (see the module docstring)."""
    if part == "dedup":
        from helpers.chunking.chunkers import filter_chunks

        filter_chunks(chunks)
    elif part == "rotation":
        from helpers.training.rotation import principal_rotation

        principal_rotation(unit_vectors(len(chunks)))
    elif part == "questions":
        from helpers.questions.pairs import near_duplicate_of

        near_duplicate_of(unit_vectors(2 * len(chunks)), threshold=0.95)
    elif part == "bm25":
        bm25(chunks)
    elif part == "qdrant":
        qdrant(chunks)


def bm25(chunks: list, n_queries: int = 300) -> None:
    """Rank ``n_queries`` queries (a chunk's first 12 words each) against every chunk with BM25."""
    from helpers.evaluation.metrics import IRData
    from helpers.evaluation.stage import run_bm25

    asked = chunks[:: max(1, len(chunks) // n_queries)][:n_queries]
    queries = {f"q{i}": " ".join(c.text.split()[:12]) for i, c in enumerate(asked)}
    relevant = {f"q{i}": {c.id} for i, c in enumerate(asked)}
    run_bm25(IRData(queries, {c.id: c.text for c in chunks}, relevant))


def qdrant(chunks: list) -> None:
    """Upload ``chunks`` with random vectors into a local Qdrant folder, as the RAG stage does."""
    from qdrant_client import models

    from helpers.rag.chain import INDEX_BATCH, payload, point_id, qdrant_client

    vectors = unit_vectors(len(chunks))
    with tempfile.TemporaryDirectory(prefix="bench-qdrant-") as folder:
        client = qdrant_client(Path(folder))
        client.create_collection("chunks", vectors_config=models.VectorParams(
            size=DIM, distance=models.Distance.COSINE))
        for i in range(0, len(chunks), INDEX_BATCH):
            client.upsert("chunks", [models.PointStruct(id=point_id(c), vector=v.tolist(), payload=payload(c))
                                     for c, v in zip(chunks[i:i + INDEX_BATCH], vectors[i:i + INDEX_BATCH],
                                                     strict=True)])
        client.query_points("chunks", query=vectors[0].tolist(), limit=10)
        client.close()


def child(part: str, chunks_path: Path, n: int) -> None:
    """In the measuring process: load the chunks, run the part, print seconds and memory as JSON."""
    chunks = load(chunks_path, n)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    run_part(part, chunks)
    print(json.dumps({"seconds": time.perf_counter() - started, "before_mb": before,
                      "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def measure(part: str, chunks_path: Path, n: int) -> dict:
    """One part at one size, in a process of its own."""
    out = subprocess.run([sys.executable, __file__, "--chunks", str(chunks_path), "--child", part,
                          "--sizes", str(n)], capture_output=True, text=True, cwd=REPO)
    if out.returncode:
        raise SystemExit(f"{part} at {n} chunks failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def report(results: dict[tuple[str, int], dict], parts: list[str], sizes: list[int]) -> None:
    print(f"\n{'part':<12}" + "".join(f"{f'{n} chunks':>30}" for n in sizes))
    print(f"{'':<12}" + "".join(f"{'s / peak MB (before)':>30}" for _ in sizes))
    for part in parts:
        cells = (results[part, n] for n in sizes)
        print(f"{part:<12}" + "".join(
            f"{r['seconds']:>13.1f}{r['peak_mb']:>10.0f} ({r['before_mb']:>4.0f})" for r in cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=Path, required=True, help="a run's chunks.jsonl")
    parser.add_argument("--sizes", type=int, nargs="+", default=[4000, 40000], help="chunk counts")
    parser.add_argument("--parts", nargs="+", default=PARTS, choices=PARTS)
    parser.add_argument("--child", choices=PARTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.chunks, args.sizes[0])
        return
    results = {}
    for part in args.parts:
        for n in args.sizes:
            results[part, n] = measure(part, args.chunks, n)
            print(f"{part} at {n} chunks: {results[part, n]['seconds']:.1f} s, "
                  f"peak {results[part, n]['peak_mb']:.0f} MB", flush=True)
    report(results, args.parts, args.sizes)


if __name__ == "__main__":
    main()
