"""Retention check: did domain fine-tuning cost general retrieval? NanoBEIR before and after, when reachable.

NanoBEIR (sentence-transformers' ``NanoBEIREvaluator``) is 13 small BEIR retrieval sets, 50 queries each,
on the Hugging Face dataset hub; a few of them score the base and the fine-tuned model. Offline the check
says that it was skipped and why, after a reachability check that takes at most 3 seconds.
"""

from __future__ import annotations

import logging

from helpers.core import config

logger = logging.getLogger(__name__)

DEFAULT_SUBSETS = ("msmarco", "nfcorpus", "scifact")
METRIC = "ndcg@10"


def datasets_reachable() -> tuple[bool, str]:
    """Whether the dataset hub can be reached (the same quick check as for models)."""
    from helpers.core.models import hub_reachable

    if config.env_flag("HF_DATASETS_OFFLINE"):
        return False, "HF_DATASETS_OFFLINE is set"
    return hub_reachable()


def retention_check(models: dict[str, str], subsets: tuple[str, ...] = DEFAULT_SUBSETS,
                    batch_size: int = 32) -> dict:
    """NanoBEIR nDCG@10 per subset and their mean for each model (name -> id or folder), or why not."""
    result = {"benchmark": "NanoBEIR", "subsets": list(subsets), "metric": METRIC}
    reachable, why = datasets_reachable()
    if not reachable:
        logger.info(f"Retention check (NanoBEIR) skipped: {why}")
        return result | {"skipped": True, "reason": why}
    from helpers.core.models import load_embedding_model

    scores = {name: nanobeir_scores(load_embedding_model(model_id, quiet=True).model, subsets, batch_size)
              for name, model_id in models.items()}
    return result | {"skipped": False, "scores": scores}


def nanobeir_scores(model, subsets: tuple[str, ...], batch_size: int = 32) -> dict[str, float]:
    """nDCG@10 of ``model`` on each NanoBEIR subset and their mean; queries take the model's query prompt."""
    from sentence_transformers.sentence_transformer.evaluation import NanoBEIREvaluator

    evaluator = NanoBEIREvaluator(dataset_names=list(subsets), batch_size=batch_size, write_csv=False,
                                  query_prompts=model.prompts.get("query") or None)
    results = evaluator(model)
    # Keys look like "NanoSciFact_cosine_ndcg@10", and "NanoBEIR_mean_cosine_ndcg@10" for the mean.
    scores = {key.split("_", 1)[0]: float(value) for key, value in results.items()
              if key.endswith(f"_{METRIC}")}
    return {("mean" if name == "NanoBEIR" else name): value for name, value in scores.items()}


def retention_frame(result: dict):
    """Systems by subsets (and the mean), plus fine-tuned minus base; None when the check was skipped."""
    import pandas as pd

    if result.get("skipped", True):
        return None
    frame = pd.DataFrame(result["scores"]).T
    if {"base", "fine-tuned"} <= set(frame.index):
        frame.loc["fine-tuned - base"] = frame.loc["fine-tuned"] - frame.loc["base"]
    return frame.round(4)


def retention_summary(result: dict) -> str:
    """One sentence for reports: the mean change, or that the check was skipped and why."""
    subsets = ", ".join(result["subsets"])
    if result.get("skipped", True):
        return f"General retrieval (NanoBEIR: {subsets}) skipped: {result.get('reason', 'not run')}."
    scores = result["scores"]
    means = "; ".join(f"{name} {s['mean']:.3f}" for name, s in scores.items())
    return f"General retrieval, NanoBEIR {METRIC} mean over {subsets}: {means}."
