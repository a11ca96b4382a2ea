"""The verdict in plain words: did fine-tuning help, at which dimension, how sure, and what the questions
could see at all (the smallest difference each query set detects, from its paired bootstrap)."""

from __future__ import annotations

from helpers.evaluation.numbers import interval, number
from helpers.evaluation.result import EvalResult, QuerySetResult, mean, query_sets
from helpers.evaluation.systems import (
    BASE,
    BASE_ROTATED,
    BM25,
    FINETUNED,
    GOLD_UNSEEN,
    query_set_label,
)

VERDICT_HEADER = ["dims", "base", "fine-tuned", "difference", "95% interval", "rotation", "training",
                  "detectable", "verdict"]
VERDICT_NOTE = ("In the tables: the difference is fine-tuned minus base with its 95% interval, split into "
                "what the rotation onto the chunks gives (no training) and what training adds on top; "
                "detectable is the smallest change these questions would show 4 times in 5 (80% power).")
PEOPLES_QUESTIONS = ("gold", GOLD_UNSEEN)  # query sets people wrote; the others are the kit's own
# What a verdict on synthetic questions alone may claim: a score on these questions, not that it "helped".
SYNTHETIC_WORDS = {"helped": "higher on these questions", "hurt": "lower on these questions"}


def verdict_rows(query_set: QuerySetResult) -> list[dict]:
    """One row per dimension of fine-tuned vs base nDCG@10 on one query set."""
    from helpers.evaluation.stage import verdict

    tests = query_set.get("paired_tests", [])
    vs_rotated = {t["dim"]: t for t in tests if t["a"] == BASE_ROTATED}
    rows = []
    for test in (t for t in tests if t["a"] == BASE):
        dim, training = test["dim"], vs_rotated.get(test["dim"], {})
        rotated = mean(query_set, BASE_ROTATED, dim)
        base = mean(query_set, BASE, dim)
        rows.append({"dim": dim, "verdict": verdict(test), "diff": test["mean_diff"],
                     "low": test.get("ci_low"), "high": test.get("ci_high"),
                     "detectable": test.get("detectable_diff"), "n_queries": test.get("n_queries"),
                     "base": base, "fine_tuned": mean(query_set, FINETUNED, dim),
                     "rotation": None if rotated is None or base is None else rotated - base,
                     "training": training.get("mean_diff"), "training_low": training.get("ci_low"),
                     "training_high": training.get("ci_high")})
    return rows


def verdict_table(query_set: QuerySetResult) -> list[list[str]]:
    """``verdict_rows`` as text cells under ``VERDICT_HEADER`` (numbers rounded to 3 places)."""
    return [[r["dim"], number(r["base"]), number(r["fine_tuned"]), number(r["diff"], signed=True),
             interval(r["low"], r["high"]), number(r["rotation"], signed=True),
             number(r["training"], signed=True), number(r["detectable"]), r["verdict"]]
            for r in verdict_rows(query_set)]


def split_sentence(rows: list[dict]) -> str:
    """How much of the difference the rotation gives and how much training adds, at full size and at the
    smallest dimension: 'Training alone (vs the base rotated onto these chunks) adds +0.028 at 384 dims
    (95% interval +0.002 to +0.054) and +0.019 at 64; the rotation gives +0.000 and +0.135.'"""
    known = [r for r in rows if r.get("training") is not None and r.get("rotation") is not None]
    if not known:
        return ""
    full, small = known[0], known[-1]
    text = (f"Training alone (vs the base rotated onto these chunks) adds "
            f"{number(full['training'], signed=True)} at {full['dim']} dims "
            f"(95% interval {interval(full['training_low'], full['training_high'])})")
    if small is full:
        return f"{text}; the rotation gives {number(full['rotation'], signed=True)}."
    return (f"{text} and {number(small['training'], signed=True)} at {small['dim']}; the rotation gives "
            f"{number(full['rotation'], signed=True)} and {number(small['rotation'], signed=True)}.")


def verdict_sentence(name: str, query_set: QuerySetResult, people_wrote_any: bool = True) -> str:
    """E.g. 'Fine-tuned vs base on the test questions (240): helped at 128, 64 dims; no clear difference at
    384 dims. With 240 questions a change smaller than 0.045 nDCG@10 at 128 dims would go unseen ...'

    Without any question people wrote (``people_wrote_any`` False), a synthetic set's sentence says what it
    measured instead (:func:`synthetic_sentence`)."""
    if not people_wrote_any and name not in PEOPLES_QUESTIONS:
        return synthetic_sentence(name, query_set)
    rows = verdict_rows(query_set)
    n = query_set.get("n_queries", "?")
    text = f"Fine-tuned vs base on the {query_set_label(name)} ({n}): {_outcome(rows)}."
    parts = (text, split_sentence(rows), lexical_sentence(name, query_set, rows), detectable_sentence(rows))
    return " ".join(part for part in parts if part)


def lexical_sentence(name: str, query_set: QuerySetResult, rows: list[dict]) -> str:
    """When BM25 beats the fine-tuned model, say so and why: the questions share the passages' words."""
    bm25 = mean(query_set, BM25)
    tuned = rows[0]["fine_tuned"] if rows else None
    if bm25 is None or tuned is None or bm25 <= tuned:
        return ""
    why = ("people asked them in the documents' own words" if name in PEOPLES_QUESTIONS else
           "they were written from the very chunks they must find and share their words")
    return f"BM25, plain word matching, scores {number(bm25)} here, above the fine-tuned model: {why}."


def synthetic_sentence(name: str, query_set: QuerySetResult) -> str:
    """The verdict on synthetic questions when nobody wrote any: what these questions measure (matching the
    words of the chunk they were written from, which BM25 does well) and that real questions are unknown."""
    n = query_set.get("n_queries", "?")
    bm25 = mean(query_set, BM25)
    outcome = _outcome(verdict_rows(query_set), SYNTHETIC_WORDS)
    return (f"Fine-tuned vs base on the {query_set_label(name)} ({n}), all synthetic: {outcome}. These "
            "questions were written from the very chunks they must find and share their words (BM25 scores "
            f"{bm25:.3f} on them): they measure word matching, so whether fine-tuning helps on the questions "
            "people ask is unknown.")


def headline_set(report: EvalResult) -> str:
    """The query set the verdict leads with: questions people wrote when there are, else the first."""
    sets = [name for name, qs in query_sets(report).items() if qs.get("verdict")] or list(query_sets(report))
    return next((name for name in PEOPLES_QUESTIONS if name in sets), sets[0])


def verdict_sets(report: EvalResult) -> dict[str, QuerySetResult]:
    """The query sets with a verdict, the headline set first (the order every view gives them in)."""
    first = headline_set(report)
    sets = {name: qs for name, qs in query_sets(report).items() if qs.get("verdict")}
    return dict(sorted(sets.items(), key=lambda item: item[0] != first))


def verdict_sentences(report: EvalResult) -> list[str]:
    """One sentence per query set, the headline set first: the run's verdict, as the report, the terminal
    and notebook 04 all give it."""
    people = people_wrote_any(report)
    return [verdict_sentence(name, qs, people) for name, qs in verdict_sets(report).items()]


def people_wrote_any(report: EvalResult) -> bool:
    """Whether an evaluation scored questions people wrote."""
    return any(name in PEOPLES_QUESTIONS for name in query_sets(report))


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

