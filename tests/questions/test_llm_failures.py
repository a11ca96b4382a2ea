"""A misbehaving LLM endpoint: failed chunks retried exactly, causes in errors, bounded waits."""

from __future__ import annotations

import json
import sys

import pytest

from helpers import cli
from helpers.chunking.chunkers import save_chunks
from helpers.core import config
from helpers.core.llm import LLMError, LLMSettings, llm_settings
from helpers.core.settings import RunSettings
from helpers.pipeline.run_report import pairs_section
from helpers.pipeline.runner import run_stage
from helpers.pipeline.stages import STAGES
from helpers.questions.generate import build_pairs, generate
from helpers.testing.chunks import sample_chunks
from helpers.testing.fake_llm import FakeLLM, Reply, default_reply, prompt_of

FAILING = ("Staff travelling", "Flammable solvents", "Passwords for")


@pytest.fixture
def llm_env(monkeypatch):
    """Point the kit at a fake LLM (set by the test) with fast retries."""
    def point(llm: FakeLLM) -> None:
        monkeypatch.setenv("KIT_LLM_BASE_URL", llm.base_url)
        monkeypatch.setenv("KIT_LLM_MODEL", "fake-model")
        monkeypatch.setenv("KIT_LLM_MAX_ATTEMPTS", "2")
        monkeypatch.setenv("KIT_LLM_TIMEOUT_S", "5")
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    return point


def test_failed_chunks_are_retried_exactly_and_the_stage_is_unchanged_only_when_none_failed(
        tmp_path, llm_env, capsys):
    broken = {"on": True}

    def respond(body: dict, attempt: int) -> Reply:
        if broken["on"] and any(text in prompt_of(body) for text in FAILING):
            return Reply(status=500)
        return default_reply(body, attempt)

    settings = RunSettings(profile=config.get_profile("smoke"), run="r", runs_dir=tmp_path, generator="llm")
    save_chunks(sample_chunks(), settings.paths.chunks)
    questions = next(s for s in STAGES if s.name == "questions")
    with FakeLLM(respond) as llm:
        llm_env(llm)
        first = run_stage(questions, settings)
        assert first["counts"]["failed_chunks"] == 3 and len(first["failed_chunk_ids"]) == 3
        assert first["failures"]["server_error (500) after 2 attempts"]["count"] == 3
        assert "3 of 8 chunks got no questions (server_error (500) after 2 attempts: 3)" in first["pending"]
        section = pairs_section(settings.paths)
        assert "LLM requests failed for 3 chunks" in section.text
        assert ["server_error (500) after 2 attempts", "3"] in section.tables[-1]

        broken["on"] = False
        before = dict(llm.received)
        capsys.readouterr()
        second = run_stage(questions, settings)
        asked_again = {p for p, n in llm.received.items() if n > before.get(p, 0)}
        assert "last run incomplete: 3 of 8 chunks" in capsys.readouterr().out
        assert len(asked_again) == 3 and all(any(t in p for t in FAILING) for p in asked_again)
        assert second["counts"]["failed_chunks"] == 0 and second["pending"] is None
        assert second["usage"]["cached_chunks"] == 5

        third = run_stage(questions, settings)
        assert third.get("skipped") and "unchanged since the last run" in capsys.readouterr().out


@pytest.mark.parametrize("cli_run", [False, True])
def test_when_every_request_fails_the_error_leads_with_the_causes_and_the_fix(tmp_path, llm_env, capsys,
                                                                             cli_run):
    replies = {"Staff": Reply(status=429, headers={"Retry-After": "0"}), "Standard": Reply(status=500),
               "Claims": Reply("not json"), "Passwords": Reply(""), "All laptops": Reply('{"q": []}')}

    def respond(body: dict, attempt: int) -> Reply:
        prompt = prompt_of(body)
        return next((r for text, r in replies.items() if text in prompt), Reply(status=503))

    save_chunks(sample_chunks(), tmp_path / "r" / "chunks.jsonl")
    with FakeLLM(respond) as llm:
        llm_env(llm)
        if cli_run:
            code = cli.main(["questions", "--run", "r", "--runs-dir", str(tmp_path), "--generator", "llm"])
            message = capsys.readouterr().out.split("Error: ", 1)[1]
            assert code == 2
        else:
            with pytest.raises(LLMError) as error:
                build_pairs(tmp_path / "r" / "chunks.jsonl", tmp_path / "pairs", profile="smoke",
                            generator="llm", cache_dir=tmp_path / "cache", progress=False)
            message = str(error.value)
    assert message.startswith("The LLM gave no usable questions for 8 chunks (")
    for cause in ("rate_limited (429) after 2 attempts: 1", "server_error (503) after 2 attempts: 3",
                  "server_error (500) after 2 attempts: 1", "malformed_output: not JSON: 2",
                  'malformed_output: no "questions" list: 1'):
        assert cause in message
    assert "KIT_LLM_TIMEOUT_S" in message and "--generator offline" in message
    assert "Need questions on at least 3 different chunks" in message  # the old message comes after


def test_timeout_and_attempts_are_settings_from_the_environment_and_the_cli(monkeypatch, tmp_path):
    monkeypatch.setenv("KIT_LLM_BASE_URL", "http://127.0.0.1:9/v1")
    assert (llm_settings().timeout_s, llm_settings().max_attempts) == (30.0, 4)  # defaults
    monkeypatch.setenv("KIT_LLM_TIMEOUT_S", "2.5")
    monkeypatch.setenv("KIT_LLM_MAX_ATTEMPTS", "3")
    assert (llm_settings().timeout_s, llm_settings().max_attempts) == (2.5, 3)
    assert llm_settings().worst_case_s() == 3 * 2.5 + 0.5 + 1.0
    monkeypatch.setenv("KIT_LLM_MAX_ATTEMPTS", "many")
    with pytest.raises(ValueError, match="KIT_LLM_MAX_ATTEMPTS='many': expected a positive int"):
        llm_settings()
    monkeypatch.setenv("KIT_LLM_MAX_ATTEMPTS", "3")

    seen = {}
    monkeypatch.setattr("helpers.pipeline.runner.run_all", lambda stages, s: seen.update(
        timeout=s.llm.timeout_s, attempts=s.llm.max_attempts) or {})
    monkeypatch.setattr("helpers.pipeline.run_report.write_run_report",
                        lambda paths: (paths.root / "report.md", paths.root / "report.html"))
    options = ["--runs-dir", str(tmp_path), "--llm-timeout", "7", "--llm-attempts", "2"]
    assert cli.main(["questions", *options]) == 0
    assert seen == {"timeout": 7.0, "attempts": 2}  # passed down in the run's settings
    assert (llm_settings().timeout_s, llm_settings().max_attempts) == (2.5, 3)  # the environment untouched
    assert cli.main(["questions", "--runs-dir", str(tmp_path), "--llm-attempts", "0"]) == 2


def test_a_hanging_endpoint_costs_a_bounded_time_and_progress_says_what_it_waits_on(tmp_path, capsys,
                                                                                      monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # progress bars show in a terminal only
    with FakeLLM(lambda body, attempt: Reply(delay_s=10)) as llm:
        settings = LLMSettings(model="fake-model", base_url=llm.base_url, api_key="sk-x", timeout_s=0.3,
                               max_attempts=2)
        result = generate(sample_chunks(24), 1, settings, cache_dir=tmp_path, concurrency=2, progress=True)
        sent = sum(llm.received.values())
    reasons = [f["reason"] for f in result.failures]
    assert len(reasons) == 24 and not result.pairs
    assert reasons.count("timeout (> 0.3 s) after 2 attempts") >= 4
    stopped = [r for r in reasons if r.startswith("not sent: the endpoint failed 4 chunks in a row")]
    assert stopped and sent < 24 * 2 / 2  # most chunks were never sent
    err = capsys.readouterr()
    assert "waiting_on" in err.err and "timeout 0.3 s" in err.err and "last_error" in err.err
    assert "stops after 4 chunks fail in a row" in err.out
    json.dumps(result.failures)  # recorded as plain data
