"""Batches that never hold two pairs of one chunk.

With in-batch negatives every other pair's passage is a negative for a question, so a second pair on the
same chunk is a false negative. sentence-transformers' ``NoDuplicatesBatchSampler`` catches that by equal
texts only; inverse-cloze pairs of one chunk have different positives (each lacks its own query sentence),
so the sampler here also compares the pairs' chunk ids.
"""

from __future__ import annotations


def chunk_of_anchor(train) -> dict[str, str]:
    """Question -> chunk id for a pairs split with a ``chunk_id`` column (empty without one)."""
    if "chunk_id" not in train.column_names:
        return {}
    return dict(zip(train["anchor"], train["chunk_id"], strict=True))


def keep_chunks_apart(trainer, chunk_of: dict[str, str]) -> None:
    """Make ``trainer`` sample batches without duplicate texts or chunk ids (questions unknown to
    ``chunk_of`` count as their own chunk)."""
    from sentence_transformers.base.sampler import NoDuplicatesBatchSampler

    def get_batch_sampler(dataset, batch_size, drop_last, valid_label_columns=None, generator=None, seed=0):
        keys = dataset.add_column("chunk", [chunk_of.get(a, a) for a in dataset["anchor"]])
        return NoDuplicatesBatchSampler(keys, batch_size, drop_last, valid_label_columns, generator, seed)

    trainer.get_batch_sampler = get_batch_sampler
