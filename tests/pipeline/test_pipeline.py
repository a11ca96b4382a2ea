from pathlib import Path

import pytest

from helpers.core import config
from helpers.core.config import RunPaths
from helpers.core.settings import RunSettings
from helpers.pipeline.runner import Stage, run_all


def _stages(calls: list[str], fail_at: str | None = None) -> list[Stage]:
    def make(name: str, source):
        def run(paths: RunPaths, s: RunSettings) -> dict:
            calls.append(name)
            if name == fail_at:
                raise RuntimeError(f"{name} was killed")
            text = (source(s) if source else s.pdf_dir / "a.pdf").read_text()
            (paths.root / f"{name}.txt").write_text(text + f"->{name}")
            return {"name": name}
        return run

    first = Stage("first", lambda s: [s.pdf_dir], lambda p: p.root / "first.txt", make("first", None),
                  lambda s: {})
    second = Stage("second", lambda s: [s.paths.root / "first.txt"], lambda p: p.root / "second.txt",
                   make("second", lambda s: s.paths.root / "first.txt"),
                   lambda s: {"epochs": s.profile.epochs})
    return [first, second]


@pytest.fixture
def settings(tmp_path) -> RunSettings:
    pdfs = tmp_path / "pdfs"
    pdfs.mkdir()
    (pdfs / "a.pdf").write_bytes(b"%PDF-1.4 one")
    return RunSettings(pdf_dir=pdfs, profile=config.get_profile("smoke"), run="r", runs_dir=tmp_path / "runs")


def test_second_run_skips_unchanged_stages(settings, capsys):
    calls: list[str] = []
    run_all(_stages(calls), settings)
    summaries = run_all(_stages(calls), settings)
    assert calls == ["first", "second"]
    assert all(s["skipped"] for s in summaries.values())
    assert "unchanged since the last run: skipped" in capsys.readouterr().out


def test_changed_input_or_setting_reruns_only_what_depends_on_it(settings):
    calls: list[str] = []
    run_all(_stages(calls), settings)
    settings.profile = config.get_profile("workshop")  # only 'second' depends on epochs
    run_all(_stages(calls), settings)
    assert calls == ["first", "second", "second"]
    (Path(settings.pdf_dir) / "a.pdf").write_bytes(b"%PDF-1.4 changed")
    run_all(_stages(calls), settings)
    assert calls[3:] == ["first", "second"]


def test_killed_run_continues_where_it_stopped(settings):
    calls: list[str] = []
    with pytest.raises(RuntimeError, match="killed"):
        run_all(_stages(calls, fail_at="second"), settings)
    assert (settings.paths.root / "first.txt").exists()
    run_all(_stages(calls), settings)
    assert calls == ["first", "second", "second"]


def test_stage_fingerprints_include_the_resolved_preset(settings, monkeypatch):
    from helpers.pipeline.runner import fingerprint
    from helpers.pipeline.stages import STAGES

    train = next(stage for stage in STAGES if stage.name == "train")
    monkeypatch.delenv("KIT_MODEL", raising=False)
    default = train.settings(settings)
    assert default["preset"]["name"] == "arctic-embed-m" and default["preset"]["lr"] == 2e-5
    monkeypatch.setenv("KIT_MODEL", "static-distilled")
    assert train.settings(settings)["preset"]["kind"] == "static"
    assert fingerprint([], train.settings(settings)) != fingerprint([], default)


def test_an_llm_configured_after_an_offline_run_reruns_the_stages_that_use_it_and_says_so(
        settings, monkeypatch, capsys):
    from helpers.pipeline.stages import STAGES

    for name in ("OPENAI_API_KEY", "KIT_LLM_BASE_URL", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    calls: list[str] = []
    questions = next(stage for stage in STAGES if stage.name == "questions")

    def uses_the_llm(stage: Stage) -> Stage:  # the kit's own settings for the stage, a stand-in for its work
        return Stage(stage.name, stage.inputs, stage.output, stage.run, questions.settings)

    stages = [uses_the_llm(stage) for stage in _stages(calls)]
    run_all(stages, settings)
    run_all(stages, settings)
    assert calls == ["first", "second"]  # nothing changed: skipped
    monkeypatch.setenv("KIT_LLM_BASE_URL", "http://127.0.0.1:9/v1")
    capsys.readouterr()
    run_all(stages, settings)
    assert calls[2:] == ["first", "second"]
    out = capsys.readouterr().out
    assert "[first] an LLM is configured now (gpt-4o-mini at http://127.0.0.1:9/v1); the last run was " \
           "offline: running again with it" in out
    settings.generator = "offline"  # the way to keep the offline questions
    capsys.readouterr()
    run_all(stages, settings)
    assert "settings changed since the last run (generator, llm)" in capsys.readouterr().out


def test_changed_settings_names_what_changed():
    from helpers.pipeline.runner import changed_settings

    assert changed_settings(None, {"a": 1}) is None  # a record from before settings were kept
    assert changed_settings({"a": 1, "b": [1]}, {"a": 1, "b": [1]}) is None
    assert changed_settings({"a": 1, "b": 2}, {"a": 1, "b": 3}) == \
        "settings changed since the last run (b): running again"
