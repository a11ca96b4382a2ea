"""Throughput of the chunking stage: loading + cleaning PDFs, then each chunking strategy and the filters.

    python benchmarks/bench_chunking.py [--pdfs data/sample] [--repeat 3]

Prints pages/s for loading and cleaning, chunks/s (and pages/s) for each strategy with the offline
fallback model's tokenizer, and the best of ``--repeat`` runs for each.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

from helpers.chunking.chunkers import STRATEGIES, chunk_documents, filter_chunks, token_budget
from helpers.chunking.pdfs import load_pdfs
from helpers.core import config


def best_time(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    """The fastest of ``repeat`` runs of ``fn`` and its last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pdfs", type=Path, default=config.SAMPLE_CORPUS_DIR, help="folder of PDFs")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (best is kept)")
    args = parser.parse_args()

    budget = token_budget()  # loaded once, outside the timings
    seconds, loaded = best_time(lambda: load_pdfs(args.pdfs, progress=False), args.repeat)
    pages = loaded.pages
    n_docs = len({p.source for p in pages})
    print(f"\n{len(pages)} pages in {n_docs} documents from {args.pdfs}; tokenizer "
          f"{budget.tokenizer.name_or_path} (limit {budget.passage_limit} tokens)\n")
    print(f"{'step':<22}{'seconds':>9}{'pages/s':>10}{'chunks':>8}{'chunks/s':>10}")
    print(f"{'load + clean':<22}{seconds:>9.2f}{len(pages) / seconds:>10.1f}{'':>8}{'':>10}")
    for strategy in STRATEGIES:
        seconds, chunks = best_time(
            lambda s=strategy: chunk_documents(pages, s, tokenizer=budget, progress=False), args.repeat)
        print(f"{strategy:<22}{seconds:>9.2f}{len(pages) / seconds:>10.1f}{len(chunks):>8}"
              f"{len(chunks) / seconds:>10.1f}")
        filter_seconds, (kept, _) = best_time(lambda c=chunks: filter_chunks(c), args.repeat)
        print(f"{'  + filter_chunks':<22}{filter_seconds:>9.3f}{'':>10}{len(kept):>8}"
              f"{len(chunks) / filter_seconds:>10.0f}")


if __name__ == "__main__":
    main()
