"""The verdict in plain words: did fine-tuning help, at which dimension, how sure, and what the questions
could see at all (the smallest difference each query set detects, from its paired bootstrap)."""

from __future__ import annotations

from helpers.evaluation.systems import BASE, FINETUNED, HEADLINE, query_set_label

VERDICT_HEADER = ["dims", "base", "fine-tuned", "difference", "95% interval", "detectable", "verdict"]


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


def verdict_sentence(name: str, query_set: dict) -> str:
    """E.g. 'Fine-tuned vs base on the test questions (240): helped at 128, 64 dims; no clear difference at
    384 dims. With 240 questions a change smaller than 0.045 nDCG@10 at 128 dims would go unseen ...'"""
    rows = verdict_rows(query_set)
    groups: dict[str, list[str]] = {}
    for row in rows:
        groups.setdefault(row["verdict"], []).append(row["dim"])
    outcome = "; ".join(f"{v} at {', '.join(dims)} dims" for v, dims in groups.items())
    n = query_set.get("n_queries", "?")
    text = f"Fine-tuned vs base on the {query_set_label(name)} ({n}): {outcome}."
    power = detectable_sentence(rows)
    return f"{text} {power}" if power else text


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


def number(value: float | None, signed: bool = False) -> str:
    """A score or difference at 3 places (``+0.093``; ``0.000``, never ``-0.000``); empty for None."""
    if value is None:
        return ""
    if signed and abs(value) < 0.0005:
        return "0.000"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def interval(low: float | None, high: float | None) -> str:
    """``-0.011 to +0.058``; empty when unknown."""
    return "" if low is None or high is None else f"{number(low, True)} to {number(high, True)}"


def p_value(p: float) -> str:
    """``< 0.001``, else three places (``0.090``, ``1.000``)."""
    return "< 0.001" if p < 0.001 else f"{p:.3f}"
