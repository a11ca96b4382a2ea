"""Fine-tune the embedding model on (question, chunk) pairs with Matryoshka + in-batch-negatives loss.

The recipe fixes what the common notebook recipe gets wrong: every Matryoshka run trains the model's full
dimension too; batches never hold the same chunk twice (a repeated chunk is a false negative for the other
question); queries carry the model's query prompt in training, evaluation and the saved model; precision
follows the hardware; the best checkpoint by validation nDCG@10 is the one that is saved, merged with the
starting weights when validation scores the merge as well (``helpers.training.merge``).

``finetune`` is the one entry point: notebooks and the CLI call it, and ``python -m helpers.training`` runs
it under ``torchrun`` / ``accelerate launch`` for multi-GPU (DDP) training.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import shutil
import time
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Literal

from helpers.core import config as kit_config
from helpers.core import console, presets
from helpers.core.diskspace import DiskFullError, disk_full_advice
from helpers.core.embeddings import EmbeddingStore, StoredEncoder, run_store
from helpers.core.io import read_json, read_jsonl, write_json
from helpers.core.models import is_static, load_embedding_model
from helpers.questions.pairs import UNSEEN, held_out_documents
from helpers.questions.pairs import load_pairs as load_saved_pairs
from helpers.training.batches import chunk_of_anchor, keep_chunks_apart
from helpers.training.checkpoints import marker_callback, newest_complete, seconds_before, training_disk_bytes
from helpers.training.dims import matryoshka_dims
from helpers.training.merge import merge_after_training, snapshot
from helpers.training.plots import plot_training_curves
from helpers.training.progress import quiet_progress
from helpers.training.rotation import add_corpus_rotation

PAIR_COLUMNS = ("anchor", "positive")
# Validation may cost at most this share of training, counted in texts encoded: an evaluation encodes its
# passages and questions once, a training step encodes each pair's two texts forward and backward (~3x).
VALIDATION_BUDGET = 0.5
CHECKPOINTS_DIRNAME = "checkpoints"
FINGERPRINT_FILE = "fingerprint.json"
CURVES_FILENAME = "training_curves.png"


class TrainingError(RuntimeError):
    """Training stopped for a reason the user can act on (the message says how)."""


@dataclass
class TrainConfig:
    """Hyper-parameters of one fine-tuning run (``batch_size`` is per device)."""

    batch_size: int = 32
    epochs: int = 1
    lr: float = 2e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    max_seq_length: int = 256
    dims: list[int] | None = None  # None: matryoshka_dims(model), full dimension first
    loss: Literal["mnrl", "cached_mnrl"] = "mnrl"
    mini_batch_size: int = 16  # cached_mnrl only: memory is set by this, negatives by batch_size
    # Several processes (torchrun, accelerate): every process's passages are in-batch negatives for every
    # question, batch_size x processes of them, as in one big batch (the library's gather_across_devices).
    gather_across_devices: bool = True
    batch_sampler: Literal["no_duplicates", "batch_sampler"] = "no_duplicates"
    hard_negatives: int = 0  # negatives per question mined with the base model before training (0: none)
    corpus_rotation: bool = True  # rotate onto the corpus' principal directions first (training/rotation.py)
    use_query_prompt: bool = True
    eval_steps: int | None = None  # None: about `evals_per_run` evaluations spread over the run
    save_steps: int | None = None  # None: same as eval_steps (the best checkpoint must be a saved one)
    evals_per_run: int = 4  # at most; fewer when validation would cost more than VALIDATION_BUDGET (0: none)
    eval_on_start: bool = True  # the curves then start at the base model's score
    validation_distractors: int = 64  # chunks besides the validation passages that validation searches
    logging_steps: int | None = None  # None: about 20 points on the loss curve
    save_total_limit: int = 2
    max_steps: int = -1  # > 0 overrides epochs (smoke tests)
    seed: int = 42
    metric_for_best_model: str | None = None  # None: eval_dim_<full>_cosine_ndcg@10
    precision: Literal["auto", "fp32", "fp16", "bf16"] = "auto"
    # Merge with the starting weights after training, α from this grid on validation (training/merge.py).
    merge_alphas: list[float] = field(default_factory=lambda: [0.25, 0.5, 0.75, 1.0])  # []: off
    preset: str | None = None  # the preset these settings came from (named in advice)

    @classmethod
    def from_profile(cls, profile: kit_config.Profile | str | None = None,
                     preset: presets.Preset | str | None = None, hardware: str | None = None,
                     **overrides) -> TrainConfig:
        """Sizes from the profile (``KIT_PROFILE`` by default); with a preset, its learning rate and, on a
        GPU, its batch size, precision and loss for ``hardware`` (default: this machine's class, see
        ``presets.hardware_class``); any field overridden by keyword."""
        if not isinstance(profile, kit_config.Profile):
            profile = kit_config.get_profile(profile)
        unknown = set(overrides) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"Unknown TrainConfig field(s): {', '.join(sorted(unknown))}.")
        sizes = {"batch_size": profile.batch_size, "epochs": profile.epochs,
                 "max_seq_length": profile.max_seq_length,
                 "validation_distractors": profile.validation_distractors}
        if preset is not None:
            preset = presets.resolve(preset) if isinstance(preset, str) else preset
            sizes |= preset.train_settings(hardware or presets.hardware_class())
        return cls(**{**sizes, **overrides})

    def as_dict(self) -> dict:
        return asdict(self)


def seed_recipe(full_dim: int | presets.Preset, **overrides) -> TrainConfig:
    """The recipe this kit improves on, as the seed model cards record it (for comparisons only).

    Batch 10 of plain batches (a chunk with several questions is its own in-batch negative), lr 5e-5
    without warmup or weight decay, fp32 on any hardware, Matryoshka dims that skip the full dimension
    (the seeds train a 1024-dim model at 768 ... 64 only), no query prompt, no hard negatives, no
    validation: the last step is kept. Given a preset, the batch size, epochs and dims of its seed cards
    (``Preset.card``).
    """
    if isinstance(full_dim, presets.Preset):
        full_dim, overrides = full_dim.dims[0], full_dim.card | overrides
    dims = matryoshka_dims(full_dim)[1:] or [full_dim]
    recipe = {"batch_size": 10, "lr": 5e-5, "warmup_ratio": 0.0, "weight_decay": 0.0, "precision": "fp32",
              "batch_sampler": "batch_sampler", "use_query_prompt": False, "dims": dims, "evals_per_run": 0,
              "corpus_rotation": False, "merge_alphas": []}
    return TrainConfig(**{**recipe, **overrides})


@dataclass
class TrainResult:
    """What a run produced; ``summary()`` is what the CLI prints and the report shows."""

    output_dir: Path
    base_model: str
    is_fallback: bool
    n_train: int
    n_validation: int
    steps: int
    epochs: float
    dims: list[int]
    loss_start: float | None
    loss_end: float | None
    best_metric_name: str | None
    best_metric: float | None
    train_seconds: float  # wall time of trainer.train(), validation included
    validation_seconds: float
    pairs_per_second: float  # as the Trainer reports it: over train_seconds
    resumed_from: str | None = None
    cached: bool = False
    config: dict = field(default_factory=dict)
    validation: dict = field(default_factory=dict)  # the corpus validation searched and how often
    merge: dict = field(default_factory=dict)  # α, its grid and scores (training/merge.py), or why skipped

    def summary(self) -> dict:
        keys = ["base_model", "is_fallback", "n_train", "n_validation", "steps", "epochs", "dims",
                "loss_start", "loss_end", "best_metric_name", "best_metric", "train_seconds",
                "validation_seconds", "pairs_per_second", "validation", "merge", "resumed_from", "cached"]
        return {"output_dir": str(self.output_dir), **{k: getattr(self, k) for k in keys}}


# --------------------------------------------------------------------------------------------- data


def load_pairs(pairs_dir: Path | str):
    """The pairs ``DatasetDict`` saved by the questions stage, checked for what training needs."""
    pairs = load_saved_pairs(pairs_dir)
    if "train" not in pairs or len(pairs["train"]) < 2:
        raise ValueError(f"{pairs_dir} needs a 'train' split with at least 2 pairs.")
    missing = set(PAIR_COLUMNS) - set(pairs["train"].column_names)
    if missing:
        raise ValueError(f"{pairs_dir} lacks column(s) {sorted(missing)}; expected anchor and positive.")
    return pairs


def training_columns(dataset):
    """Keep what the loss reads: anchor, positive, then any mined negatives (other columns would be texts)."""
    keep = [*PAIR_COLUMNS, *(c for c in dataset.column_names if c.startswith("negative"))]
    return dataset.select_columns(keep)


def retrieval_corpus(pairs, chunks_path: Path | None = None, held_out: Collection[str] = ()
                     ) -> dict[str, str]:
    """Chunk id -> text of what training may see (the rotation, validation and mined negatives use it): the
    run's chunks.jsonl without the ``held_out`` documents' chunks when present, else each chunk's longest
    positive in the pairs but the unseen split (a positive is the chunk's text, or the chunk without the
    query sentence for inverse cloze)."""
    if chunks_path is not None and chunks_path.is_file():
        return {row["id"]: row["text"] for row in read_jsonl(chunks_path) if row["source"] not in held_out}
    corpus: dict[str, str] = {}
    for name, split in pairs.items():
        for cid, text in zip(split["chunk_id"], split["positive"], strict=True) if name != UNSEEN else ():
            corpus[cid] = max(corpus.get(cid, ""), text, key=len)
    return corpus


def validation_corpus(validation, corpus: dict[str, str], distractors: int, seed: int = 42) -> dict[str, str]:
    """The validation questions' own chunks plus ``distractors`` other chunks drawn with ``seed``: the same
    set at every evaluation, a size that does not grow with the corpus (the evaluation stage searches all)."""
    own = [cid for cid in dict.fromkeys(validation["chunk_id"]) if cid in corpus]
    others = sorted(set(corpus) - set(own))
    drawn = random.Random(seed).sample(others, min(max(0, distractors), len(others)))
    return {cid: corpus[cid] for cid in [*own, *sorted(drawn)]}


def build_evaluator(validation, corpus: dict[str, str], dims: list[int], batch_size: int = 32):
    """Retrieval metrics at every Matryoshka dim on the validation questions (None if none can be scored)."""
    from helpers.training.validation import matryoshka_evaluator

    queries = dict(zip(validation["id"], validation["anchor"], strict=True))
    relevant = {qid: {cid} for qid, cid in zip(validation["id"], validation["chunk_id"], strict=True)
                if cid in corpus}
    return matryoshka_evaluator(queries, corpus, relevant, dims, batch_size) if relevant else None


def best_metric_name(model, dims: list[int]) -> str:
    """The validation metric that picks the checkpoint: nDCG@10 at the full dimension."""
    return f"eval_dim_{dims[0]}_{model.similarity_fn_name}_ndcg@10"


# ----------------------------------------------------------------------------------------- training


def build_loss(model, cfg: TrainConfig, dims: list[int], world_size: int = 1):
    """MatryoshkaLoss over (Cached)MultipleNegativesRankingLoss, with in-batch negatives gathered from every
    process when ``world_size`` processes train together (and ``cfg.gather_across_devices``)."""
    from sentence_transformers.sentence_transformer import losses

    gather = cfg.gather_across_devices and world_size > 1
    if cfg.loss == "cached_mnrl":
        inner = losses.CachedMultipleNegativesRankingLoss(model, mini_batch_size=cfg.mini_batch_size,
                                                          gather_across_devices=gather)
    elif cfg.loss == "mnrl":
        inner = losses.MultipleNegativesRankingLoss(model, gather_across_devices=gather)
    else:
        raise ValueError(f"Unknown loss {cfg.loss!r}: choose 'mnrl' or 'cached_mnrl'.")
    return losses.MatryoshkaLoss(model, inner, matryoshka_dims=dims)


def hardware_args(precision: str = "auto", world_size: int = 1) -> dict:
    """Precision and device settings: bf16 where the GPU has it, else fp16 on CUDA, fp32 on CPU/MPS;
    TF32 matmuls on Ampere or newer; several CPU processes (torchrun without GPUs) synchronise over gloo."""
    import torch

    cuda = torch.cuda.is_available()
    ampere = cuda and torch.cuda.get_device_capability()[0] >= 8  # native bf16 and TF32 (a T4 has neither)
    if precision == "auto":
        precision = ("bf16" if ampere else "fp16") if cuda else "fp32"
    if precision not in {"fp32", "fp16", "bf16"}:
        raise ValueError(f"Unknown precision {precision!r}: choose auto, fp32, fp16 or bf16.")
    if precision != "fp32" and not cuda:
        raise ValueError(f"{precision} training needs a CUDA GPU; use precision='fp32' (or 'auto').")
    args = {"bf16": precision == "bf16", "fp16": precision == "fp16", "dataloader_pin_memory": cuda}
    if ampere:
        args["tf32"] = True
    if not cuda and world_size > 1:
        args |= {"use_cpu": True, "ddp_backend": "gloo"}
    return args


def schedule(cfg: TrainConfig, n_train: int, world_size: int = 1, eval_texts: int = 0) -> dict:
    """Step counts: evaluations spread over the run, checkpoints on evaluation steps, ~20 loss points.

    ``eval_texts`` (passages + questions one evaluation encodes) caps the evaluations, the one on start
    included, so that validation encodes at most ``VALIDATION_BUDGET`` times what training does; at least
    one evaluation, at the end. ``cfg.eval_steps`` set by hand is kept as it is."""
    steps_per_epoch = math.ceil(n_train / (cfg.batch_size * world_size))
    total = cfg.max_steps if cfg.max_steps > 0 else steps_per_epoch * cfg.epochs
    evals, on_start = max(1, cfg.evals_per_run), cfg.eval_on_start
    if eval_texts and not cfg.eval_steps:
        train_texts = 3 * 2 * min(n_train * max(1, cfg.epochs), total * cfg.batch_size * world_size)
        allowed = max(1, int(VALIDATION_BUDGET * train_texts // eval_texts))
        on_start = on_start and allowed >= 2
        evals = max(1, min(evals, allowed - on_start))
    eval_steps = cfg.eval_steps or max(1, math.ceil(total / evals))
    save_steps = cfg.save_steps or eval_steps
    if save_steps % eval_steps:
        raise ValueError(f"save_steps ({save_steps}) must be a multiple of eval_steps ({eval_steps}).")
    return {"total_steps": total, "eval_steps": eval_steps, "save_steps": save_steps,
            "eval_on_start": on_start, "evaluations": math.ceil(total / eval_steps) + on_start,
            "logging_steps": cfg.logging_steps or max(1, total // 20)}


def training_arguments(cfg: TrainConfig, checkpoint_dir: Path, steps: dict, *, query_prompt: str = "",
                       metric: str | None = None, progress: bool = True, world_size: int = 1):
    """Trainer arguments for ``cfg``; ``metric`` (None: no evaluator) picks the best checkpoint."""
    from sentence_transformers import SentenceTransformerTrainingArguments
    from sentence_transformers.base.sampler import BatchSamplers

    sampler = {"no_duplicates": BatchSamplers.NO_DUPLICATES, "batch_sampler": BatchSamplers.BATCH_SAMPLER}
    has_evaluator = metric is not None
    return SentenceTransformerTrainingArguments(
        output_dir=str(checkpoint_dir),
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.lr,
        warmup_steps=cfg.warmup_ratio,  # a float below 1 is a ratio in transformers >= 5
        weight_decay=cfg.weight_decay,
        batch_sampler=sampler[cfg.batch_sampler],
        prompts={"anchor": query_prompt} if query_prompt else None,
        eval_strategy="steps" if has_evaluator else "no",
        eval_steps=steps["eval_steps"],
        eval_on_start=steps.get("eval_on_start", cfg.eval_on_start) and has_evaluator,
        save_strategy="steps",
        save_steps=steps["save_steps"],
        save_total_limit=cfg.save_total_limit,
        load_best_model_at_end=has_evaluator,
        metric_for_best_model=metric,
        greater_is_better=True,
        logging_steps=steps["logging_steps"],
        logging_first_step=True,
        logging_nan_inf_filter=False,  # a NaN must reach the log so that StopOnNaN sees it
        seed=cfg.seed,
        report_to="none",
        disable_tqdm=not progress,
        **hardware_args(cfg.precision, world_size),
    )


def nan_callback():
    """A TrainerCallback that stops the run with advice as soon as a logged loss is NaN or infinite."""
    from transformers import TrainerCallback

    class StopOnNaN(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            loss = (logs or {}).get("loss")
            if loss is not None and not math.isfinite(loss):
                raise TrainingError(
                    f"Training loss became {loss} at step {state.global_step}. Lower the learning rate "
                    f"(now {args.learning_rate:g}), train in fp32 or bf16 rather than fp16, and check the "
                    "pairs for empty texts."
                )

    return StopOnNaN()


def oom_advice(cfg: TrainConfig) -> str:
    """What to change when the GPU runs out of memory: the preset's knobs, in the order that costs least."""
    cached = (f"mini_batch_size={max(1, cfg.mini_batch_size // 2)}" if cfg.loss == "cached_mnrl" else
              "loss='cached_mnrl' with mini_batch_size=8")
    steps = [f"{cached} (same batch and negatives, a fraction of the memory)"]
    if cfg.precision == "fp32":
        steps.append("precision='auto' (fp16 on a T4, bf16 on newer GPUs: half the activation memory)")
    steps += [f"max_seq_length={max(64, cfg.max_seq_length // 2)}",
              f"batch_size={max(2, cfg.batch_size // 2)}"]
    preset = f"the preset {cfg.preset!r}" if cfg.preset else "a preset"
    return (
        f"Out of GPU memory with batch_size={cfg.batch_size}, max_seq_length={cfg.max_seq_length}, "
        f"loss={cfg.loss!r}, mini_batch_size={cfg.mini_batch_size}, precision={cfg.precision!r}. Try, in "
        f"this order: {'; '.join(steps)}. These are TrainConfig fields; {preset} sets them per GPU class "
        "(helpers.core.presets.table(), TrainConfig.from_profile(preset=..., hardware='t4-16gb'))."
    )


def run_fingerprint(cfg: TrainConfig, base_model: str, pairs, corpus: dict[str, str]) -> str:
    """Hash of everything that shapes the trained weights: config, base model, pairs, corpus."""
    h = hashlib.sha256(json.dumps([cfg.as_dict(), base_model], sort_keys=True).encode())
    for name in ("train", "validation"):
        if name in pairs:
            h.update(json.dumps(pairs[name].to_list(), sort_keys=True).encode())
    h.update(json.dumps(sorted(corpus.items())).encode())
    return h.hexdigest()[:16]


def prepare_checkpoints(checkpoint_dir: Path, fingerprint: str, resume: bool) -> str | None:
    """The newest complete checkpoint to resume from, if it belongs to this exact run (incomplete ones are
    set aside); checkpoints of other runs are removed."""
    marker = checkpoint_dir / FINGERPRINT_FILE
    same_run = marker.is_file() and read_json(marker).get("fingerprint") == fingerprint
    if checkpoint_dir.exists() and not (resume and same_run):
        shutil.rmtree(checkpoint_dir)
    write_json(marker, {"fingerprint": fingerprint})
    return newest_complete(checkpoint_dir) if resume and same_run else None


def cached_result(output_dir: Path, fingerprint: str) -> TrainResult | None:
    """The result of a finished run with the same fingerprint, so a re-run does no work twice."""
    meta_path = output_dir / "training_config.json"
    if not meta_path.is_file() or not (output_dir / "config_sentence_transformers.json").is_file():
        return None
    meta = read_json(meta_path)
    if meta.get("fingerprint") != fingerprint:
        return None
    result = {**meta["result"], "output_dir": output_dir, "cached": True, "config": meta["config"]}
    try:
        return TrainResult(**result)
    except TypeError:  # written by another version of the kit: train again
        return None


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

    Checkpoints go to ``checkpoint_dir`` (default: ``checkpoints/`` beside ``output_dir``); with ``resume``
    a killed run continues from its last checkpoint and a finished identical run is not repeated. The best
    checkpoint (validation nDCG@10 at the full dimension), merged with the starting weights when that
    scores as well (``helpers.training.merge``), is saved to ``output_dir`` with its model card,
    ``training_config.json`` and ``train_log.json``.
    """
    console.quiet_libraries()
    pairs_dir, output_dir = Path(pairs_dir), Path(output_dir)
    checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else output_dir.parent / CHECKPOINTS_DIRNAME
    pairs = load_pairs(pairs_dir)
    loaded = load_embedding_model(model_id, device=_ddp_device())
    cfg = config or TrainConfig.from_profile(profile, preset=loaded.preset)
    model = loaded.model
    cap_max_seq_length(model, cfg.max_seq_length)
    dims = sorted(cfg.dims or matryoshka_dims(model), reverse=True)
    corpus = retrieval_corpus(pairs, pairs_dir.parent / "chunks.jsonl", held_out_documents(pairs_dir))
    fingerprint = run_fingerprint(replace(cfg, dims=dims), loaded.loaded, pairs, corpus)
    if resume and (cached := cached_result(output_dir, fingerprint)):
        print(f"Already trained with these pairs and settings: {output_dir} (resume=False retrains).")
        return cached

    store = run_store(pairs_dir.parent)
    passages = list(corpus.values())
    if cfg.hard_negatives > 0:  # mined with the base: the rotation below leaves every cosine as it is
        pairs["train"] = with_hard_negatives(pairs["train"], model, passages, cfg.hard_negatives, store)
    if cfg.corpus_rotation:
        rotate_to_corpus(model, passages, cfg.batch_size, store)
    start = snapshot(model) if cfg.merge_alphas else None  # the α = 0 end of the merge
    marker = marker_callback()
    trainer, validation = build_trainer(model, cfg, dims, pairs, corpus, checkpoint_dir, loaded=loaded,
                                        progress=progress, callbacks=[marker, *(callbacks or [])])
    with trainer.args.main_process_first(desc="checkpoints"):  # rank 0 clears stale ones before others look
        resume_from = prepare_checkpoints(checkpoint_dir, fingerprint, resume)
    if resume_from:
        print(f"Resuming from {resume_from}")
        marker.earlier_seconds = seconds_before(resume_from)
    with disk_full_advice(checkpoint_dir, training_disk_bytes(model, cfg.save_total_limit),
                          "training (checkpoints and the model)"):
        output = _train(trainer, cfg, resume_from)
        result = _result(trainer, output, loaded, cfg, dims, pairs, output_dir, resume_from,
                         marker.earlier_seconds)
        result.validation = validation
        if trainer.is_world_process_zero():
            result.merge = merge_after_training(model, start, trainer.evaluator, result.best_metric_name,
                                                cfg.merge_alphas, pairs_dir.parent, cfg.batch_size,
                                                trainer.state.log_history, progress)
            save_model(model, output_dir, cfg, result, fingerprint, trainer.state.log_history, loaded)
            plot_training_curves(trainer.state.log_history, curves_path(output_dir),
                                 f"Fine-tuning {loaded.preset.name} into {output_dir.name}/")
    if trainer.is_world_process_zero():
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
        if push_to_hub:
            _push(model, hub_model_id or output_dir.name)
    return result


def cap_max_seq_length(model, limit: int) -> None:
    """Truncate inputs at ``limit`` tokens; static models have no limit (their cost grows linearly)."""
    if not is_static(model):
        model.max_seq_length = min(limit, model.max_seq_length or limit)


def curves_path(output_dir: Path) -> Path:
    """plots/training_curves.png for a run's ``model``, training_curves_<folder>.png for other models."""
    name = CURVES_FILENAME if output_dir.name == "model" else f"training_curves_{output_dir.name}.png"
    return output_dir.parent / "plots" / name


def _ddp_device() -> str | None:
    """Under torchrun on GPUs each process loads its model on its own GPU."""
    import torch

    local_rank = os.environ.get("LOCAL_RANK")
    return f"cuda:{local_rank}" if local_rank is not None and torch.cuda.is_available() else None


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
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
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


def describe_validation(validation, searched: dict[str, str], corpus: dict[str, str], seed: int,
                        steps: dict, progress: bool = True) -> dict:
    """What validation searches and how often (printed with ``progress``, and kept in the result the
    report reads)."""
    own = len(set(validation["chunk_id"]) & set(searched))
    info = {"questions": len(validation), "chunks": len(searched), "distractors": len(searched) - own,
            "corpus_chunks": len(corpus), "seed": seed, "evaluations": steps["evaluations"]}
    if progress:
        print(f"Validation: {info['questions']} questions against {info['chunks']} chunks (their own and "
              f"{info['distractors']} others drawn with seed {seed}, the same at every evaluation), "
              f"{info['evaluations']} evaluations; the evaluation stage searches every chunk")
    return info


def _describe_model_card(model, loaded, pairs) -> None:
    """Never ask the hub about the base model when it was not loaded from there; name the data source; the
    card's widget shows three training pairs (set here, the library would sample them behind a progress bar)."""
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


def _result(trainer, output, loaded, cfg, dims, pairs, output_dir, resume_from,
            earlier_seconds: float = 0.0) -> TrainResult:
    """What training did; after a resume its time and speed cover every run that trained (``earlier_seconds``:
    the runs before this one), as its validation time already does."""
    runtime = output.metrics.get("train_runtime", 0.0)
    samples = output.metrics.get("train_samples_per_second", 0.0) * runtime  # every epoch's, resumed or not
    seconds = earlier_seconds + runtime
    losses = [row["loss"] for row in trainer.state.log_history if "loss" in row]
    n_val = len(pairs["validation"]) if "validation" in pairs else 0
    return TrainResult(
        output_dir=output_dir,
        base_model=loaded.loaded,
        is_fallback=loaded.is_fallback,
        n_train=len(pairs["train"]),
        n_validation=n_val,
        steps=trainer.state.global_step,
        epochs=round(trainer.state.epoch or 0.0, 3),
        dims=dims,
        loss_start=losses[0] if losses else None,
        loss_end=losses[-1] if losses else None,
        best_metric_name=trainer.args.metric_for_best_model,
        best_metric=trainer.state.best_metric,
        train_seconds=round(seconds, 2),
        validation_seconds=round(sum(row.get("eval_runtime", 0.0) for row in trainer.state.log_history), 2),
        pairs_per_second=round(samples / seconds, 2) if seconds else 0.0,
        resumed_from=resume_from,
        config=replace(cfg, dims=dims).as_dict(),
    )


def save_model(model, output_dir: Path, cfg: TrainConfig, result: TrainResult, fingerprint: str,
               log_history: list[dict], loaded) -> None:
    """Write the model folder (weights, prompts, model card) with its training config and log, atomically."""
    tmp = output_dir.with_name(f".{output_dir.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save(str(tmp))
    meta = {
        "fingerprint": fingerprint,
        "base_model": {"requested": loaded.requested, "loaded": loaded.loaded, "reason": loaded.reason,
                       "preset": loaded.preset.name},
        "config": replace(cfg, dims=result.dims).as_dict(),
        "result": {k: v for k, v in asdict(result).items() if k not in {"output_dir", "config", "cached"}},
        "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    write_json(tmp / "training_config.json", meta)
    write_json(tmp / "train_log.json", log_history)
    shutil.rmtree(output_dir, ignore_errors=True)
    os.replace(tmp, output_dir)


def _push(model, repo_id: str) -> None:
    token = os.environ.get("HF_TOKEN")
    if not token:
        print("push_to_hub skipped: set HF_TOKEN to push the model.")
        return
    url = model.push_to_hub(repo_id, token=token, exist_ok=True)
    print(f"Pushed to {url}")


# ----------------------------------------------------------------------------------- hard negatives


def add_hard_negatives(dataset, model, corpus: list[str] | None = None, num_negatives: int = 1,
                       relative_margin: float = 0.05, range_min: int = 0, range_max: int = 50,
                       batch_size: int = 32, store: EmbeddingStore | None = None):
    """Add ``negative_1..n`` columns: chunks the model ranks high for the question but not its own.

    ``relative_margin`` drops candidates scoring within 5% of the positive (likely unlabelled positives,
    the NV-Retriever recipe); ``range_min`` skips the very top candidates as well. Only rows for which
    ``num_negatives`` negatives were found are kept. With ``store`` (the run's embedding store), the
    questions and chunks are encoded there at most once.
    """
    from sentence_transformers.util import mine_hard_negatives

    model = StoredEncoder(model, store, batch_size) if store else model
    mined = mine_hard_negatives(
        training_columns(dataset), model, anchor_column_name="anchor", positive_column_name="positive",
        corpus=corpus, num_negatives=num_negatives, relative_margin=relative_margin, range_min=range_min,
        range_max=range_max, sampling_strategy="top", query_prompt_name="query", output_format="n-tuple",
        batch_size=batch_size, verbose=False,
    )
    if num_negatives == 1 and "negative" in mined.column_names:
        mined = mined.rename_column("negative", "negative_1")
    return mined


def rotate_to_corpus(model, passages: list[str], batch_size: int = 32, store: EmbeddingStore | None = None
                     ) -> None:
    """Start from the model rotated onto the passages' principal directions (helpers.training.rotation),
    fitted on the passages' vectors in ``store`` when given (encoded there at most once)."""
    embeddings = store.documents(model, passages, batch_size) if store else None
    add_corpus_rotation(model, passages, batch_size, embeddings=embeddings)
    print(f"Corpus rotation: embeddings rotated onto the principal directions of {len(passages)} passages "
          "(full-dimension scores unchanged, truncated ones better before any training)")


def with_hard_negatives(train, model, corpus: list[str], num_negatives: int,
                        store: EmbeddingStore | None = None):
    """``train`` with mined negatives; the plain pairs when mining found negatives for no question."""
    mined = add_hard_negatives(train, model, corpus, num_negatives, store=store)
    if chunk_of := chunk_of_anchor(train):  # the batch sampler keeps a chunk's pairs apart by its id
        mined = mined.add_column("chunk_id", [chunk_of[a] for a in mined["anchor"]])
    print(f"Hard negatives: {num_negatives} per question for {len(mined)} of {len(train)} questions"
          + ("" if len(mined) else "; training on the plain pairs instead"))
    return mined if len(mined) else train


# ---------------------------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> None:
    """python -m helpers.training --pairs runs/smoke/pairs --output runs/smoke/model (also under torchrun)."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--pairs", required=True, type=Path, help="pairs DatasetDict folder (save_to_disk)")
    parser.add_argument("--output", required=True, type=Path, help="where the fine-tuned model is saved")
    parser.add_argument("--model", default=None, help=f"base model: a preset ({', '.join(presets.PRESETS)}), "
                        f"hub id or folder (default: ${presets.MODEL_ENV} or {presets.DEFAULT_PRESET})")
    parser.add_argument("--profile", default=None, help="smoke | workshop | full (default: KIT_PROFILE)")
    parser.add_argument("--checkpoints", type=Path, default=None, help="checkpoint folder")
    parser.add_argument("--no-resume", action="store_true", help="start over, ignoring checkpoints")
    parser.add_argument("--push-to-hub", default=None, metavar="REPO_ID", help="push when HF_TOKEN is set")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--max-seq-length", type=int)
    parser.add_argument("--max-steps", type=int)
    parser.add_argument("--eval-steps", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--dims", type=lambda s: [int(d) for d in s.split(",")], help="e.g. 768,256,64")
    parser.add_argument("--loss", choices=["mnrl", "cached_mnrl"])
    parser.add_argument("--mini-batch-size", type=int)
    parser.add_argument("--gather-across-devices", action=argparse.BooleanOptionalAction, default=None,
                        help="several processes: every process's passages are negatives (default: on)")
    parser.add_argument("--precision", choices=["auto", "fp32", "fp16", "bf16"])
    parser.add_argument("--hard-negatives", type=int, help="mined negatives per question (default 0)")
    parser.add_argument("--corpus-rotation", action=argparse.BooleanOptionalAction, default=None,
                        help="rotate onto the chunks' principal directions first (default: the preset's)")
    parser.add_argument("--merge-alphas", type=lambda s: [float(a) for a in s.split(",") if a],
                        help="α grid for the merge with the start, e.g. 0,0.5,1 ('': no merge)")
    args = parser.parse_args(argv)
    overrides = {f.name: getattr(args, f.name) for f in fields(TrainConfig)
                 if getattr(args, f.name, None) is not None}
    try:
        cfg = TrainConfig.from_profile(args.profile, preset=presets.resolve(args.model), **overrides)
        result = finetune(args.pairs, args.output, model_id=args.model, config=cfg, resume=not args.no_resume,
                          checkpoint_dir=args.checkpoints, push_to_hub=bool(args.push_to_hub),
                          hub_model_id=args.push_to_hub)
    except (TrainingError, DiskFullError, FileNotFoundError, ValueError) as exc:
        raise SystemExit(f"error: {exc}") from None
    if int(os.environ.get("RANK", "0")) == 0:
        print(json.dumps(result.summary(), indent=2))

