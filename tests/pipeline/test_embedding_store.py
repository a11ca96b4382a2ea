"""Over a small run, each (model, chunk) is encoded exactly once, and a rerun encodes nothing."""

from __future__ import annotations

import shutil
from collections import Counter

import pytest

from helpers.core import config
from helpers.core.embeddings import model_fingerprint
from helpers.testing.chunks import sample_chunks

pytestmark = pytest.mark.slow


@pytest.fixture
def run(tmp_path):
    """A run folder: 16 chunks, pairs with train / validation / test splits, and a tiny random base."""
    from datasets import Dataset, DatasetDict

    from helpers.chunking.chunkers import save_chunks
    from helpers.core.random_models import build_random_bert

    paths = config.RunPaths(tmp_path / "run")
    chunks = sample_chunks(16)
    save_chunks(chunks, paths.chunks)

    def rows(part, split):
        return [{"id": f"{split}{i}", "anchor": f"What does the handbook say about {c.heading.lower()}?"
                 f" ({i})", "positive": c.text, "chunk_id": c.id, "generator": "offline:test"}
                for i, c in enumerate(part)]

    DatasetDict({"train": Dataset.from_list(rows(chunks[:10], "t")),
                 "validation": Dataset.from_list(rows(chunks[10:13], "v")),
                 "test": Dataset.from_list(rows(chunks[13:], "s"))}).save_to_disk(str(paths.pairs))
    return paths, chunks, str(build_random_bert(tmp_path / "tiny", "tiny", max_seq_length=64))


def _stages(paths, chunks, base: str) -> None:
    from helpers.evaluation.stage import evaluate_run
    from helpers.rag.scoring import load_systems

    evaluate_run(paths, base_model_id=base, query_sets=("test",), static=False, retention_subsets=())
    systems = load_systems(paths, chunks, base_model_id=base)
    next(iter(systems.values())).store.client.close()


def test_each_model_encodes_each_chunk_once_per_run_and_a_rerun_encodes_nothing(run, spy):
    from sentence_transformers import SentenceTransformer

    from helpers.training.settings import TrainConfig
    from helpers.training.trainer import finetune

    paths, chunks, base = run
    texts = {c.text for c in chunks}
    cfg = TrainConfig(batch_size=4, max_steps=2, max_seq_length=64, hard_negatives=1, evals_per_run=1)
    finetune(paths.pairs, paths.model, model_id=base, config=cfg, progress=False)
    base_fp = model_fingerprint(SentenceTransformer(base, device="cpu"))
    trained = {(fp, t): n for (fp, prompt, t), n in spy.items() if fp == base_fp and t in texts}
    assert len(trained) == len(chunks) and set(trained.values()) == {1}  # rotation and mining: one pass
    spy.clear()

    _stages(paths, chunks, base)
    tuned_fp = model_fingerprint(SentenceTransformer(str(paths.model), device="cpu"))
    per_model = Counter(fp for (fp, prompt, t), n in spy.items() if t in texts for _ in range(n))
    assert per_model == {tuned_fp: len(chunks)}  # the base's vectors came from training's encoding
    assert max(spy.values()) == 1  # queries too: once each
    spy.clear()

    shutil.rmtree(paths.qdrant)  # even a fresh index is filled from the store
    _stages(paths, chunks, base)
    assert not spy
