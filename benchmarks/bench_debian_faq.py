"""Human questions on documents nobody here wrote: base, rotated base and fine-tuned on the Debian FAQ.

    python benchmarks/corpora/build_debian_faq.py        # once: 16 PDFs + 119 questions
    python benchmarks/bench_debian_faq.py [--profile smoke] [--model fallback] [--tag NAME]

The kit's own chunk, questions and train stages run on the FAQ's PDFs (and on the sample corpus, whose
hand-written gold questions are the second query set), exactly as ``python -m helpers run`` runs them.
The FAQ's question headings, removed from the PDFs, are the queries; a chunk is relevant when it is mostly
the text of the answer section (``benchmarks/corpora/relevance.py``). Printed side by side for every
Matryoshka dimension: nDCG@10 of BM25, the base model, the base rotated onto the chunks (what fine-tuning
starts from) and the fine-tuned model, with 95% bootstrap intervals, and paired tests of fine-tuned
against base and against the rotated base. Then the merge with the base that training made
(``helpers.training.merge``): the α kept, validation nDCG@10 of base, fine-tuned and saved model, and on
the FAQ the same three on the sample corpus's gold questions, a collection the run never saw (the
targets: the saved model never below the fine-tuned one on validation, and within 0.01 of the base on
the foreign collection). Runs go to ``data/downloads/bench/runs/<tag>-<corpus>``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks" / "corpora")]

from relevance import relevant_chunk_ids  # noqa: E402

from helpers.core import config  # noqa: E402

FAQ_DIR = REPO / "data" / "downloads" / "bench" / "debian-faq"
RUNS_DIR = REPO / "data" / "downloads" / "bench" / "runs"
TRAIN_STAGES = ("chunk", "questions", "train")


def train_on(pdf_dir: Path, run: str, profile: str | config.Profile, model: str) -> config.RunPaths:
    """The kit's chunk, questions and train stages on ``pdf_dir`` (offline questions), as the CLI does."""
    from helpers.core.settings import RunSettings
    from helpers.pipeline.runner import run_all
    from helpers.pipeline.stages import STAGES

    profile = profile if isinstance(profile, config.Profile) else config.get_profile(profile)
    settings = RunSettings(pdf_dir=pdf_dir, model_id=model, profile=profile, run=run, runs_dir=RUNS_DIR,
                           generator="offline")
    run_all([s for s in STAGES if s.name in TRAIN_STAGES], settings)
    return settings.paths


def faq_queries(chunks, questions: Path = FAQ_DIR / "questions.jsonl") -> tuple[object, int]:
    """The FAQ's questions (``questions``: a questions.jsonl of build_debian_faq.py's, or a copy of it) as
    IRData over ``chunks`` (relevance by answer overlap), and how many had no relevant chunk (left out)."""
    from helpers.evaluation.metrics import IRData, corpus_of

    rows = [json.loads(line) for line in Path(questions).read_text().splitlines()]
    corpus = corpus_of(chunks)
    relevant = {r["id"]: set(relevant_chunk_ids(r["answer"], corpus)) for r in rows}
    kept = {r["id"]: r["query"] for r in rows if relevant[r["id"]]}
    data = IRData(kept, corpus, {q: relevant[q] for q in kept}, {"query_set": "debian-faq"})
    return data, len(rows) - len(kept)


def gold_queries(chunks):
    """The sample corpus' hand-written gold questions over its chunks."""
    from helpers.evaluation.metrics import ir_from_gold

    return ir_from_gold(chunks)


def score(paths: config.RunPaths, data, model: str) -> dict:
    """Per system, per dimension: mean nDCG@10 with its interval; paired tests of the fine-tuned model."""
    from helpers.core.embeddings import run_store
    from helpers.evaluation.stage import metric_table, run_systems, training_info
    from helpers.evaluation.stats import paired_test
    from helpers.evaluation.systems import BASE, BASE_ROTATED, FINETUNED

    trained = training_info(paths.model).get("config", {})
    _, runs = run_systems({BASE: model, FINETUNED: str(paths.model)}, {"q": data}, run_store(paths),
                          trained.get("dims"), rotated_base=True,
                          max_seq_length=trained.get("max_seq_length"))
    runs = runs["q"]
    tables = {system: metric_table(run) for system, run in runs.items()}
    tuned = runs[FINETUNED].per_query
    tests = {(other, dim): paired_test(runs[other].per_query[dim]["ndcg@10"], tuned[dim]["ndcg@10"])
             for other in (BASE, BASE_ROTATED) if other in runs for dim in tuned
             if dim in runs[other].per_query}
    return {"tables": tables, "tests": tests, "dims": list(tuned), "n_queries": len(data.queries)}


def print_scores(title: str, result: dict) -> None:
    from helpers.evaluation.systems import BASE, BASE_ROTATED, BM25, FINETUNED, NO_DIM

    tables, dims = result["tables"], result["dims"]
    print(f"\n{title}: {result['n_queries']} queries, nDCG@10 [95% interval]")
    bm25 = tables[BM25][NO_DIM]["ndcg@10"]
    print(f"  BM25: {bm25['mean']:.3f} [{bm25['low']:.3f}, {bm25['high']:.3f}]")
    systems = [s for s in (BASE, BASE_ROTATED, FINETUNED) if s in tables]
    print("  dim   " + "".join(f"{s:>24}" for s in systems) + "   tuned-base  tuned-rotated (p)")
    for dim in dims:
        cells = []
        for s in systems:
            row = tables[s].get(dim, {}).get("ndcg@10")
            cells.append(f"{row['mean']:.3f} [{row['low']:.3f},{row['high']:.3f}]" if row else "-")
        diffs = [result["tests"].get((other, dim)) for other in (BASE, BASE_ROTATED)]
        text = "  ".join(f"{d['mean_diff']:+.3f} ({d['p_value']:.3f})" if d else "-" for d in diffs)
        print(f"  {dim:<5} " + "".join(f"{c:>24}" for c in cells) + f"   {text}")


def print_merge(paths: config.RunPaths) -> None:
    """The merge training made, and its retention proxy, as the training stage recorded them."""
    from helpers.evaluation.stage import training_info
    from helpers.training.foreign import foreign_summary
    from helpers.training.merge import merge_summary

    merge = training_info(paths.model)["result"]["merge"]
    print(f"  {merge_summary(merge)}")
    if merge.get("foreign"):
        print(f"  {foreign_summary(merge['foreign'])}")


def main() -> None:
    from helpers.core import console

    console.kit_lines_only()  # the kit's lines, not the libraries' bars and load reports, as the CLI
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="smoke", choices=sorted(config.PROFILES))
    parser.add_argument("--model", default="fallback", help="base model (offline: the bundled MiniLM)")
    parser.add_argument("--tag", default="main", help="names the run folders, e.g. a branch or a setting")
    parser.add_argument("--corpus", choices=("both", "faq", "sample"), default="both")
    args = parser.parse_args()
    if not (FAQ_DIR / "questions.jsonl").is_file():
        raise SystemExit(f"No benchmark at {FAQ_DIR}: run python benchmarks/corpora/build_debian_faq.py")
    from helpers.chunking.chunkers import load_chunks

    started = time.perf_counter()
    results = {}
    if args.corpus in ("both", "faq"):
        paths = train_on(FAQ_DIR, f"{args.tag}-faq-{args.profile}", args.profile, args.model)
        data, unlabelled = faq_queries(load_chunks(paths.chunks))
        results["faq"] = score(paths, data, args.model)
        print_scores(f"Debian FAQ ({unlabelled} questions without a relevant chunk left out)", results["faq"])
        print_merge(paths)
    if args.corpus in ("both", "sample"):
        paths = train_on(config.SAMPLE_CORPUS_DIR, f"{args.tag}-sample-{args.profile}", args.profile,
                         args.model)
        results["sample"] = score(paths, gold_queries(load_chunks(paths.chunks)), args.model)
        print_scores("Sample corpus, gold questions", results["sample"])
        print_merge(paths)
    out = RUNS_DIR / f"{args.tag}-{args.profile}.json"
    out.write_text(json.dumps({k: {**v, "tests": {f"{a}@{d}": t for (a, d), t in v["tests"].items()}}
                               for k, v in results.items()}, indent=1))
    print(f"\n{time.perf_counter() - started:.0f} s; numbers in {out}")


if __name__ == "__main__":
    main()
