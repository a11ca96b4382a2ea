"""The loss a run trains with: one registry, loss name -> builder of the in-batch-negatives loss that
``MatryoshkaLoss`` wraps. Adding a loss is one entry in ``LOSSES`` (and its test); ``TrainConfig.loss`` and
the CLI's ``--loss`` choices are read from it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal


def _mnrl(model, cfg, gather: bool):
    from sentence_transformers.sentence_transformer import losses

    return losses.MultipleNegativesRankingLoss(model, gather_across_devices=gather)


def _cached_mnrl(model, cfg, gather: bool):
    """Same batch and negatives as ``mnrl``; memory set by ``cfg.mini_batch_size``."""
    from sentence_transformers.sentence_transformer import losses

    return losses.CachedMultipleNegativesRankingLoss(model, mini_batch_size=cfg.mini_batch_size,
                                                     gather_across_devices=gather)


def _gist(model, cfg, gather: bool):
    """``mnrl`` whose in-batch negatives the starting model, frozen as a guide, scores above the question's
    own passage are left out (likely unlabelled positives; GISTEmbed). MNRL's temperature (scale 20)."""
    from sentence_transformers.sentence_transformer import losses

    return losses.GISTEmbedLoss(model, guide=_frozen_copy(model), temperature=1 / MNRL_SCALE,
                                gather_across_devices=gather)


def _frozen_copy(model):
    """The model as it is now, for a guide that never trains."""
    import copy

    guide = copy.deepcopy(model)
    guide.requires_grad_(False)
    return guide.eval()


MNRL_SCALE = 20.0  # MultipleNegativesRankingLoss's default similarity scale (temperature 0.05)
# name -> builder(model, cfg: TrainConfig, gather_across_devices: bool) of the inner loss
LOSSES: dict[str, Callable] = {"mnrl": _mnrl, "cached_mnrl": _cached_mnrl, "gist": _gist}
LossName = Literal[tuple(LOSSES)]  # the names above, for TrainConfig.loss


def build_loss(model, cfg, dims: list[int], world_size: int = 1):
    """MatryoshkaLoss over the ``cfg.loss`` entry of ``LOSSES``, with in-batch negatives gathered from every
    process when ``world_size`` processes train together (and ``cfg.gather_across_devices``)."""
    from sentence_transformers.sentence_transformer import losses

    gather = cfg.gather_across_devices and world_size > 1
    if cfg.loss not in LOSSES:
        raise ValueError(f"Unknown loss {cfg.loss!r}: choose {' or '.join(map(repr, LOSSES))}.")
    return losses.MatryoshkaLoss(model, LOSSES[cfg.loss](model, cfg, gather), matryoshka_dims=dims)
