"""The NanoBEIR retention check: skipped with its reason offline, one score per subset online."""

from __future__ import annotations

import pytest

from helpers.core import models
from helpers.evaluation.retention import retention_check, retention_frame, retention_summary


@pytest.fixture
def no_loading(monkeypatch):
    monkeypatch.setattr(models, "load_embedding_model", lambda *a, **k: pytest.fail("a model was loaded"))


def test_offline_the_check_is_skipped_with_its_reason(monkeypatch, capsys, no_loading):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = retention_check({"base": "fallback", "fine-tuned": "runs/x/model"})
    assert result["skipped"] and result["reason"] == "HF_HUB_OFFLINE is set"
    assert "Retention check (NanoBEIR) skipped: HF_HUB_OFFLINE is set" in capsys.readouterr().out
    assert retention_summary(result) == (
        "General retrieval (NanoBEIR: msmarco, nfcorpus, scifact) skipped: HF_HUB_OFFLINE is set.")
    assert retention_frame(result) is None


def test_an_unreachable_hub_or_offline_datasets_skip_too(monkeypatch, no_loading):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    assert retention_check({"base": "fallback"})["reason"] == "HF_DATASETS_OFFLINE is set"
    monkeypatch.delenv("HF_DATASETS_OFFLINE")
    monkeypatch.setattr(models, "hub_reachable", lambda: (False, "huggingface.co unreachable (OSError)"))
    assert retention_check({"base": "fallback"})["reason"] == "huggingface.co unreachable (OSError)"


def test_online_each_model_is_scored_per_subset_with_its_query_prompt(monkeypatch):
    from sentence_transformers.sentence_transformer import evaluation

    class Model:
        def __init__(self, prompt):
            self.prompts = {"query": prompt, "document": ""}

    class Loaded:
        def __init__(self, model_id):
            self.model = Model("" if model_id == "tuned" else "query: ")

    class FakeNanoBEIR:
        seen = []

        def __init__(self, dataset_names, query_prompts, **kwargs):
            self.seen.append((dataset_names, query_prompts))

        def __call__(self, model):
            score = 0.5 if model.prompts["query"] else 0.4
            return {"NanoSciFact_cosine_ndcg@10": score, "NanoSciFact_cosine_mrr@10": 1.0,
                    "NanoNQ_cosine_ndcg@10": score + 0.1, "NanoBEIR_mean_cosine_ndcg@10": score + 0.05}

    monkeypatch.setattr(models, "hub_reachable", lambda: (True, "huggingface.co reachable"))
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setattr(models, "load_embedding_model", lambda model_id, **k: Loaded(model_id))
    monkeypatch.setattr(evaluation, "NanoBEIREvaluator", FakeNanoBEIR)

    result = retention_check({"base": "arctic", "fine-tuned": "tuned"}, subsets=("scifact", "nq"))
    assert not result["skipped"]
    assert result["scores"]["base"] == {"NanoSciFact": 0.5, "NanoNQ": 0.6, "mean": 0.55}
    assert FakeNanoBEIR.seen == [(["scifact", "nq"], "query: "), (["scifact", "nq"], None)]
    frame = retention_frame(result)
    assert frame.loc["fine-tuned - base", "mean"] == pytest.approx(-0.1)
    assert "base 0.550; fine-tuned 0.450" in retention_summary(result)
