import time

import numpy as np
import pytest

from helpers.core import config, hf, models, presets


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
    for model_id in ("Snowflake/snowflake-arctic-embed-l", "Snowflake/snowflake-arctic-embed-m-v1.5"):
        assert presets.resolve(model_id).query_prompt == presets.ARCTIC_QUERY_PROMPT
    assert presets.resolve("BAAI/bge-small-en-v1.5").query_prompt == ""


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


L_V2 = "Snowflake/snowflake-arctic-embed-l-v2.0"
M_V2 = "Snowflake/snowflake-arctic-embed-m-v2.0"


@pytest.fixture(scope="module")
def random_xlm_roberta_cache(tmp_path_factory):
    """A hub cache holding a tiny random XLM-RoBERTa (l-v2.0's family, 1024 wide) under l-v2.0's id: the
    real one cannot be downloaded here."""
    import shutil

    from helpers.core import random_models

    root = tmp_path_factory.mktemp("xlmr")
    random_models.SHAPES["l-v2.0 width"] = dict(hidden_size=1024, num_hidden_layers=1, num_attention_heads=4,
                                                intermediate_size=256)
    try:
        folder = random_models.build_random_bert(root / "build", "l-v2.0 width", max_seq_length=64,
                                                 architecture="xlm-roberta")
    finally:
        del random_models.SHAPES["l-v2.0 width"]
    repo, commit = root / "cache" / f"models--{L_V2.replace('/', '--')}", "0" * 40
    shutil.copytree(folder, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return root / "cache"


def test_arctic_l_v2_random_xlm_roberta_stand_in_loads_from_the_cache_with_query_prefix_and_cuts_to_256(
        random_xlm_roberta_cache, monkeypatch):
    from helpers.evaluation.metrics import ALL, dense_scorer, encode_corpus, encode_queries

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("SENTENCE_TRANSFORMERS_HOME", str(random_xlm_roberta_cache))
    loaded = models.load_embedding_model("arctic-embed-l-v2.0", device="cpu", quiet=True)
    assert (loaded.loaded, loaded.preset.name, loaded.is_fallback) == (L_V2, "arctic-embed-l-v2.0", False)
    assert loaded.reason == "from the local cache; HF_HUB_OFFLINE is set"
    assert type(loaded.model[0].auto_model).__name__ == "XLMRobertaModel"
    assert loaded.model.prompts["query"] == "query: "
    queries = encode_queries(loaded.model, ["what is a rope?"], show_progress=False)
    prefixed = loaded.model.encode(["query: what is a rope?"], convert_to_tensor=True)
    assert queries.shape == (1, 1024) and np.allclose(queries.numpy(), prefixed.numpy(), atol=1e-6)
    corpus = encode_corpus(loaded.model, ["a rope is a cord", "a knot"], show_progress=False)
    cut = dense_scorer(queries, corpus, dim=256)(ALL, ALL)
    q, c = (x[:, :256].numpy() / np.linalg.norm(x[:, :256].numpy(), axis=1, keepdims=True)
            for x in (queries, corpus))
    expected = q @ c.T
    full = dense_scorer(queries, corpus)(ALL, ALL)
    assert np.allclose(cut, expected, atol=1e-5) and not np.allclose(cut, full)


def test_the_evaluation_records_and_the_report_names_the_sizes_the_base_was_trained_at(
        random_xlm_roberta_cache, monkeypatch, tmp_path):
    from helpers.evaluation.stage import describe, dims_for
    from helpers.pipeline.run_report import _system

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("SENTENCE_TRANSFORMERS_HOME", str(random_xlm_roberta_cache))
    loaded = models.load_embedding_model("arctic-embed-l-v2.0", device="cpu", quiet=True)
    system = describe(loaded, dims_for(1024, None))
    assert (system["dims"], system["native_dims"]) == ([1024, 512, 256, 128, 64], [1024, 256])
    assert _system(system, tmp_path) == f"{L_V2} (Matryoshka-trained by its makers at 1024, 256 dims)"
    fallback = models.load_embedding_model("fallback", device="cpu", quiet=True)
    assert "native_dims" not in describe(fallback, [384])


@pytest.fixture
def constructor_calls(monkeypatch):
    """Every SentenceTransformer(...) call's name and keyword arguments; the real constructor still runs."""
    import sentence_transformers

    calls: list[tuple[str, dict]] = []
    real = sentence_transformers.SentenceTransformer

    def recording(name, **kwargs):
        calls.append((name, kwargs))
        return real(name, **kwargs)

    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", recording)
    return calls


def test_arctic_m_v2_is_loaded_trusting_its_remote_code_and_falls_back_offline_with_the_reason(
        constructor_calls, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    loaded = models.load_embedding_model("arctic-embed-m-v2.0", device="cpu", quiet=True)
    (asked, kwargs), (stand_in, stand_in_kwargs) = constructor_calls
    assert asked == M_V2 and kwargs["trust_remote_code"] and kwargs["local_files_only"]
    assert stand_in == str(hf.fallback_model_path()) and not stand_in_kwargs.get("trust_remote_code")
    assert loaded.is_fallback and loaded.requested == "arctic-embed-m-v2.0"
    assert loaded.reason == f"{M_V2} not available offline; HF_HUB_OFFLINE is set"
    assert loaded.model.prompts["query"] == ""  # the stand-in's prompt, not m-v2.0's


def test_arctic_m_v2_is_downloaded_trusting_its_remote_code_when_the_hub_answers(monkeypatch):
    import sentence_transformers

    calls = []

    def refusing(name, **kwargs):  # stands in for the download, which cannot happen here
        calls.append((name, kwargs))
        raise OSError("connection error")

    monkeypatch.setattr(models, "hub_reachable", lambda: (True, "huggingface.co reachable"))
    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", refusing)
    monkeypatch.setattr(models, "_load_fallback", lambda requested, device, reason: reason)
    reason = models._load_from_hub(presets.PRESETS["arctic-embed-m-v2.0"], "arctic-embed-m-v2.0", "cpu")
    assert reason.startswith(f"{M_V2} not available")
    assert calls == [(M_V2, {"device": "cpu", "trust_remote_code": True})]


def test_only_folders_fine_tuned_from_a_remote_code_preset_trust_remote_code(
        fallback_model, constructor_calls, tmp_path):
    from helpers.core.io import write_json

    for name, preset in [("m-v2", "arctic-embed-m-v2.0"), ("m", "arctic-embed-m"), ("other", None)]:
        fallback_model.save(str(tmp_path / name))
        if preset:
            write_json(tmp_path / name / "training_config.json", {"base_model": {"preset": preset}})
        models.load_embedding_model(str(tmp_path / name), device="cpu", quiet=True)
    assert [kwargs["trust_remote_code"] for _, kwargs in constructor_calls] == [True, False, False]


def test_a_model_loaded_again_is_announced_once(capsys):
    for _ in range(3):
        models.load_embedding_model("fallback", device="cpu")
    out = capsys.readouterr().out
    assert out.count("Embedding model:") == 1, out
