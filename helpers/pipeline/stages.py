"""The five course stages as pipeline steps: each calls one stage module's entry point."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from helpers.core import config, presets
from helpers.pipeline.runner import RunSettings, Stage


def _chunk(s: RunSettings) -> dict:
    from helpers.chunking.chunkers import build_chunks
    from helpers.core.models import load_embedding_model

    # Chunk lengths are measured with the base model's own tokenizer, so nothing is truncated later.
    return build_chunks(s.pdf_dir, s.paths.chunks, tokenizer=load_embedding_model(s.model_id).model)


def _questions(s: RunSettings) -> dict:
    from helpers.questions.generate import build_pairs

    # The offline MiniLM is enough to catch near-duplicate questions, whatever model is fine-tuned.
    return build_pairs(s.paths.chunks, s.paths.pairs, profile=s.profile, generator=s.generator,
                       cache_dir=config.llm_cache_dir(s.runs_dir), model="fallback", split=s.split)


def _train(s: RunSettings) -> dict:
    from helpers.training.trainer import finetune

    summary = finetune(s.paths.pairs, s.paths.model, model_id=s.model_id, profile=s.profile).summary()
    if s.preset.kind == "static":
        return summary
    # A static model trained on the same pairs, for the evaluation to compare with: seconds on a CPU.
    static = finetune(s.paths.pairs, s.paths.static_model, model_id=presets.STATIC_PRESET, profile=s.profile,
                      checkpoint_dir=s.paths.checkpoints_static, progress=False)
    return summary | {"static_model": static.base_model, "static_pairs_per_second": static.pairs_per_second,
                      "static_best_metric": static.best_metric}


def _evaluate(s: RunSettings) -> dict:
    from helpers.evaluation.stage import evaluate_run

    result = evaluate_run(s.paths, base_model_id=s.model_id)
    return {"written": str(s.paths.eval), "disagreement": result.get("disagreement")}


def _rag(s: RunSettings) -> dict:
    from helpers.rag.scoring import rag_evaluate_run

    answers = rag_evaluate_run(s.paths, base_model_id=s.model_id, profile=s.profile)["answers"]
    return {"written": str(s.paths.rag_eval), "answers": answers["answered"], "pending": answers["pending"],
            "failed": answers["pending"] if answers["all_failed"] else None}


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
