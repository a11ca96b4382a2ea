"""Rotate a model's embeddings so that their leading dimensions carry most of your corpus' variance.

A model that was not trained with Matryoshka loss spreads what it knows over all its dimensions, so
truncating its embeddings to the first 128 keeps 128 arbitrary ones. Rotating the space onto the
principal directions of your own passages first (an orthogonal ``Dense`` layer, as in
sentence-transformers' dimensionality-reduction example, but kept square) changes no similarity at the
full dimension and makes the truncated ones much better; Matryoshka training then starts from there.
The rotation suits the passages it was fitted on: refit (retrain) when the collection changes a lot.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from helpers.core.embeddings import EmbeddingStore

logger = logging.getLogger(__name__)


def principal_rotation(embeddings: np.ndarray) -> np.ndarray:
    """Orthogonal ``dim x dim`` matrix whose rows are the principal directions of ``embeddings`` scaled
    to unit length, strongest first (not centered, so it is a pure rotation: dot products are unchanged).

    Only with fewer texts than dimensions is the full decomposition needed (for a square result); with
    more, the reduced one gives the same ``dim x dim`` rows without the ``n_texts x n_texts`` factor that
    the full one builds (1.5 GB and 54 s at 10,000 chunks, about 25 GB at 40,000; reduced: 0.25 GB and
    11 s at 40,000)."""
    embeddings = np.asarray(embeddings, dtype=np.float64)
    if embeddings.ndim != 2 or len(embeddings) == 0:
        raise ValueError("Need a non-empty (n_texts x dim) matrix of embeddings to fit a rotation.")
    if not np.isfinite(embeddings).all():
        raise ValueError("The model's embeddings contain NaN or infinite values: its weights are broken, "
                         "so there is nothing to rotate (or to fine-tune).")
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    square = len(embeddings) < embeddings.shape[1]
    _, _, vt = np.linalg.svd(embeddings / np.where(norms > 0, norms, 1.0), full_matrices=square)
    return vt


def add_corpus_rotation(model, passages: Sequence[str], batch_size: int = 32, progress: bool = False,
                        embeddings: np.ndarray | None = None):
    """Insert the rotation fitted on ``passages`` into ``model`` (before its ``Normalize``, if any) and
    return the Dense module; scores at the model's full dimension stay as they were. ``embeddings``: the
    passages' embeddings by ``model`` when already computed (the run's embedding store)."""
    import torch
    from sentence_transformers.sentence_transformer.modules import Dense, Normalize

    if not passages:
        raise ValueError("No passages to fit the rotation on.")
    if embeddings is None:
        embeddings = model.encode_document(list(passages), batch_size=batch_size, convert_to_numpy=True,
                                           show_progress_bar=progress)
    rotation = principal_rotation(embeddings)
    dim = rotation.shape[0]
    dense = Dense(dim, dim, bias=False, activation_function=torch.nn.Identity())
    first = next(model.parameters())
    dense.linear.weight.data = torch.tensor(rotation, dtype=first.dtype, device=first.device)
    at = next((i for i, m in enumerate(model) if isinstance(m, Normalize)), len(model))
    model.insert(at, dense)
    return dense


def rotate_to_corpus(model, passages: list[str], batch_size: int = 32, store: EmbeddingStore | None = None
                     ) -> None:
    """Start from the model rotated onto the passages' principal directions (``add_corpus_rotation``),
    fitted on the passages' vectors in ``store`` when given (encoded there at most once)."""
    embeddings = store.documents(model, passages, batch_size) if store else None
    add_corpus_rotation(model, passages, batch_size, embeddings=embeddings)
    logger.info(f"Corpus rotation: embeddings rotated onto the principal directions of {len(passages)} "
                "passages (full-dimension scores unchanged, truncated ones better before any training)")
