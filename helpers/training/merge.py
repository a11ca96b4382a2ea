"""Merge the fine-tuned weights with the starting ones: θ = (1 − α)·start + α·fine-tuned.

Fine-tuning on one collection gains there and can lose a little everywhere else. LM-Cocktail (Xiao et al.,
2023, FlagEmbedding) averages the weights back towards the base: for bge-base, fine-tuning lifted the
target task from 71.8 to 76.0 while the other tasks fell from 49.8 to 48.5; a 50/50 merge of base and
fine-tuned kept most of the gain (74.8) and all of the rest (50.0).

The guard: by default the kit saves α = 0.75 (``TrainConfig.merge_alphas = [0.75]``, ``merge_max_alpha =
0.75``) rather than letting its validation questions choose. Those questions are the kit's own, written
from the chunks they must find: they reward copying words and rose to α = 1 in every setting measured.
Scored on people's questions instead (``benchmarks/bench_guard.py``: the Debian FAQ's 118 questions, on
the FAQ alone and inside 260 pages of Debian documentation, MiniLM, smoke and workshop), nDCG@10 at full
size for α = 0.75 vs α = 1 (base): 0.677 vs 0.689 (0.654), 0.689 vs 0.690 (0.654), 0.591 vs 0.594 (0.577)
and 0.604 vs 0.600 (0.577): never more than 0.012 below the full fine-tune, above it where training
overshot, above the base at every dimension. On mpnet (768 wide, the docs corpus, smoke): 0.669 vs 0.675
(0.630), above the base and the rotated base at every dimension (lowest 95% bound +0.000). A grid
(``merge_alphas``) is still scored on validation and its best α up to ``merge_max_alpha`` kept, ties to
the smaller α (closer to the base); ``merge_max_alpha = 1`` lets the fine-tuned model itself be saved
when validation prefers it.

The start (α = 0) is the model as training started: the base with its corpus rotation when
``corpus_rotation`` is on (``helpers.training.rotation``), every weight, the rotation's included. Its
embeddings are the base's rotated, so its full-dimension scores are exactly the base's; α = 1 is the
fine-tuned model (the best checkpoint).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

logger = logging.getLogger(__name__)

FINETUNED_ALPHA = 1.0


def snapshot(model) -> dict:
    """A copy of ``model``'s weights on the CPU (training goes on changing the model's own)."""
    return {name: tensor.detach().to("cpu", copy=True) for name, tensor in model.state_dict().items()}


def interpolate(start: dict, tuned: dict, alpha: float) -> dict:
    """(1 − α)·start + α·tuned for every floating-point tensor; others (ids, counters) from ``tuned``."""
    return {name: (start[name] + alpha * (tensor - start[name])) if tensor.is_floating_point() else tensor
            for name, tensor in tuned.items()}


def load_merge(model, start: dict, tuned: dict, alpha: float) -> None:
    """Put the weights merged at ``alpha`` into ``model`` (α = 1: exactly ``tuned``)."""
    model.load_state_dict(tuned if alpha == FINETUNED_ALPHA else interpolate(start, tuned, alpha))


def choose_alpha(scores: dict[float, float], max_alpha: float = FINETUNED_ALPHA) -> float:
    """The α up to ``max_alpha`` with the best score, the smallest among equals. With ``max_alpha`` = 1 the
    fine-tuned model may be chosen, and no merge scoring below it is; below 1, the best merge up to it is
    chosen whatever the fine-tuned model scored (when the grid has no α that small, its smallest)."""
    allowed = {a: s for a, s in scores.items() if a <= max_alpha} or {min(scores): scores[min(scores)]}
    floor = allowed.get(FINETUNED_ALPHA, float("-inf"))
    best = max(allowed.values())
    return min(alpha for alpha, score in allowed.items() if score >= floor and score == best)


def merge_with_start(model, start: dict, evaluate: Callable, alphas: Sequence[float],
                     foreign: Callable | None = None, start_score: float | None = None,
                     max_alpha: float = FINETUNED_ALPHA) -> dict:
    """Score ``model`` (the fine-tuned one) merged with ``start`` at each α of ``alphas`` (1 added) with
    ``evaluate(model) -> score``, leave the merge chosen up to ``max_alpha`` (:func:`choose_alpha`) in
    ``model`` and return what was done. The start
    itself (α = 0) is reported, from ``start_score`` when training measured it, but chosen only when it is
    in ``alphas``. ``foreign(model) -> score`` (optional) also scores the start, the fine-tuned and the
    chosen model on a collection never trained on."""
    tuned = snapshot(model)
    grid = sorted({float(a) for a in alphas} | {FINETUNED_ALPHA})
    validation = {}
    for alpha in grid:
        load_merge(model, start, tuned, alpha)
        validation[alpha] = float(evaluate(model))
    chosen = choose_alpha(validation, max_alpha)
    if start_score is None and 0.0 not in validation:
        load_merge(model, start, tuned, 0.0)
        start_score = float(evaluate(model))
    ends = {"base": 0.0, "fine_tuned": FINETUNED_ALPHA, "merged": chosen}
    far: dict[float, float] = {}
    for alpha in dict.fromkeys(ends.values()) if foreign is not None else ():
        load_merge(model, start, tuned, alpha)
        far[alpha] = float(foreign(model))
    load_merge(model, start, tuned, chosen)
    scores = {0.0: validation.get(0.0, start_score), **validation}
    return {"alpha": chosen, "grid": grid, "max_alpha": max_alpha,
            "validation": {f"{a:g}": s for a, s in validation.items()},
            "scores": {name: scores[alpha] for name, alpha in ends.items()},
            **({"foreign_scores": {name: far[alpha] for name, alpha in ends.items()}} if far else {})}


def start_score_logged(log_history: list[dict], metric: str | None) -> float | None:
    """The validation score training logged before its first step (``eval_on_start``), if it did."""
    return next((row[metric] for row in log_history if row.get("step") == 0 and metric in row), None)


def merge_after_training(model, start: dict | None, evaluator, metric: str | None, alphas: Sequence[float],
                         run_root: Path, batch_size: int = 32, log_history: Sequence[dict] = (),
                         progress: bool = True, max_alpha: float = FINETUNED_ALPHA) -> dict:
    """The merge ``finetune`` makes (``model`` holds the best checkpoint, ``start`` the weights training
    started from, ``evaluator`` and ``metric`` pick checkpoints), with the offline retention proxy
    (``helpers.training.foreign``) when the run is not on the sample corpus; or why it was skipped. Without
    ``progress`` (a model trained on the side) nothing is printed."""
    from helpers.training.foreign import foreign_scorer, foreign_summary

    if start is None or not alphas:
        return {"skipped": True, "reason": "turned off (TrainConfig.merge_alphas is empty)"}
    if evaluator is None or metric is None:
        record = {"skipped": True, "reason": "no validation questions to choose α on"}
        if progress:
            logger.info(merge_summary(record))
        return record
    started = time.perf_counter()
    key = metric.removeprefix("eval_")
    foreign, info = foreign_scorer(run_root, model.get_embedding_dimension(), batch_size)
    record = merge_with_start(model, start, lambda m: evaluator(m)[key], alphas, foreign,
                              start_score_logged(list(log_history), metric), max_alpha)
    far = record.pop("foreign_scores", None)
    record |= {"metric": key, "foreign": info | ({"scores": far} if far else {}),
               "seconds": round(time.perf_counter() - started, 1)}  # proxy included
    if progress:
        logger.info(f"{merge_summary(record)}\n{foreign_summary(record['foreign'])}")
    return record


def merge_summary(record: dict) -> str:
    """What the merge chose and what it means, in words (for the run report)."""
    if not record:
        return ""
    if record.get("skipped"):
        return f"Merge with the base: skipped ({record['reason']})."
    alpha, s = record["alpha"], record["scores"]
    scores = (f"validation nDCG@10 base {s['base']:.3f}, fine-tuned {s['fine_tuned']:.3f}, "
              f"merged {s['merged']:.3f}")
    grid = ", ".join(f"{a:g}" for a in record["grid"])
    capped = alpha < FINETUNED_ALPHA and s["fine_tuned"] > s["merged"]
    if alpha == FINETUNED_ALPHA:
        meaning = "no merge scored better than the fine-tuned model, which is saved as it is"
    elif capped:
        meaning = (f"the kit's own validation questions rate the fine-tuned model higher, but they reward "
                   f"copying the chunks' words; the guard saves at most "
                   f"α = {record.get('max_alpha', alpha):g} of the way (TrainConfig.merge_max_alpha), which "
                   "on people's questions kept nearly all of the gain where training helped and more of it "
                   "where training overshot")
    elif alpha == 0.0:
        why = ("fine-tuning lowered the validation score" if s["base"] > s["fine_tuned"] else
               "validation could not tell the fine-tuned model from the base")
        meaning = (f"{why}: the saved model is the starting one (the base, with its corpus rotation if on), "
                   "so nothing learnt is kept")
    else:
        meaning = (f"the saved model keeps {1 - alpha:.0%} of the starting weights and scores at least as "
                   "well as the fine-tuned one on validation, so it should forget less of what the base knew")
    saved = "" if alpha == FINETUNED_ALPHA else " The evaluation scores this saved model as \"fine-tuned\"."
    return (f"Merge with the base (θ = (1 − α)·base + α·fine-tuned, validation scored at α = {grid}): "
            f"α = {alpha:g}; "
            f"{meaning} ({scores}).{saved}")
