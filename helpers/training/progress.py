"""What training shows while it runs: one progress bar, and one compact line per validation.

The Trainer's own callbacks print every log as a raw dictionary (40 keys per validation); ``quiet_progress``
replaces them with ``CompactProgress``: a bar over the steps with the loss beside it, and lines such as
``step 40  ndcg@10  384: 0.855  128: 0.823  64: 0.817``.
"""

from __future__ import annotations

import re

HEADLINE_KEY = re.compile(r"eval_dim_(\d+)_\w+_ndcg@10$")


def validation_line(step: int, metrics: dict) -> str | None:
    """``step 40  ndcg@10  384: 0.855  64: 0.817`` from the evaluator's metrics (None without nDCG)."""
    by_dim = sorted(((int(m[1]), v) for k, v in metrics.items() if (m := HEADLINE_KEY.match(k))),
                    reverse=True)
    if not by_dim:
        return None
    return f"step {step:<4} ndcg@10  " + "  ".join(f"{dim}: {float(v):.3f}" for dim, v in by_dim)


def compact_progress(progress: bool = True):
    """A TrainerCallback: a bar over the training steps and one line per validation (nothing without
    ``progress``: a model trained on the side, such as the static one, stays silent)."""
    from tqdm.auto import tqdm
    from transformers import TrainerCallback

    class CompactProgress(TrainerCallback):
        def __init__(self):
            self.bar = None

        def on_train_begin(self, args, state, control, **kwargs):
            if progress and state.is_world_process_zero:
                self.bar = tqdm(total=state.max_steps, desc="Training", unit="step",
                                initial=state.global_step, disable=None)

        def on_step_end(self, args, state, control, **kwargs):
            if self.bar is not None:
                self.bar.update(state.global_step - self.bar.n)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if self.bar is not None and "loss" in (logs or {}):
                self.bar.set_postfix(loss=f"{logs['loss']:.3f}", refresh=False)

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            line = validation_line(state.global_step, metrics or {})
            if line and progress and state.is_world_process_zero:
                (self.bar.write if self.bar is not None else print)(line)

        def on_train_end(self, args, state, control, **kwargs):
            if self.bar is not None:
                self.bar.close()
                self.bar = None

    return CompactProgress()


def quiet_progress(trainer, progress: bool = True) -> None:
    """Swap the Trainer's printing callbacks (raw log dictionaries) for ``compact_progress``."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from transformers.utils.notebook import NotebookProgressCallback

    for callback in (PrinterCallback, ProgressCallback, NotebookProgressCallback):
        trainer.remove_callback(callback)
    trainer.add_callback(compact_progress(progress))
