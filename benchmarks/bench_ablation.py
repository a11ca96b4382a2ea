"""Which training changes carry over to people's questions? One change at a time, on both team benchmarks.

    python benchmarks/corpora/build_debian_faq.py; python benchmarks/corpora/build_debian_docs.py  # once
    python benchmarks/bench_ablation.py [--variants smoke gist hard-negatives tsdae q3]
                                        [--corpora faq docs] [--profiles smoke workshop]

A variant is a profile with some sizes changed and the main model's ``TrainConfig`` with some settings
changed (``bench_dose.VARIANTS``: the plain profile, the GISTEmbed loss guided by the frozen start, one
mined hard negative per question with a 5% relative margin, TSDAE on the chunks before fine-tuning,
three questions per chunk, doses). For every (corpus, profile, variant) the kit's chunk, questions and
train stages run offline into ``data/downloads/bench/runs/ablation-<variant>-<corpus>-<profile>``, and
the saved model (the merge's α included) is scored on the corpus' people's questions against the base
and the base rotated onto the chunks. Printed, one row per cell and dimension: nDCG@10 of the fine-tuned
model and what training adds over the rotated base (mean difference, 95% interval of the paired test).
The variant that helps is the one whose rows beat the plain profile's on both corpora.
Numbers go to ``data/downloads/bench/runs/ablation.json`` (cells already there are read, not rerun).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from bench_debian_faq import RUNS_DIR, faq_queries, score, train_on  # noqa: E402
from bench_dose import VARIANTS, main_model_trained_with  # noqa: E402
from bench_guard import CORPORA  # noqa: E402

from helpers.core import config  # noqa: E402

RESULTS = RUNS_DIR / "ablation.json"


def cell(variant: str, corpus: str, profile: config.Profile, model: str) -> dict:
    """Train ``variant`` on ``corpus`` and score it on the corpus' people's questions."""
    from helpers.chunking.chunkers import load_chunks
    from helpers.evaluation.stage import training_info
    from helpers.evaluation.systems import BASE_ROTATED, FINETUNED

    profile_changes, train_changes = VARIANTS[variant]
    with main_model_trained_with(train_changes):
        paths = train_on(CORPORA[corpus], f"ablation-{variant}-{corpus}-{profile.name}",
                         dataclasses.replace(profile, **profile_changes), model)
    data, _ = faq_queries(load_chunks(paths.chunks), CORPORA[corpus] / "questions.jsonl")
    result = score(paths, data, model)
    trained = training_info(paths.model)["result"]
    rows = []
    for dim in result["dims"]:
        tuned = result["tables"][FINETUNED][dim]["ndcg@10"]["mean"]
        test = result["tests"][(BASE_ROTATED, dim)]
        rows.append({"dim": dim, "fine_tuned": tuned, "training": test["mean_diff"],
                     "low": test["ci_low"], "high": test["ci_high"]})
    return {"pairs": trained["n_train"], "steps": trained["steps"], "alpha": trained["merge"]["alpha"],
            "questions": result["n_queries"], "rows": rows}


def show(results: dict[str, dict]) -> None:
    print("| corpus | profile | variant | pairs | steps | α | dims | fine-tuned "
          "| training (vs rotated base) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for key, r in results.items():
        corpus, profile, variant = key.split("/")
        for row in r["rows"]:
            print(f"| {corpus} | {profile} | {variant} | {r['pairs']} | {r['steps']} | {r['alpha']} | "
                  f"{row['dim']} | {row['fine_tuned']:.3f} | {row['training']:+.3f} "
                  f"[{row['low']:+.3f}, {row['high']:+.3f}] |")


def main() -> None:
    from helpers.core import console

    console.kit_lines_only()
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="+", default=["smoke", "gist", "hard-negatives", "tsdae", "q3"],
                        choices=list(VARIANTS))
    parser.add_argument("--corpora", nargs="+", default=sorted(CORPORA), choices=sorted(CORPORA))
    parser.add_argument("--profiles", nargs="+", default=["smoke"], choices=sorted(config.PROFILES))
    parser.add_argument("--model", default="fallback", help="base model (offline: the bundled MiniLM)")
    args = parser.parse_args()
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    for profile in args.profiles:
        for corpus in args.corpora:
            if not (CORPORA[corpus] / "questions.jsonl").is_file():
                raise SystemExit(f"No benchmark at {CORPORA[corpus]}: see this script's first lines")
            for variant in args.variants:
                key = f"{corpus}/{profile}/{variant}"
                if key not in results:
                    results[key] = cell(variant, corpus, config.get_profile(profile), args.model)
                    RESULTS.write_text(json.dumps(results, indent=1))
    show({k: v for k, v in results.items() if k.split("/")[2] in args.variants})


if __name__ == "__main__":
    main()
