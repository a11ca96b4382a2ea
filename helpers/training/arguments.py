"""How the Trainer runs: hardware and precision, the step schedule, the training arguments, the NaN callback
and the out-of-memory advice."""

from __future__ import annotations

import math
from pathlib import Path

from helpers.core import config as kit_config
from helpers.training.result import TrainingError
from helpers.training.settings import TrainConfig

# Validation may cost at most this share of training, counted in texts encoded: an evaluation encodes its
# passages and questions once, a training step encodes each pair's two texts forward and backward (~3x).
VALIDATION_BUDGET = 0.5


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


def ddp_device() -> str | None:
    """Under torchrun on GPUs each process loads its model on its own GPU."""
    import torch

    local_rank = kit_config.local_rank()
    return f"cuda:{local_rank}" if local_rank is not None and torch.cuda.is_available() else None
