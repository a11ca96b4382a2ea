"""The offline retention proxy: the sample corpus's gold questions, skipped when the run is on the sample."""

from __future__ import annotations

from pathlib import Path

from helpers.chunking.chunkers import save_chunks
from helpers.core.config import RunPaths
from helpers.testing.chunks import sample_chunks
from helpers.training.foreign import foreign_scorer, foreign_summary, skip_reason


def run_folder(root: Path, source: str) -> Path:
    save_chunks(sample_chunks(source=source), root / "chunks.jsonl")
    return root


def test_the_proxy_is_skipped_on_the_sample_corpus_with_the_reason(tmp_path):
    run = run_folder(tmp_path, "travel-and-expenses-policy.pdf")
    score, info = foreign_scorer(run, 384)
    assert score is None and info["skipped"] and "sample corpus" in info["reason"]
    assert "not foreign" in foreign_summary(info) and not RunPaths(run).foreign_sample_chunks.exists()


def test_without_chunks_the_corpus_cannot_be_told_from_the_sample(tmp_path):
    assert "cannot be told" in skip_reason(tmp_path / "chunks.jsonl")


def test_on_other_pdfs_the_sample_gold_questions_score_a_model_and_the_chunks_are_cached(tmp_path,
                                                                                      fallback_model):
    run = run_folder(tmp_path, "user-handbook.pdf")
    assert skip_reason(run / "chunks.jsonl") is None
    score, info = foreign_scorer(run, 384)
    assert not info["skipped"] and info["questions"] > 10 and info["chunks"] > info["questions"] / 2
    assert 0.3 < score(fallback_model) <= 1.0  # MiniLM finds much of the sample's evidence
    assert RunPaths(run).foreign_sample_chunks.is_file()
    record = info | {"scores": {"base": 0.60, "fine_tuned": 0.55, "merged": 0.595}}
    assert "no loss on text it was not trained on" in foreign_summary(record)
    assert "0.050 lost" in foreign_summary(record | {"scores": {**record["scores"], "merged": 0.55}})
