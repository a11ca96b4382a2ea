"""Sequential vs concurrent LLM question generation against a local server with a fixed latency.

The server (``helpers.testing.fake_llm``) answers every request after ``--latency`` seconds, like a real
endpoint does; the generator's requests are I/O-bound, so bounded concurrency should multiply the
throughput by about the concurrency (here well over 5x). No cache, so every run makes every request.

    python benchmarks/bench_question_generation.py [--chunks 200] [--latency 0.2] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import time

from helpers.core.llm import LLMSettings
from helpers.questions.generate import generate
from helpers.testing.chunks import sample_chunks
from helpers.testing.fake_llm import FakeLLM


def pairs_per_second(n_chunks: int, latency_s: float, concurrency: int, per_chunk: int = 3) -> float:
    chunks = sample_chunks(n_chunks)
    with FakeLLM(latency_s=latency_s) as llm:
        settings = LLMSettings(model="fake", base_url=llm.base_url, api_key="sk-bench")
        started = time.perf_counter()
        result = generate(chunks, per_chunk, settings, cache_dir=None, concurrency=concurrency,
                          progress=False)
        seconds = time.perf_counter() - started
    assert not result.failures, result.failures[:3]
    return len(result.pairs) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per request")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    sequential = pairs_per_second(args.chunks, args.latency, 1)
    concurrent = pairs_per_second(args.chunks, args.latency, args.concurrency)
    print(f"\n{args.chunks} chunks, {args.latency * 1000:.0f} ms per request")
    print(f"{'concurrency 1':>16} {f'concurrency {args.concurrency}':>16} {'speed-up':>10}")
    print(f"{sequential:>10.1f} p/s {concurrent:>10.1f} p/s {concurrent / sequential:>9.1f}x")


if __name__ == "__main__":
    main()
