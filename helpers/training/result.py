"""What a fine-tuning run returns: ``TrainResult`` (built from the trainer), or the ``TrainingError`` that
stopped it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path


class TrainingError(RuntimeError):
    """Training stopped for a reason the user can act on (the message says how)."""


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
    loss_start: float | None  # mean of the first quarter of logged steps (edge_means)
    loss_end: float | None  # mean of the last quarter
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


def train_result(trainer, output, loaded, cfg, dims, pairs, output_dir, resume_from,
                 earlier_seconds: float = 0.0) -> TrainResult:
    """What training did; after a resume its time and speed cover every run that trained (``earlier_seconds``:
    the runs before this one), as its validation time already does."""
    runtime = output.metrics.get("train_runtime", 0.0)
    samples = output.metrics.get("train_samples_per_second", 0.0) * runtime  # every epoch's, resumed or not
    seconds = earlier_seconds + runtime
    loss_start, loss_end = edge_means([row["loss"] for row in trainer.state.log_history if "loss" in row])
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
        loss_start=loss_start,
        loss_end=loss_end,
        best_metric_name=trainer.args.metric_for_best_model,
        best_metric=trainer.state.best_metric,
        train_seconds=round(seconds, 2),
        validation_seconds=round(sum(row.get("eval_runtime", 0.0) for row in trainer.state.log_history), 2),
        pairs_per_second=round(samples / seconds, 2) if seconds else 0.0,
        resumed_from=resume_from,
        config=replace(cfg, dims=dims).as_dict(),
    )


def edge_means(losses: list[float]) -> tuple[float | None, float | None]:
    """The mean loss of the first and of the last quarter of the logged steps (one step at least): one
    batch's loss swings with the batch drawn, a quarter of the steps shows where training went."""
    if not losses:
        return None, None
    k = max(1, len(losses) // 4)
    return sum(losses[:k]) / k, sum(losses[-k:]) / k
