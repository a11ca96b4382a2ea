"""The questions the RAG chain is scored on: the gold set and the synthetic test split, each capped."""

from __future__ import annotations

import logging
import random
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from helpers.core import config
from helpers.core.schema import Chunk

logger = logging.getLogger(__name__)


@dataclass
class EvalQuestion:
    """A question, the chunks that answer it (none: unanswerable) and, for gold ones, a reference answer."""

    id: str
    question: str
    reference_ids: list[str] = field(default_factory=list)
    reference_contexts: list[str] = field(default_factory=list)
    reference: str = ""

    @property
    def answerable(self) -> bool:
        return bool(self.reference_ids)


def gold_questions(chunks: Sequence[Chunk], questions: Sequence | None = None) -> list[EvalQuestion]:
    """The gold set (default: bundled); reference contexts are the chunks holding each evidence quote.

    Answerable questions whose evidence is in none of ``chunks`` are left out, with a warning; when that is
    every one of them, the set was written for another corpus: ValueError.
    """
    from helpers.core.gold import load_gold, relevant_chunk_ids

    questions = load_gold() if questions is None else list(questions)
    relevant = relevant_chunk_ids(questions, chunks)
    text = {c.id: c.text for c in chunks}
    rows = []
    for q in questions:
        ids = sorted(relevant.get(q.id, ()))  # unanswerable questions have none
        if ids or not q.answerable:
            rows.append(EvalQuestion(q.id, q.question, ids, [text[i] for i in ids], q.reference_answer or ""))
    answerable = sum(q.answerable for q in questions)
    if answerable and not any(r.answerable for r in rows):
        raise ValueError("No gold question has its evidence in these chunks: the gold set was written for "
                         "another corpus.")
    if missing := answerable - sum(r.answerable for r in rows):
        warnings.warn(f"{missing} answerable gold questions have no evidence in these chunks and are "
                      "left out.", stacklevel=2)
    return rows


def synthetic_questions(pairs_dir: Path | str, chunks: Sequence[Chunk],
                        split: str = "test") -> list[EvalQuestion]:
    """Generated questions of one split; the reference context is the text of each question's chunk (not
    the pair's positive, which inverse cloze shortens)."""
    from datasets import load_from_disk

    pairs = load_from_disk(str(pairs_dir))
    if split not in pairs:
        raise ValueError(f"{pairs_dir} has no {split!r} split (it has: {', '.join(pairs)}).")
    text = {c.id: c.text for c in chunks}
    rows = pairs[split].select_columns(["id", "anchor", "chunk_id"]).to_list()
    return [EvalQuestion(r["id"], r["anchor"], [r["chunk_id"]], [text[r["chunk_id"]]])
            for r in rows if r["chunk_id"] in text]


def capped(rows: Sequence[EvalQuestion], cap: int | None, seed: int = 42) -> list[EvalQuestion]:
    """A seeded sample of ``cap`` rows, in order; unanswerable ones take up to a quarter of it."""
    if cap is None or len(rows) <= cap:
        return list(rows)
    rng = random.Random(seed)
    answerable = [r for r in rows if r.answerable]
    unanswerable = [r for r in rows if not r.answerable]
    n_answerable = min(len(answerable), cap - min(len(unanswerable), max(1, cap // 4)))
    picked = rng.sample(answerable, n_answerable) + rng.sample(unanswerable, cap - n_answerable)
    kept = {id(r) for r in picked}
    return [r for r in rows if id(r) in kept]


def query_sets(paths: config.RunPaths, chunks: Sequence[Chunk], max_questions: int | None = None,
               gold: Sequence | None = None) -> dict[str, list[EvalQuestion]]:
    """The gold questions (skipped, with the reason, when written for another corpus) and the synthetic
    test split, each capped at ``max_questions``."""
    from helpers.core.gold import load_run_gold

    gold = load_run_gold(paths.root, chunks) if gold is None else gold
    sets = {"synthetic test": synthetic_questions(paths.pairs, chunks)}
    try:
        sets = {"gold": gold_questions(chunks, gold)} | sets
    except ValueError as exc:
        logger.info(f"Gold questions skipped: {exc}")
    return {name: capped(rows, max_questions) for name, rows in sets.items()}
