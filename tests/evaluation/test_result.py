"""The evaluation result's accessors read eval.json as the stage writes it: the recorded smoke run's file."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.evaluation.result import (
    has_query_set,
    load_result,
    mean,
    metric_tables,
    query_set,
    query_sets,
    skipped,
)
from helpers.evaluation.systems import BM25, FINETUNED, HEADLINE, NO_DIM

RECORDED_EVAL = Path(__file__).parents[1] / "pipeline" / "data" / "smoke_run" / "eval.json"


@pytest.fixture(scope="module")
def result():
    return load_result(RECORDED_EVAL)


def test_query_sets_are_read_by_name_in_the_order_scored(result):
    assert list(query_sets(result)) == ["test", "gold"]
    assert has_query_set(result, "gold") and not has_query_set(result, "unseen")
    assert query_set(result, "test")["n_queries"] == 28


def test_mean_reads_a_systems_score_at_a_dimension(result):
    test = query_set(result, "test")
    tables = metric_tables(test)
    assert mean(test, BM25) == tables[BM25][NO_DIM][HEADLINE]["mean"]
    assert mean(test, FINETUNED, "384", "mrr@10") == tables[FINETUNED]["384"]["mrr@10"]["mean"]


def test_what_was_not_scored_reads_as_none_or_false(result):
    test = query_set(result, "test")
    assert mean(test, "no such system") is None
    assert mean(test, FINETUNED, "7") is None
    assert mean({}, BM25) is None
    assert not skipped(result, "gold")
    assert skipped({"skipped_query_sets": {"gold": "no gold file"}}, "gold")
