"""Checkpoints that count only when complete: a marker written last, after the Trainer's own files.

A run killed while a checkpoint is written (SIGKILL, a full disk) leaves a folder without the marker;
resuming takes the newest complete checkpoint and moves incomplete ones to ``incomplete/``, saying so.
"""

from __future__ import annotations

import logging
import re
import shutil
import time
from pathlib import Path

from helpers.core.io import read_json, write_json

logger = logging.getLogger(__name__)

COMPLETE_MARKER = "kit_checkpoint_complete.json"
INCOMPLETE_DIRNAME = "incomplete"
CHECKPOINT_NAME = re.compile(r"^checkpoint-(\d+)$")


def marker_callback():
    """A TrainerCallback that marks each checkpoint complete once the Trainer has saved all of it, with the
    training time up to it (``earlier_seconds``, the time of the runs it resumes, set before training)."""
    from transformers import TrainerCallback

    class MarkComplete(TrainerCallback):
        earlier_seconds = 0.0

        def on_train_begin(self, args, state, control, **kwargs):
            self.started = time.perf_counter()

        def on_save(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
                if folder.is_dir():
                    seconds = self.earlier_seconds + time.perf_counter() - self.started
                    write_json(folder / COMPLETE_MARKER, {"step": state.global_step,
                                                          "train_seconds": round(seconds, 2)})

    return MarkComplete()


def seconds_before(checkpoint: Path | str | None) -> float:
    """Training time up to ``checkpoint`` (0 for none, or for a marker written before it was recorded)."""
    if checkpoint is None:
        return 0.0
    return float(read_json(Path(checkpoint) / COMPLETE_MARKER).get("train_seconds", 0.0))


def checkpoints(checkpoint_dir: Path) -> list[Path]:
    """The ``checkpoint-<step>`` folders, oldest first."""
    if not checkpoint_dir.is_dir():
        return []
    found = [p for p in checkpoint_dir.iterdir() if p.is_dir() and CHECKPOINT_NAME.match(p.name)]
    return sorted(found, key=lambda p: int(CHECKPOINT_NAME.match(p.name).group(1)))


def is_complete(folder: Path) -> bool:
    return (folder / COMPLETE_MARKER).is_file()


def set_aside_incomplete(checkpoint_dir: Path) -> list[Path]:
    """Move checkpoints without the marker to ``incomplete/`` (printing one line each); return new paths."""
    moved = []
    for folder in checkpoints(checkpoint_dir):
        if is_complete(folder):
            continue
        target = checkpoint_dir / INCOMPLETE_DIRNAME / folder.name
        shutil.rmtree(target, ignore_errors=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        folder.rename(target)
        logger.info(f"Checkpoint {folder.name} was not completely written (the run stopped while saving it): "
                    f"set aside in {target} and not resumed from; delete it to free space.")
        moved.append(target)
    return moved


def newest_complete(checkpoint_dir: Path) -> str | None:
    """The newest complete checkpoint, after setting incomplete ones aside; None when there is none."""
    set_aside_incomplete(checkpoint_dir)
    done = checkpoints(checkpoint_dir)
    return str(done[-1]) if done else None


def training_disk_bytes(model, save_total_limit: int) -> int:
    """About what a run writes at its peak: the kept checkpoints plus the one being written (weights and
    Adam's two fp32 moments each), and the final model."""
    numel = sum(p.numel() for p in model.parameters())
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    checkpoint = weights + 2 * 4 * numel
    return (max(1, save_total_limit) + 1) * checkpoint + weights
