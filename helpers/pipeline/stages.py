"""The five course stages as pipeline steps: each calls its stage package's ``run(paths, settings)``,
imported when the stage runs (so the libraries load only then)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from helpers.core.config import RunPaths
from helpers.core.settings import RunSettings
from helpers.pipeline.runner import Stage


def _chunk(paths: RunPaths, s: RunSettings) -> dict:
    from helpers.chunking import run

    return run(paths, s)


def _questions(paths: RunPaths, s: RunSettings) -> dict:
    from helpers.questions import run

    return run(paths, s)


def _train(paths: RunPaths, s: RunSettings) -> dict:
    from helpers.training import run

    return run(paths, s)


def _evaluate(paths: RunPaths, s: RunSettings) -> dict:
    from helpers.evaluation import run

    return run(paths, s)


def _rag(paths: RunPaths, s: RunSettings) -> dict:
    from helpers.rag import run

    return run(paths, s)


def _llm(s: RunSettings, generator: str = "auto") -> dict | None:
    """The LLM a stage will use (model and URL, never the key), None offline: an LLM configured after an
    offline run, or another model, makes the stage run again."""
    from helpers.questions.generate import resolve_generator

    mode, llm = resolve_generator(generator)
    return llm.public() if mode == "llm" else None


def _profile(s: RunSettings) -> dict:
    return asdict(s.profile)


def _model(s: RunSettings) -> dict:
    """The base model as asked for and its resolved preset (a changed preset table reruns the stage)."""
    return {"model": s.model_id, "preset": s.preset.as_dict()}


def _gold(s: RunSettings) -> Path:
    """The run's own gold questions (``helpers gold draft``) when written, else the sample's."""
    from helpers.core.gold import gold_path

    return gold_path(s.paths.root)


STAGES: list[Stage] = [
    Stage("chunk", lambda s: [s.pdf_dir], lambda p: p.chunks, _chunk, _model),
    Stage("questions", lambda s: [s.paths.chunks], lambda p: p.pairs, _questions,
          lambda s: {"profile": _profile(s), "generator": s.generator, "split": s.split,
                     "llm": _llm(s, s.generator)}),
    Stage("train", lambda s: [s.paths.pairs], lambda p: p.model, _train,
          lambda s: {"profile": _profile(s), **_model(s)}),
    Stage("evaluate", lambda s: [s.paths.chunks, s.paths.pairs, s.paths.model, _gold(s)], lambda p: p.eval,
          _evaluate, _model),
    Stage("rag", lambda s: [s.paths.chunks, s.paths.pairs, s.paths.model, _gold(s)], lambda p: p.rag_eval,
          _rag, lambda s: {"profile": _profile(s), **_model(s), "llm": _llm(s)}),
]
STAGE_NAMES = [stage.name for stage in STAGES]
