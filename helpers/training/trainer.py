"""Fine-tune the embedding model on (question, chunk) pairs with Matryoshka + in-batch-negatives loss.

The recipe fixes what the common notebook recipe gets wrong: every Matryoshka run trains the model's full
dimension too; batches never hold the same chunk twice (a repeated chunk is a false negative for the other
question); queries carry the model's query prompt in training, evaluation and the saved model; precision
follows the hardware; the best checkpoint by validation nDCG@10 is the one that is saved, merged with the
starting weights when validation scores the merge as well (``helpers.training.merge``).

This module assembles the recipe (``build_trainer``) and runs it (``finetune``, the one entry point:
notebooks and the CLI call it, and ``python -m helpers.training`` runs it under ``torchrun`` /
``accelerate launch`` for multi-GPU (DDP) training). The parts live beside it, one job each: ``settings``,
``losses``, ``arguments``, ``data``, ``negatives``, ``rotation``, ``persistence``, ``result``.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from helpers.core import config as kit_config
from helpers.core import console
from helpers.core.diskspace import disk_full_advice
from helpers.core.embeddings import run_store
from helpers.core.models import cap_max_seq_length, load_embedding_model
from helpers.core.presets import STATIC_PRESET
from helpers.core.settings import RunSettings
from helpers.questions.pairs import held_out_documents
from helpers.training.adaptation import adapt_to_corpus
from helpers.training.arguments import ddp_device, nan_callback, oom_advice, schedule, training_arguments
from helpers.training.batches import chunk_of_anchor, keep_chunks_apart
from helpers.training.checkpoints import marker_callback, seconds_before, training_disk_bytes
from helpers.training.data import (
    best_metric_name,
    build_evaluator,
    describe_validation,
    load_pairs,
    retrieval_corpus,
    training_columns,
    validation_corpus,
)
from helpers.training.dims import matryoshka_dims
from helpers.training.losses import build_loss
from helpers.training.merge import merge_after_training, snapshot
from helpers.training.negatives import with_hard_negatives
from helpers.training.persistence import (
    cached_result,
    prepare_checkpoints,
    push_model,
    run_fingerprint,
    save_model,
)
from helpers.training.plots import plot_training_curves
from helpers.training.progress import quiet_progress
from helpers.training.result import TrainingError, TrainResult, train_result
from helpers.training.rotation import rotate_to_corpus
from helpers.training.settings import TrainConfig

logger = logging.getLogger(__name__)


def build_trainer(model, cfg: TrainConfig, dims: list[int], pairs, corpus: dict[str, str],
                  checkpoint_dir: Path, *, loaded=None, progress: bool = True, callbacks: Sequence = ()):
    """The recipe's objects, ready to ``train()``: MatryoshkaLoss over MNRL at ``dims``, the training
    arguments (batches without a chunk twice, the query prompt, the learning rate), the validation at every
    dim; return the trainer and what its validation searches. ``loaded`` (a ``LoadedModel``) fills the
    model card. Notebook 03 builds the same objects by hand (``helpers.training.recipe``)."""
    from sentence_transformers import SentenceTransformerTrainer

    query_prompt = model.prompts.get("query", "") if cfg.use_query_prompt else ""
    validation = pairs["validation"] if "validation" in pairs and len(pairs["validation"]) else None
    evaluate = validation is not None and cfg.evals_per_run > 0
    searched = validation_corpus(validation, corpus, cfg.validation_distractors, cfg.seed) if evaluate else {}
    evaluator = build_evaluator(validation, searched, dims, cfg.batch_size) if evaluate else None
    metric = cfg.metric_for_best_model or best_metric_name(model, dims)
    metric = (metric if metric.startswith("eval_") else f"eval_{metric}") if evaluator else None
    world_size = kit_config.world_size()
    eval_texts = len(searched) + len(validation) if evaluator else 0
    steps = schedule(cfg, len(pairs["train"]), world_size, eval_texts)
    validation_info = describe_validation(validation, searched, corpus, cfg.seed, steps,
                                          progress) if evaluator else {}
    args = training_arguments(cfg, checkpoint_dir, steps, query_prompt=query_prompt, metric=metric,
                              progress=progress, world_size=world_size)
    if loaded is not None:
        _describe_model_card(model, loaded, pairs)
    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=training_columns(pairs["train"]),
        loss=build_loss(model, cfg, dims, world_size),
        evaluator=evaluator,
        callbacks=[nan_callback(), *callbacks],
    )
    if cfg.batch_sampler == "no_duplicates":
        keep_chunks_apart(trainer, chunk_of_anchor(pairs["train"]))
    if not console.verbose():
        quiet_progress(trainer, progress)
    return trainer, validation_info


def _describe_model_card(model, loaded, pairs) -> None:
    """Never ask the hub about the base model when it was not loaded from there; name the data source; the
    card's widget shows three training pairs (set here: the library samples them behind a progress bar)."""
    card = model.model_card_data
    card.local_files_only = loaded.reason != "from the hub"
    if loaded.preset.source == "hub":
        card.base_model = loaded.loaded
    train = pairs["train"]
    generators = ", ".join(sorted(set(train["generator"]))) if "generator" in train.column_names else ""
    card.train_datasets = [{"name": f"question-chunk pairs ({generators or 'unlabelled'})"}]
    card.widget = [{"source_sentence": row["anchor"], "sentences": [row["positive"]]}
                   for row in train.select(range(min(3, len(train))))]
    card.add_tags(["matryoshka", "course-kit"])


def _train(trainer, cfg: TrainConfig, resume_from: str | None):
    import torch

    try:
        return trainer.train(resume_from_checkpoint=resume_from)
    except torch.cuda.OutOfMemoryError:
        raise TrainingError(oom_advice(cfg)) from None


def finetune(
    pairs_dir: Path | str,
    output_dir: Path | str,
    model_id: str | None = None,
    profile: kit_config.Profile | str | None = None,
    config: TrainConfig | None = None,
    resume: bool = True,
    checkpoint_dir: Path | str | None = None,
    progress: bool = True,
    callbacks: list | None = None,
    push_to_hub: bool = False,
    hub_model_id: str | None = None,
) -> TrainResult:
    """Fine-tune ``model_id`` (default Arctic-embed-m, offline: the MiniLM fallback) on the pairs.

    The pairs' run folder (``RunPaths.holding(pairs_dir)``) gives the chunks, the embedding store and the
    merge's retention proxy; checkpoints go to ``checkpoint_dir`` (default: ``checkpoints/`` beside
    ``output_dir``, see ``config.model_paths``); with ``resume`` a killed run continues from its last
    checkpoint and a finished identical run is not repeated. The best
    checkpoint (validation nDCG@10 at the full dimension), merged with the starting weights when that
    scores as well (``helpers.training.merge``), is saved to ``output_dir`` with its model card,
    ``training_config.json`` and ``train_log.json``. Other libraries' logging is the caller's (the CLI and
    ``show_setup`` quiet it).
    """
    pairs_dir, run = Path(pairs_dir), kit_config.RunPaths.holding(pairs_dir)
    out = kit_config.model_paths(output_dir, checkpoint_dir)
    output_dir, checkpoint_dir = out.model, out.checkpoints
    pairs = load_pairs(pairs_dir)
    loaded = load_embedding_model(model_id, device=ddp_device())
    cfg = config or TrainConfig.from_profile(profile, preset=loaded.preset)
    model = loaded.model
    cap_max_seq_length(model, cfg.max_seq_length)
    dims = sorted(cfg.dims or matryoshka_dims(model), reverse=True)
    corpus = retrieval_corpus(pairs, run.chunks, held_out_documents(pairs_dir))
    fingerprint = run_fingerprint(replace(cfg, dims=dims), loaded.loaded, pairs, corpus)
    if resume and (cached := cached_result(output_dir, fingerprint)):
        logger.info(f"Already trained with these pairs and settings: {kit_config.shown(output_dir)} "
                    "(resume=False retrains).")
        return cached

    store = run_store(run)
    passages = list(corpus.values())
    if cfg.hard_negatives > 0:  # mined with the base, before TSDAE; the rotation keeps every cosine
        pairs["train"] = with_hard_negatives(pairs["train"], model, passages, cfg.hard_negatives, store)
    if cfg.tsdae_steps:  # the adapted model is not the base the store holds vectors of
        adapt_to_corpus(model, passages, cfg.tsdae_steps, seed=cfg.seed, progress=progress)
        store = None
    if cfg.corpus_rotation:
        rotate_to_corpus(model, passages, cfg.batch_size, store)
    start = snapshot(model) if cfg.merge_alphas else None  # the α = 0 end of the merge
    marker = marker_callback()
    trainer, validation = build_trainer(model, cfg, dims, pairs, corpus, checkpoint_dir, loaded=loaded,
                                        progress=progress, callbacks=[marker, *(callbacks or [])])
    with trainer.args.main_process_first(desc="checkpoints"):  # rank 0 clears stale ones before others look
        resume_from = prepare_checkpoints(checkpoint_dir, fingerprint, resume)
    if resume_from:
        logger.info(f"Resuming from {resume_from}")
        marker.earlier_seconds = seconds_before(resume_from)
    with disk_full_advice(checkpoint_dir, training_disk_bytes(model, cfg.save_total_limit),
                          "training (checkpoints and the model)"):
        output = _train(trainer, cfg, resume_from)
        result = train_result(trainer, output, loaded, cfg, dims, pairs, output_dir, resume_from,
                              marker.earlier_seconds)
        result.validation = validation
        if trainer.is_world_process_zero():
            result.merge = merge_after_training(model, start, trainer.evaluator, result.best_metric_name,
                                                cfg.merge_alphas, run.root, cfg.batch_size,
                                                trainer.state.log_history, progress, cfg.merge_max_alpha)
            save_model(model, output_dir, cfg, result, fingerprint, trainer.state.log_history, loaded)
            plot_training_curves(trainer.state.log_history, out.curves,
                                 f"Fine-tuning {loaded.preset.name} into {output_dir.name}/")
    if trainer.is_world_process_zero():
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
        if push_to_hub:
            push_model(model, hub_model_id or output_dir.name)
    return result


def run(paths: kit_config.RunPaths, settings: RunSettings) -> dict:
    """The pipeline's training stage: ``paths.pairs`` into ``paths.model`` and, unless the base model is
    static itself, a static model on the same pairs into ``paths.static_model`` (seconds on a CPU), for the
    evaluation to compare with."""
    profile = settings.profile
    summary = finetune(paths.pairs, paths.model, model_id=settings.model_id, profile=profile).summary()
    if settings.preset.kind == "static":
        return summary
    static = finetune(paths.pairs, paths.static_model, model_id=STATIC_PRESET, profile=profile,
                      checkpoint_dir=paths.checkpoints_static, progress=False)
    return summary | {"static_model": static.base_model, "static_pairs_per_second": static.pairs_per_second,
                      "static_best_metric": static.best_metric}
