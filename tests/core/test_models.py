import time

import pytest

from helpers.core import config, hf, models


def test_hub_offline_flag_is_respected(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ok, why = models.hub_reachable()
    assert not ok and "HF_HUB_OFFLINE" in why


def test_unreachable_hub_answers_fast(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "https://127.0.0.1:9")  # nothing listens on the discard port
    started = time.monotonic()
    ok, why = models.hub_reachable(timeout=2)
    assert not ok and "127.0.0.1 unreachable" in why
    assert time.monotonic() - started < 10


def test_hub_id_falls_back_offline_with_one_line(monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loaded = models.load_embedding_model(config.BASE_MODEL_ID, device="cpu")
    out = capsys.readouterr().out.strip().splitlines()
    assert loaded.is_fallback and loaded.requested == config.BASE_MODEL_ID
    assert [line for line in out if line.startswith("Embedding model:")] == [
        f"Embedding model: {config.FALLBACK_MODEL_NAME} on cpu ({loaded.reason})"]
    # The fallback needs no query prompt, but "query" is always a valid prompt name.
    assert loaded.model.prompts["query"] == ""
    assert loaded.model.encode(["hello"], prompt_name="query").shape == (1, 384)


def test_arctic_prompt_is_registered_for_arctic_ids():
    assert models.query_prompt_for("Snowflake/snowflake-arctic-embed-l") == config.ARCTIC_QUERY_PROMPT
    assert models.query_prompt_for("Snowflake/snowflake-arctic-embed-m-v1.5") == config.ARCTIC_QUERY_PROMPT
    assert models.query_prompt_for("BAAI/bge-small-en-v1.5") == ""


def test_local_folder_keeps_its_stored_prompt(fallback_model, tmp_path):
    fallback_model.prompts["query"] = "query: "
    try:
        fallback_model.save(str(tmp_path / "m"))
    finally:
        fallback_model.prompts["query"] = ""
    loaded = models.load_embedding_model(str(tmp_path / "m"), device="cpu", quiet=True)
    assert loaded.reason == "local folder" and loaded.model.prompts["query"] == "query: "


def test_changed_fallback_weights_are_refused(monkeypatch):
    monkeypatch.setattr(config, "FALLBACK_WEIGHTS_SHA256", "0" * 64)
    with pytest.raises(RuntimeError, match="changed"):
        hf.fallback_model_path()
