"""Hard negatives: chunks the base model ranks high for a question but that are not its own, mined before
training."""

from __future__ import annotations

import logging

from helpers.core.embeddings import EmbeddingStore, StoredEncoder
from helpers.training.batches import chunk_of_anchor
from helpers.training.data import training_columns

logger = logging.getLogger(__name__)


def add_hard_negatives(dataset, model, corpus: list[str] | None = None, num_negatives: int = 1,
                       relative_margin: float = 0.05, range_min: int = 0, range_max: int = 50,
                       batch_size: int = 32, store: EmbeddingStore | None = None):
    """Add ``negative_1..n`` columns: chunks the model ranks high for the question but not its own.

    ``relative_margin`` drops candidates scoring within 5% of the positive (likely unlabelled positives,
    the NV-Retriever recipe); ``range_min`` skips the very top candidates as well. Only rows for which
    ``num_negatives`` negatives were found are kept. With ``store`` (the run's embedding store), the
    questions and chunks are encoded there at most once.
    """
    from sentence_transformers.util import mine_hard_negatives

    model = StoredEncoder(model, store, batch_size) if store else model
    mined = mine_hard_negatives(
        training_columns(dataset), model, anchor_column_name="anchor", positive_column_name="positive",
        corpus=corpus, num_negatives=num_negatives, relative_margin=relative_margin, range_min=range_min,
        range_max=range_max, sampling_strategy="top", query_prompt_name="query", output_format="n-tuple",
        batch_size=batch_size, verbose=False,
    )
    if num_negatives == 1 and "negative" in mined.column_names:
        mined = mined.rename_column("negative", "negative_1")
    return mined


def with_hard_negatives(train, model, corpus: list[str], num_negatives: int,
                        store: EmbeddingStore | None = None):
    """``train`` with mined negatives; the plain pairs when mining found negatives for no question."""
    mined = add_hard_negatives(train, model, corpus, num_negatives, store=store)
    if chunk_of := chunk_of_anchor(train):  # the batch sampler keeps a chunk's pairs apart by its id
        mined = mined.add_column("chunk_id", [chunk_of[a] for a in mined["anchor"]])
    logger.info(f"Hard negatives: {num_negatives} per question for {len(mined)} of {len(train)} questions"
                + ("" if len(mined) else "; training on the plain pairs instead"))
    return mined if len(mined) else train
