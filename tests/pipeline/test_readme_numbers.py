"""The README's numbers are the recorded run's (tests/pipeline/data/smoke_run, made by the run that drew
docs/images/ndcg_vs_dim.png): a new run means a new fixture, a new picture and new numbers, together."""

from __future__ import annotations

import json

from helpers.core import config
from helpers.evaluation.numbers import interval, number

RUN = config.REPO_ROOT / "tests" / "pipeline" / "data" / "smoke_run"


def _means(query_set: dict, system: str) -> list[float]:
    return [v["ndcg@10"]["mean"] for v in query_set["metrics"][system].values()]


def test_the_readme_quotes_the_recorded_run():
    readme = " ".join((config.REPO_ROOT / "README.md").read_text().split())  # line breaks as spaces
    report = json.loads((RUN / "eval.json").read_text())
    gold, test = report["query_sets"]["gold"], report["query_sets"]["test"]
    base, rotated, tuned = (_means(gold, s) for s in ("base", "base, rotated", "fine-tuned"))
    slash = "/".join
    assert f"{slash(f'{v:.3f}' for v in tuned)} vs {slash(f'{v:.3f}' for v in base)}" in readme
    assert slash(number(r - b, signed=True) for r, b in zip(rotated, base, strict=True)) in readme
    training = next(t for t in gold["paired_tests"] if t["a"] == "base, rotated")
    assert (f"training alone adds {number(training['mean_diff'], signed=True)} at full size (95% interval "
            f"{interval(training['ci_low'], training['ci_high'])})") in readme
    bm25 = {name: qs["metrics"]["bm25"]["full"]["ndcg@10"]["mean"]
            for name, qs in report["query_sets"].items()}
    assert f"BM25 scores {bm25['gold']:.3f} on these questions" in readme
    assert f"kit's {test['n_queries']} synthetic test questions it scores {bm25['test']:.3f}" in readme
    assert f"Debian FAQ's own {gold['n_queries']} questions" in readme
