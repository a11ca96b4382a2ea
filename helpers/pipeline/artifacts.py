"""What the solutions notebooks use to find (or make) the artifacts the earlier chapters leave on disk."""

from __future__ import annotations

import logging

from helpers.core import config

logger = logging.getLogger(__name__)

ARTIFACTS = ("chunks", "pairs", "model", "eval")


def missing_artifacts(paths: config.RunPaths, upto: str) -> list[str]:
    """Which of the artifacts up to ``upto`` (chunks, pairs, model, eval) the run lacks, in order."""
    present = {"chunks": paths.chunks.exists(), "pairs": (paths.pairs / "dataset_dict.json").exists(),
               "model": (paths.model / "config_sentence_transformers.json").exists(),
               "eval": paths.eval.exists()}
    return [name for name in ARTIFACTS[: ARTIFACTS.index(upto) + 1] if not present[name]]


def ensure_artifacts(paths: config.RunPaths, upto: str) -> None:
    """Make what the earlier notebooks leave on disk, up to ``upto``, where it is missing (course corpus).

    Free when the chapters have run: an artifact already there is kept.
    """
    for name in missing_artifacts(paths, upto):
        logger.info(f"{name} missing: making it now, as the notebook that writes it would")
        if name == "chunks":
            from helpers.chunking.chunkers import build_chunks

            build_chunks(config.COURSE_CORPUS_DIR, paths.chunks)
        elif name == "pairs":
            from helpers.questions.generate import build_pairs

            build_pairs(paths.chunks, paths.pairs)
        elif name == "model":
            from helpers.training.trainer import finetune

            finetune(paths.pairs, paths.model)
        else:
            from helpers.evaluation.stage import evaluate_run

            evaluate_run(paths)
