"""Batches keep a chunk's pairs apart, also when inverse cloze gives each pair its own positive."""

from __future__ import annotations

from types import SimpleNamespace

from datasets import Dataset

from helpers.training.batches import chunk_of_anchor, keep_chunks_apart


def ict_like_pairs(chunks: int = 10, per_chunk: int = 3) -> Dataset:
    """Pairs whose positives all differ (each lacks its own query sentence) but share their chunk's id."""
    return Dataset.from_list([
        {"anchor": f"Sentence {j} of chunk {c}.", "positive": f"Chunk {c} without sentence {j}.",
         "chunk_id": f"c{c}"} for c in range(chunks) for j in range(per_chunk)])


def test_no_batch_holds_two_pairs_of_one_chunk():
    from sentence_transformers.base.sampler import NoDuplicatesBatchSampler

    pairs = ict_like_pairs()
    texts = pairs.select_columns(["anchor", "positive"])  # what the loss reads, and the trainer samples
    trainer = SimpleNamespace()
    keep_chunks_apart(trainer, chunk_of_anchor(pairs))
    sampler = trainer.get_batch_sampler(texts, batch_size=8, drop_last=False, seed=1)
    seen = [[pairs[i]["chunk_id"] for i in batch] for batch in sampler]
    assert sum(map(len, seen)) == len(pairs) and all(len(set(b)) == len(b) for b in seen), seen
    by_text = [[pairs[i]["chunk_id"] for i in batch]
               for batch in NoDuplicatesBatchSampler(texts, batch_size=8, drop_last=False, seed=1)]
    assert any(len(set(b)) < len(b) for b in by_text), "texts alone cannot see these duplicates"


def test_questions_without_a_chunk_id_count_as_their_own_chunk():
    pairs = ict_like_pairs(chunks=4, per_chunk=1).remove_columns("chunk_id")
    assert chunk_of_anchor(pairs) == {}
    trainer = SimpleNamespace()
    keep_chunks_apart(trainer, {})
    assert sum(len(b) for b in trainer.get_batch_sampler(pairs, batch_size=2, drop_last=False)) == 4
