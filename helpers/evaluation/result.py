"""The evaluation result as types, and the accessors its readers use (the verdicts, the views, the report,
the CLI, notebook 04): a key of eval.json is spelled here and in the stage that writes it, nowhere else.
The result stays a plain dict (TypedDicts), so eval.json is exactly its serialisation."""

from __future__ import annotations

from pathlib import Path
from typing import TypedDict

from helpers.core.io import read_json
from helpers.evaluation.systems import HEADLINE, NO_DIM


class Score(TypedDict):
    """One metric: its mean over the questions and the 95% bootstrap interval."""

    mean: float
    low: float
    high: float


MetricTable = dict[str, dict[str, Score]]  # dimension ("384"; NO_DIM for BM25) -> metric -> score


class PairedTest(TypedDict, total=False):
    """System ``b`` minus system ``a`` on one metric at one dimension, over the same questions."""

    a: str
    b: str
    dim: str
    metric: str
    mean_diff: float
    ci_low: float
    ci_high: float
    p_value: float
    n_queries: int
    test: str
    detectable_diff: float
    power: float


class QuerySetResult(TypedDict, total=False):
    """Everything the evaluation says about one query set."""

    query_set: str
    source: str  # where the questions came from
    generator: list[str]
    held_out_documents: list[str]  # the unseen sets': documents kept out of training
    n_queries: int
    n_corpus: int
    metrics: dict[str, MetricTable]  # system -> its table
    paired_tests: list[PairedTest]
    headline_test: PairedTest | None
    verdict: str | None
    storage: list[dict]  # one row per system, dimension and precision
    worsened: list[dict]  # the questions fine-tuning hurt most
    by_type: dict[str, dict]  # question type -> its count and each system's mean nDCG@10


class EvalResult(TypedDict):
    """What the evaluation stage returns and writes to eval.json."""

    profile: str
    similarity: str
    confidence: str
    storage_note: str
    systems: dict[str, dict]  # system -> which model made its numbers
    query_sets: dict[str, QuerySetResult]
    skipped_query_sets: dict[str, str]  # query set -> why it was left out
    disagreement: str | None
    retention: dict
    plots: list[str]


def load_result(path: Path | str) -> EvalResult:
    """A run's eval.json."""
    return read_json(path)


def query_sets(result: EvalResult) -> dict[str, QuerySetResult]:
    """Every query set scored, by name, in the order the stage scored them."""
    return result["query_sets"]


def has_query_set(result: EvalResult, name: str) -> bool:
    return name in result["query_sets"]


def query_set(result: EvalResult, name: str) -> QuerySetResult:
    return result["query_sets"][name]


def skipped(result: EvalResult, name: str) -> bool:
    """Whether the query set ``name`` was left out (gold questions a run does not have)."""
    return name in result.get("skipped_query_sets", {})


def metric_tables(scored: QuerySetResult) -> dict[str, MetricTable]:
    """Each system's metric table on one query set."""
    return scored.get("metrics", {})


def mean(scored: QuerySetResult, system: str, dim: str = NO_DIM, metric: str = HEADLINE) -> float | None:
    """A system's mean ``metric`` at ``dim`` on one query set; None when it was not scored there."""
    try:
        return metric_tables(scored)[system][dim][metric]["mean"]
    except KeyError:
        return None
