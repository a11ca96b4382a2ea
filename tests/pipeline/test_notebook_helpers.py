"""helpers.pipeline.artifacts: what the solutions notebooks use to find (or make) a chapter's artifacts."""

import pytest

from helpers.core import config
from helpers.pipeline import artifacts


def test_missing_artifacts_in_order(tmp_path):
    paths = config.run_paths("demo", tmp_path)
    assert artifacts.missing_artifacts(paths, "pairs") == ["chunks", "pairs"]
    paths.chunks.write_text("")
    (paths.model).mkdir()
    (paths.model / "config_sentence_transformers.json").write_text("{}")
    assert artifacts.missing_artifacts(paths, "eval") == ["pairs", "eval"]
    with pytest.raises(ValueError):
        artifacts.missing_artifacts(paths, "report")


def test_ensure_artifacts_makes_only_what_is_missing(tmp_path, monkeypatch):
    from helpers.chunking import chunkers
    from helpers.questions import generate

    paths = config.run_paths("demo", tmp_path)
    paths.chunks.write_text("")
    made = []
    monkeypatch.setattr(chunkers, "build_chunks", lambda *a, **k: made.append("chunks"))
    monkeypatch.setattr(generate, "build_pairs", lambda *a, **k: made.append("pairs"))
    artifacts.ensure_artifacts(paths, "pairs")
    assert made == ["pairs"]
