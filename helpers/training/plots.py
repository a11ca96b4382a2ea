"""Pictures of fine-tuning: what the loss sees in one batch, and how a run went."""

from __future__ import annotations

import re
from pathlib import Path

from helpers.core.io import save_figure

EVAL_METRIC = re.compile(r"^eval_dim_(\d+)_\w+_(ndcg@10)$")


def metric_curves(log_history: list[dict]) -> dict[int, list[tuple[int, float]]]:
    """Validation nDCG@10 per Matryoshka dim: ``{dim: [(step, value), ...]}``, largest dim first."""
    curves: dict[int, list[tuple[int, float]]] = {}
    for row in log_history:
        for key, value in row.items():
            if match := EVAL_METRIC.match(key):
                curves.setdefault(int(match.group(1)), []).append((row.get("step", 0), value))
    return dict(sorted(curves.items(), reverse=True))


def plot_training_curves(log_history: list[dict], path: Path | str | None = None, title: str = ""):
    """Training loss and validation nDCG@10 at every dim against the step, under ``title`` (which model);
    saved to ``path`` if given."""
    import matplotlib.pyplot as plt

    losses = [(row["step"], row["loss"]) for row in log_history if "loss" in row]
    fig, (ax_loss, ax_eval) = plt.subplots(1, 2, figsize=(11, 3.8))
    if losses:
        ax_loss.plot(*zip(*losses, strict=True), marker=".", color="tab:red")
    ax_loss.set(title="Training loss (Matryoshka MNRL)", xlabel="step", ylabel="loss")
    for dim, points in metric_curves(log_history).items():
        ax_eval.plot(*zip(*points, strict=True), marker="o", label=f"{dim} dims")
    ax_eval.set(title="Validation nDCG@10 by embedding size", xlabel="step", ylabel="nDCG@10")
    if ax_eval.lines:
        ax_eval.legend(fontsize="small")
    for ax in (ax_loss, ax_eval):
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize="medium")
    fig.tight_layout()
    save_figure(fig, path, tight_box=True, close=True)
    return fig


def plot_batch_similarity(model, questions: list[str], passages: list[str], dims: tuple[int, ...] = (),
                          path: Path | str | None = None):
    """Question x passage cosine similarities of one batch at each of ``dims`` (default: full and smallest).

    The diagonal holds each question's own passage (the positive); every other cell is an in-batch negative.
    MNRL is a softmax over each row that wants the diagonal to win.
    """
    import matplotlib.pyplot as plt

    from helpers.training.dims import matryoshka_dims

    dims = dims or (matryoshka_dims(model)[0], matryoshka_dims(model)[-1])
    fig, axes = plt.subplots(1, len(dims), figsize=(4.2 * len(dims), 3.8), squeeze=False)
    for ax, dim in zip(axes[0], dims, strict=True):
        q = model.encode(questions, prompt_name="query", truncate_dim=dim, normalize_embeddings=True)
        p = model.encode(passages, truncate_dim=dim, normalize_embeddings=True)
        image = ax.imshow(q @ p.T, cmap="viridis", vmin=-0.2, vmax=1.0)
        ax.set(title=f"{dim} dims", xlabel="passage", ylabel="question")
        ax.set_xticks(range(len(passages)))
        ax.set_yticks(range(len(questions)))
    fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8, label="cosine similarity")
    save_figure(fig, path, tight_box=True, close=True)
    return fig
