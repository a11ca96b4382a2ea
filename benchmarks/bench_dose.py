"""How much training, and which, does the course corpus need before people's questions see it? Side by side.

    python benchmarks/bench_dose.py [--variants smoke epochs2 q3 ...] [--profile smoke]

Each variant is the ``--profile`` with some sizes changed and the main model's ``TrainConfig`` with some
settings changed (``VARIANTS``: the training dose, questions per chunk, the GISTEmbed loss guided by the
frozen starting model, one mined hard negative per question with a 5% relative margin, TSDAE on the chunks
before fine-tuning). The kit's chunk, questions, train and evaluate stages run on the course corpus
(``config.COURSE_CORPUS_DIR``), offline, as ``python -m helpers run`` runs them, into
``data/downloads/bench/runs/dose-<variant>``. Printed per variant: training pairs and steps, the train stage's
seconds, the synthetic validation score before and after training, the merge's α, and on the corpus' own
people's questions (``gold``) what training adds over the base rotated onto the chunks at every dimension
(mean nDCG@10 difference and its 95% interval, the evaluation's paired test), the column the course's verdict
reports.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from helpers.core import config  # noqa: E402

RUNS_DIR = REPO / "data" / "downloads" / "bench" / "runs"
STAGE_NAMES = ("chunk", "questions", "train", "evaluate")
# name -> (Profile fields changed, TrainConfig fields changed for the main model)
VARIANTS: dict[str, tuple[dict, dict]] = {
    "smoke": ({}, {}),
    "epochs2": ({"epochs": 2}, {}),
    "q3": ({"questions_per_chunk": 3}, {}),
    "q3-epochs2": ({"questions_per_chunk": 3, "epochs": 2}, {}),
    "gist": ({}, {"loss": "gist"}),
    "hard-negatives": ({}, {"hard_negatives": 1}),
    "tsdae": ({}, {"tsdae_steps": 10_000}),  # one epoch over the chunks: the steps run out first
    "lr5e-5": ({}, {"lr": 5e-5}),
    "epochs2-lr4e-5": ({"epochs": 2}, {"lr": 4e-5}),
    "epochs3": ({"epochs": 3}, {}),
    "batch16": ({"batch_size": 16}, {}),
    "batch8": ({"batch_size": 8}, {}),
}


@contextlib.contextmanager
def main_model_trained_with(changes: dict):
    """``TrainConfig.from_profile`` with ``changes`` applied for the main model (not the static one the
    train stage trains beside it), in this process only."""
    from helpers.training.settings import TrainConfig

    original = TrainConfig.from_profile.__func__

    def changed(cls, profile=None, preset=None, hardware=None, **overrides):
        cfg = original(cls, profile, preset=preset, hardware=hardware, **overrides)
        static = preset is not None and getattr(preset, "kind", None) == "static"
        return cfg if static else dataclasses.replace(cfg, **changes)

    TrainConfig.from_profile = classmethod(changed)
    try:
        yield
    finally:
        TrainConfig.from_profile = classmethod(original)


def run_variant(name: str, profile: config.Profile, model: str) -> config.RunPaths:
    """The main job's first four stages, changed as ``VARIANTS[name]`` says."""
    from helpers.core.settings import RunSettings
    from helpers.pipeline.runner import run_all
    from helpers.pipeline.stages import STAGES

    profile_changes, train_changes = VARIANTS[name]
    settings = RunSettings(pdf_dir=config.COURSE_CORPUS_DIR, model_id=model,
                           profile=dataclasses.replace(profile, **profile_changes), run=f"dose-{name}",
                           runs_dir=RUNS_DIR, generator="offline")
    with main_model_trained_with(train_changes):
        run_all([s for s in STAGES if s.name in STAGE_NAMES], settings)
    return settings.paths


def measured(paths: config.RunPaths) -> dict:
    """What one variant's run recorded: training sizes, validation, merge and the gold verdict rows."""
    from helpers.evaluation.verdicts import verdict_rows

    train = json.loads(paths.stage_record("train").read_text())
    summary = train["summary"]
    gold = json.loads(paths.eval.read_text())["query_sets"]["gold"]
    merge = summary["merge"]
    return {"pairs": summary["n_train"], "steps": summary["steps"], "seconds": train["seconds"],
            "validation": (merge["scores"]["base"], summary["best_metric"]), "alpha": merge["alpha"],
            "rows": verdict_rows(gold)}


def show(results: dict[str, dict]) -> None:
    """One line per variant and dimension."""
    print("| variant | pairs | steps | train s | validation | α | dims | fine-tuned | training "
          "| 95% interval |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, r in results.items():
        start, best = r["validation"]
        for row in r["rows"]:
            print(f"| {name} | {r['pairs']} | {r['steps']} | {r['seconds']:.0f} | "
                  f"{start:.3f} -> {best:.3f} | {r['alpha']} | {row['dim']} | {row['fine_tuned']:.3f} | "
                  f"{row['training']:+.3f} | {row['training_low']:+.3f} to {row['training_high']:+.3f} |")


def main() -> None:
    from helpers.core import console

    console.kit_lines_only()  # the kit's lines, not the libraries' bars and load reports, as the CLI
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--profile", default="smoke", choices=sorted(config.PROFILES))
    parser.add_argument("--model", default="fallback", help="base model (offline: the bundled MiniLM)")
    args = parser.parse_args()
    profile = config.get_profile(args.profile)
    results = {name: measured(run_variant(name, profile, args.model)) for name in args.variants}
    show(results)


if __name__ == "__main__":
    main()
