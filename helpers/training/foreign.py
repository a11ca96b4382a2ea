"""Offline retention proxy: the bundled sample corpus and its gold questions, a collection never trained on.

NanoBEIR needs the dataset hub; offline, the sample corpus (five policy documents) stands in for "other
text". When a run fine-tunes on the user's PDFs, the base, the fine-tuned and the merged model are scored
on the sample's hand-written gold questions (nDCG@10 at the full dimension, the validation's evaluator):
a fall there is what fine-tuning cost outside the user's collection. On the sample corpus itself the
proxy is skipped: those questions are about the very text trained on. The sample is chunked once per run
with the chunking stage's defaults (structure strategy, the default token budget) and cached in the run
folder.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from helpers.core.config import SAMPLE_CORPUS_DIR, RunPaths
from helpers.core.gold import load_gold, relevant_chunk_ids
from helpers.core.io import read_jsonl
from helpers.core.schema import Chunk

COLLECTION = "the bundled sample corpus's gold questions"


def skip_reason(run_chunks: Path) -> str | None:
    """Why the sample's gold questions are not a foreign collection for the run with ``run_chunks``;
    None when they are."""
    if not run_chunks.is_file():
        return f"no {run_chunks.name} beside the pairs, so the corpus cannot be told from the sample corpus"
    sample = {ev.document for q in load_gold() for ev in q.evidence}
    if sample & {row.get("source") for row in read_jsonl(run_chunks)}:
        return ("the run trains on the bundled sample corpus, so its gold questions are not foreign to the "
                "fine-tuned model")
    return None


def sample_chunks(cache: Path) -> list[Chunk]:
    """The sample corpus chunked with the chunking stage's defaults, made once and kept at ``cache``."""
    from helpers.chunking.chunkers import chunk_documents, filter_chunks, load_chunks, save_chunks
    from helpers.chunking.pdfs import load_pdfs

    if not cache.is_file():
        pages = load_pdfs(SAMPLE_CORPUS_DIR, progress=False).pages
        save_chunks(filter_chunks(chunk_documents(pages, "structure", progress=False))[0], cache)
    return load_chunks(cache)


def foreign_scorer(run_root: Path, dim: int, batch_size: int = 32) -> tuple[Callable | None, dict]:
    """``score(model) -> nDCG@10`` at ``dim`` on the sample's gold questions and what it searches, or
    (None, why it is skipped)."""
    paths = RunPaths(Path(run_root))
    why = skip_reason(paths.chunks)
    if why:
        return None, {"collection": COLLECTION, "skipped": True, "reason": why}
    from helpers.training.validation import matryoshka_evaluator

    chunks = sample_chunks(paths.foreign_sample_chunks)
    questions = [q for q in load_gold() if q.answerable]
    relevant = {qid: ids for qid, ids in relevant_chunk_ids(questions, chunks).items() if ids}
    queries = {q.id: q.question for q in questions if q.id in relevant}
    evaluator = matryoshka_evaluator(queries, {c.id: c.text for c in chunks}, relevant, [dim], batch_size)

    def score(model) -> float:
        return evaluator(model)[f"dim_{dim}_{model.similarity_fn_name}_ndcg@10"]

    return score, {"collection": COLLECTION, "skipped": False, "questions": len(queries),
                   "chunks": len(chunks), "metric": f"ndcg@10 at {dim} dims"}


def foreign_summary(record: dict) -> str:
    """The proxy's result in words: did fine-tuning (and the merge) cost retrieval on other text?"""
    if not record:
        return ""
    if record.get("skipped"):
        return f"Offline retention proxy ({COLLECTION}): skipped, {record['reason']}."
    s = record["scores"]
    change = s["merged"] - s["base"]
    meaning = ("no loss on text it was not trained on" if change >= -0.01 else
               f"{-change:.3f} lost on text it was not trained on")
    return (f"Offline retention proxy, {record['metric']} on {COLLECTION} ({record['questions']} questions, "
            f"{record['chunks']} chunks, never trained on): base {s['base']:.3f}, fine-tuned "
            f"{s['fine_tuned']:.3f}, saved model {s['merged']:.3f}: {meaning}.")
