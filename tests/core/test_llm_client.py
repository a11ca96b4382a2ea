"""The LLM question generator with the real openai client against a local fake OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from helpers.chunking.chunkers import save_chunks
from helpers.core import config
from helpers.core.llm import LLMError, LLMSettings, RateLimiter, llm_configured, llm_settings, run_sync
from helpers.questions.generate import build_pairs, generate
from helpers.testing.chunks import sample_chunks
from helpers.testing.fake_llm import FakeLLM, Reply, default_reply, prompt_of

KEY = "sk-test-NEVER-SHOW-THIS-0123456789"


def settings_for(llm: FakeLLM, **kwargs) -> LLMSettings:
    return LLMSettings(model="fake-model", base_url=llm.base_url, api_key=KEY,
                       **({"timeout_s": 5.0, "max_attempts": 4} | kwargs))


def scripted(rules):
    """A responder: the first rule whose text is in the prompt answers, else a good reply."""
    def respond(body: dict, attempt: int) -> Reply:
        prompt = prompt_of(body)
        for text, reply in rules:
            if text in prompt:
                result = reply(attempt)
                if result is not None:
                    return result
        return default_reply(body, attempt)
    return respond


@pytest.fixture
def chunks():
    return sample_chunks()


def test_settings_come_from_the_environment_and_never_show_the_key(monkeypatch):
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "KIT_LLM_BASE_URL", "KIT_LLM_MODEL"):
        monkeypatch.delenv(name, raising=False)
    assert llm_settings() is None and not llm_configured()
    monkeypatch.setenv("KIT_LLM_BASE_URL", "http://localhost:11434/v1")
    monkeypatch.setenv("KIT_LLM_MODEL", "llama3.2")
    assert llm_settings().describe() == "llama3.2 at http://localhost:11434/v1 (no key)"
    monkeypatch.delenv("KIT_LLM_BASE_URL")
    monkeypatch.delenv("KIT_LLM_MODEL")
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    settings = llm_settings()
    assert settings.describe() == "gpt-4o-mini at https://api.openai.com/v1 (key set)"
    assert KEY not in repr(settings) and KEY not in str(settings) and KEY not in json.dumps(settings.public())
    hidden = LLMSettings(base_url=f"https://user:{KEY}@llm.example.org/v1?api_key={KEY}")
    assert KEY not in hidden.describe() and "llm.example.org/v1" in hidden.describe()


def test_good_answers_become_pairs_and_a_rerun_is_served_from_the_cache(chunks, tmp_path):
    with FakeLLM() as llm:
        first = generate(chunks, 2, settings_for(llm), cache_dir=tmp_path, progress=False)
        second = generate(chunks, 2, settings_for(llm), cache_dir=tmp_path, progress=False)
        assert sum(llm.received.values()) == len(chunks)
    assert len(first.pairs) == 2 * len(chunks) and not first.failures
    assert {p["generator"] for p in first.pairs} == {"llm:fake-model"}
    assert [p["chunk_id"] for p in first.pairs] == [c.id for c in chunks for _ in range(2)]
    assert first.usage["requests"] == len(chunks) and first.usage["prompt_tokens"] > 0
    assert second.pairs == first.pairs and second.usage["requests"] == 0
    assert second.usage["cached_chunks"] == len(chunks)


def test_bad_output_is_recorded_or_rejected_with_a_reason(chunks, tmp_path):
    seed_001_style = json.dumps({"questions": ["QUESTION #1\n", "[HumanMessage(content='What is the cap?', "
                                               "additional_kwargs={}, response_metadata={})]"]})
    rules = [("Hotel", lambda a: Reply("QUESTION #1\n")),
             ("Passwords for", lambda a: Reply('{"questions": "What is the rule?"}')),
             ("Flammable", lambda a: Reply(seed_001_style))]
    with FakeLLM(scripted(rules)) as llm:
        result = generate(chunks, 2, settings_for(llm), cache_dir=tmp_path, progress=False)
    reasons = {f["reason"] for f in result.failures}
    assert reasons == {"malformed_output: not JSON", 'malformed_output: no "questions" list'}
    assert any(f["example"] == "QUESTION #1\n" for f in result.failures)
    from helpers.questions.pairs import validate

    kept, rejected = validate(result.pairs)
    assert [r["reason"] for r in rejected] == ["template_residue", "template_residue"]
    assert not any("QUESTION #" in p["anchor"] or "content=" in p["anchor"] for p in kept)


def test_429_500_and_timeouts_are_retried_and_persistent_failures_recorded(chunks, tmp_path):
    rules = [("Hotel", lambda a: Reply(status=429, headers={"Retry-After": "0.05"}) if a <= 2 else None),
             ("Standard class", lambda a: Reply(status=503) if a == 1 else None),
             ("Claims must", lambda a: Reply(delay_s=2.0) if a == 1 else None),
             ("Flammable", lambda a: Reply(status=500))]
    with FakeLLM(scripted(rules)) as llm:
        result = generate(chunks, 1, settings_for(llm, timeout_s=0.5, max_attempts=3), cache_dir=tmp_path,
                          progress=False)
        assert llm.count("Hotel") == 3 and llm.count("Standard class") == 2 and llm.count("Claims must") == 2
        assert llm.count("Flammable") == 3
    assert [f["reason"] for f in result.failures] == ["server_error (500) after 3 attempts"]
    assert len(result.pairs) == len(chunks) - 1
    assert result.usage["requests"] == len(chunks) + 2 + 1 + 1 + 2


def test_a_refused_key_stops_the_run_with_a_clear_error(chunks, tmp_path):
    with FakeLLM(lambda body, attempt: Reply("Incorrect API key provided: " + KEY, status=401)) as llm, \
            pytest.raises(LLMError, match="HTTP 401") as error:
        generate(chunks, 1, settings_for(llm), cache_dir=tmp_path, progress=False)
    assert KEY not in str(error.value)



def test_the_default_cache_follows_the_runs_folder_moved_after_import(chunks, tmp_path, monkeypatch):
    monkeypatch.setattr(config, "RUNS_DIR", config.RUNS_DIR)  # undone after the test, as set_runs_dir is
    monkeypatch.setenv(config.RUNS_ENV, str(config.RUNS_DIR))
    moved = config.set_runs_dir(tmp_path / "drive")  # generate() was imported above, before the move
    with FakeLLM() as llm:
        generate(chunks[:2], 1, settings_for(llm), progress=False)
    assert len(list((moved / "llm_cache").rglob("*.json"))) == 2

def test_concurrency_is_bounded_and_requests_are_rate_limited(tmp_path):
    with FakeLLM(latency_s=0.1) as llm:
        generate(sample_chunks(12), 1, settings_for(llm), cache_dir=tmp_path, concurrency=3, progress=False)
        assert 2 <= llm.max_in_flight <= 3

    async def starts(limiter: RateLimiter, n: int) -> list[float]:
        times = []
        for _ in range(n):
            await limiter.wait()
            times.append(time.monotonic())
        return times

    times = asyncio.run(starts(RateLimiter(rpm=1200), 5))
    assert all(b - a >= 0.045 for a, b in zip(times, times[1:], strict=False))


def test_generate_works_inside_a_running_event_loop_like_jupyter(chunks, tmp_path):
    async def notebook_cell():
        with FakeLLM() as llm:
            return generate(chunks[:2], 1, settings_for(llm), cache_dir=tmp_path, progress=False)

    assert len(asyncio.run(notebook_cell()).pairs) == 2


def test_interrupting_a_notebook_cell_cancels_the_run_and_lets_it_clean_up():
    cleaned = []

    async def long_run():
        try:
            await asyncio.sleep(30)
        finally:
            cleaned.append(True)

    async def notebook_cell():
        threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()  # the kernel's stop button
        run_sync(long_run())

    loop = asyncio.new_event_loop()  # like Jupyter's: no asyncio SIGINT handler
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        loop.run_until_complete(notebook_cell())
    loop.close()
    assert cleaned == [True] and time.monotonic() - started < 20


RUN_IN_CHILD = """
import sys
import threading
from helpers.chunking.chunkers import load_chunks
from helpers.core.llm import LLMSettings
from helpers.questions.generate import generate
chunks_path, cache_dir, base_url = sys.argv[1:4]
settings = LLMSettings(model="fake-model", base_url=base_url, api_key="sk-child", timeout_s=60)
generate(load_chunks(chunks_path), 2, settings, cache_dir=cache_dir, concurrency=1, progress=False)
"""


def wait_until(condition, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)


def test_a_killed_run_restarts_without_repeating_an_answered_request(tmp_path):
    chunks = sample_chunks()
    save_chunks(chunks, tmp_path / "chunks.jsonl")
    hang = {"on": True}

    def respond(body: dict, attempt: int) -> Reply:
        started = sum(llm.received.values())
        return Reply(delay_s=30) if hang["on"] and started == 4 else default_reply(body, attempt)

    with FakeLLM(respond) as llm:
        child = subprocess.Popen([sys.executable, "-c", RUN_IN_CHILD, str(tmp_path / "chunks.jsonl"),
                                  str(tmp_path / "cache"), llm.base_url])
        wait_until(lambda: sum(llm.received.values()) >= 4 or child.poll() is not None)
        child.send_signal(signal.SIGKILL)
        child.wait()
        wait_until(lambda: sum(llm.answered.values()) >= 3)
        assert sum(llm.answered.values()) == 3, "three answered, the fourth in flight when killed"
        hang["on"] = False
        result = generate(chunks, 2, settings_for(llm), cache_dir=tmp_path / "cache", progress=False)
        repeated = [p for p, n in llm.received.items() if n > 1]
    assert len(result.pairs) == 2 * len(chunks)
    assert len(repeated) == 1 and llm.answered[repeated[0]] == 1, "only the request in flight is repeated"
    assert result.usage["cached_chunks"] == 3 and result.usage["requests"] == len(chunks) - 3


def test_build_pairs_with_an_llm_writes_no_key_anywhere(tmp_path, capsys, caplog, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    save_chunks(sample_chunks(), tmp_path / "chunks.jsonl")
    with FakeLLM() as llm:
        report = build_pairs(tmp_path / "chunks.jsonl", tmp_path / "pairs", profile="smoke", generator="llm",
                             cache_dir=tmp_path / "cache", settings=settings_for(llm), progress=False)
    assert report["generator"] == "llm:fake-model" and report["usage"]["requests"] == len(sample_chunks())
    assert report["llm"] == {"model": "fake-model", "base_url": llm.base_url}
    captured = capsys.readouterr()
    assert "key set" in captured.out
    assert KEY not in captured.out + captured.err + caplog.text
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), f"the key leaked into {path}"
