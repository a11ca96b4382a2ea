"""The verdict in plain words: did fine-tuning help, at which dimension, how sure, and what the questions
could see at all (the smallest difference each query set detects, from its paired bootstrap)."""

from __future__ import annotations

from helpers.evaluation.numbers import interval, number
from helpers.evaluation.systems import BASE, BM25, FINETUNED, GOLD_UNSEEN, HEADLINE, query_set_label

VERDICT_HEADER = ["dims", "base", "fine-tuned", "difference", "95% interval", "detectable", "verdict"]
PEOPLES_QUESTIONS = ("gold", GOLD_UNSEEN)  # query sets people wrote; the others are the kit's own
# What a verdict on synthetic questions alone may claim: a score on these questions, not that it "helped".
SYNTHETIC_WORDS = {"helped": "higher on these questions", "hurt": "lower on these questions"}


def verdict_rows(query_set: dict) -> list[dict]:
    """One row per dimension of fine-tuned vs base nDCG@10 on one query set (eval.json's ``query_sets``)."""
    from helpers.evaluation.stage import verdict

    metrics = query_set.get("metrics", {})
    rows = []
    for test in query_set.get("paired_tests", []):
        if test["a"] != BASE:
            continue
        dim = test["dim"]
        rows.append({"dim": dim, "verdict": verdict(test), "diff": test["mean_diff"],
                     "low": test.get("ci_low"), "high": test.get("ci_high"),
                     "detectable": test.get("detectable_diff"), "n_queries": test.get("n_queries"),
                     "base": _mean(metrics, BASE, dim), "fine_tuned": _mean(metrics, FINETUNED, dim)})
    return rows


def verdict_table(query_set: dict) -> list[list[str]]:
    """``verdict_rows`` as text cells under ``VERDICT_HEADER`` (numbers rounded to 3 places)."""
    return [[r["dim"], number(r["base"]), number(r["fine_tuned"]), number(r["diff"], signed=True),
             interval(r["low"], r["high"]), number(r["detectable"]), r["verdict"]]
            for r in verdict_rows(query_set)]


def verdict_sentence(name: str, query_set: dict, people_wrote_any: bool = True) -> str:
    """E.g. 'Fine-tuned vs base on the test questions (240): helped at 128, 64 dims; no clear difference at
    384 dims. With 240 questions a change smaller than 0.045 nDCG@10 at 128 dims would go unseen ...'

    Without any question people wrote (``people_wrote_any`` False), a synthetic set's sentence says what it
    measured instead (:func:`synthetic_sentence`)."""
    if not people_wrote_any and name not in PEOPLES_QUESTIONS:
        return synthetic_sentence(name, query_set)
    rows = verdict_rows(query_set)
    n = query_set.get("n_queries", "?")
    text = f"Fine-tuned vs base on the {query_set_label(name)} ({n}): {_outcome(rows)}."
    power = detectable_sentence(rows)
    return f"{text} {power}" if power else text


def synthetic_sentence(name: str, query_set: dict) -> str:
    """The verdict on synthetic questions when nobody wrote any: what these questions measure (matching the
    words of the chunk they were written from, which BM25 does well) and that real questions are unknown."""
    n = query_set.get("n_queries", "?")
    bm25 = query_set["metrics"][BM25]["full"][HEADLINE]["mean"]
    outcome = _outcome(verdict_rows(query_set), SYNTHETIC_WORDS)
    return (f"Fine-tuned vs base on the {query_set_label(name)} ({n}), all synthetic: {outcome}. These "
            "questions were written from the very chunks they must find and share their words (BM25 scores "
            f"{bm25:.3f} on them): they measure word matching, so whether fine-tuning helps on the questions "
            "people ask is unknown.")


def people_wrote_any(report: dict) -> bool:
    """Whether an evaluation (eval.json) scored questions people wrote."""
    return any(name in PEOPLES_QUESTIONS for name in report.get("query_sets", {}))


def _outcome(rows: list[dict], words: dict[str, str] | None = None) -> str:
    """'helped at 128, 64 dims; no clear difference at 384 dims' (each verdict as ``words`` says it)."""
    groups: dict[str, list[str]] = {}
    for row in rows:
        groups.setdefault(row["verdict"], []).append(row["dim"])
    return "; ".join(f"{(words or {}).get(v, v)} at {', '.join(dims)} dims" for v, dims in groups.items())


def detectable_sentence(rows: list[dict]) -> str:
    """What the question set could see: its detectable difference at 128 dims (else the smallest dim)."""
    known = [r for r in rows if r.get("detectable") is not None]
    if not known:
        return ""
    row = next((r for r in known if r["dim"] == "128"), known[-1])
    return (f"With {row['n_queries']} questions a change smaller than {row['detectable']:.3f} nDCG@10 "
            f"at {row['dim']} dims would go unseen (80% power).")


def _mean(metrics: dict, system: str, dim: str) -> float | None:
    try:
        return metrics[system][dim][HEADLINE]["mean"]
    except KeyError:
        return None
