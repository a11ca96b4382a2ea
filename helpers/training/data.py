"""What training reads: the pairs, the corpus it may see, and what validation searches and scores."""

from __future__ import annotations

import logging
import random
from collections.abc import Collection
from pathlib import Path

from helpers.core.io import read_jsonl
from helpers.questions.pairs import UNSEEN
from helpers.questions.pairs import load_pairs as load_saved_pairs

logger = logging.getLogger(__name__)

PAIR_COLUMNS = ("anchor", "positive")


def load_pairs(pairs_dir: Path | str):
    """The pairs ``DatasetDict`` saved by the questions stage, checked for what training needs."""
    pairs = load_saved_pairs(pairs_dir)
    if "train" not in pairs or len(pairs["train"]) < 2:
        raise ValueError(f"{pairs_dir} needs a 'train' split with at least 2 pairs.")
    missing = set(PAIR_COLUMNS) - set(pairs["train"].column_names)
    if missing:
        raise ValueError(f"{pairs_dir} lacks column(s) {sorted(missing)}; expected anchor and positive.")
    return pairs


def training_columns(dataset):
    """Keep what the loss reads: anchor, positive, then any mined negatives (other columns would be texts)."""
    keep = [*PAIR_COLUMNS, *(c for c in dataset.column_names if c.startswith("negative"))]
    return dataset.select_columns(keep)


def retrieval_corpus(pairs, chunks_path: Path | None = None, held_out: Collection[str] = ()
                     ) -> dict[str, str]:
    """Chunk id -> text of what training may see (the rotation, validation and mined negatives use it): the
    run's chunks.jsonl without the ``held_out`` documents' chunks when present, else each chunk's longest
    positive in the pairs but the unseen split (a positive is the chunk's text, or the chunk without the
    query sentence for inverse cloze)."""
    if chunks_path is not None and chunks_path.is_file():
        return {row["id"]: row["text"] for row in read_jsonl(chunks_path) if row["source"] not in held_out}
    corpus: dict[str, str] = {}
    for name, split in pairs.items():
        for cid, text in zip(split["chunk_id"], split["positive"], strict=True) if name != UNSEEN else ():
            corpus[cid] = max(corpus.get(cid, ""), text, key=len)
    return corpus


def validation_corpus(validation, corpus: dict[str, str], distractors: int, seed: int = 42) -> dict[str, str]:
    """The validation questions' own chunks plus ``distractors`` other chunks drawn with ``seed``: the same
    set at every evaluation, a size that does not grow with the corpus (the evaluation stage searches all)."""
    own = [cid for cid in dict.fromkeys(validation["chunk_id"]) if cid in corpus]
    others = sorted(set(corpus) - set(own))
    drawn = random.Random(seed).sample(others, min(max(0, distractors), len(others)))
    return {cid: corpus[cid] for cid in [*own, *sorted(drawn)]}


def build_evaluator(validation, corpus: dict[str, str], dims: list[int], batch_size: int = 32):
    """Retrieval metrics at every Matryoshka dim on the validation questions (None if none can be scored)."""
    from helpers.training.validation import matryoshka_evaluator

    queries = dict(zip(validation["id"], validation["anchor"], strict=True))
    relevant = {qid: {cid} for qid, cid in zip(validation["id"], validation["chunk_id"], strict=True)
                if cid in corpus}
    return matryoshka_evaluator(queries, corpus, relevant, dims, batch_size) if relevant else None


def best_metric_name(model, dims: list[int]) -> str:
    """The validation metric that picks the checkpoint: nDCG@10 at the full dimension."""
    return f"eval_dim_{dims[0]}_{model.similarity_fn_name}_ndcg@10"


def describe_validation(validation, searched: dict[str, str], corpus: dict[str, str], seed: int,
                        steps: dict, progress: bool = True) -> dict:
    """What validation searches and how often (printed with ``progress``, and kept in the result the
    report reads)."""
    own = len(set(validation["chunk_id"]) & set(searched))
    info = {"questions": len(validation), "chunks": len(searched), "distractors": len(searched) - own,
            "corpus_chunks": len(corpus), "seed": seed, "evaluations": steps["evaluations"]}
    if progress:
        logger.info(f"Validation: {info['questions']} questions against {info['chunks']} chunks (their own "
                    f"and {info['distractors']} others drawn with seed {seed}, the same at every "
                    f"evaluation), {info['evaluations']} evaluations; the evaluation stage searches every "
                    "chunk")
    return info
