from pathlib import Path

import pytest

from helpers.core import config
from helpers.pipeline.runner import RunSettings, Stage, run_all


def _stages(calls: list[str], fail_at: str | None = None) -> list[Stage]:
    def make(name: str, source):
        def run(s: RunSettings) -> dict:
            calls.append(name)
            if name == fail_at:
                raise RuntimeError(f"{name} was killed")
            text = (source(s) if source else s.pdf_dir / "a.pdf").read_text()
            (s.paths.root / f"{name}.txt").write_text(text + f"->{name}")
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
