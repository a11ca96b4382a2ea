import pytest

from helpers.core import config


def test_profile_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(config.PROFILE_ENV, "Workshop")
    assert config.get_profile().name == "workshop"
    monkeypatch.delenv(config.PROFILE_ENV)
    assert config.get_profile().name == config.DEFAULT_PROFILE
    assert config.get_profile("full").name == "full"


def test_unknown_profile_names_the_choices(monkeypatch):
    monkeypatch.setenv(config.PROFILE_ENV, "huge")
    with pytest.raises(ValueError, match="smoke, workshop, full"):
        config.get_profile()


def test_profiles_grow_from_smoke_to_full():
    smoke, workshop, full = (config.PROFILES[n] for n in ("smoke", "workshop", "full"))
    assert smoke.epochs <= workshop.epochs <= full.epochs
    assert smoke.questions_per_chunk <= workshop.questions_per_chunk <= full.questions_per_chunk


def test_run_layout(tmp_path):
    paths = config.run_paths("demo", tmp_path)
    assert paths.root == tmp_path / "demo" and paths.root.is_dir()
    assert paths.chunks.name == "chunks.jsonl" and paths.eval.name == "eval.json"
    assert paths.pairs.parent == paths.model.parent == paths.root


def test_errors_the_kit_counts_itself_are_not_printed_twice(monkeypatch, caplog):
    import logging

    from helpers.core import console

    monkeypatch.setenv(console.VERBOSE_ENV, "0")
    console.quiet_libraries()
    logging.getLogger("ragas.prompt.pydantic_prompt").error("Prompt x failed to parse output: ...")
    logging.getLogger("ragas.executor").error("a RAGAS error the kit does not count")
    assert "failed to parse output" not in caplog.text  # counted as a failed score in rag_eval.json
    assert "a RAGAS error the kit does not count" in caplog.text
