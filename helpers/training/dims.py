"""Matryoshka dimensions: the sizes an embedding is trained, evaluated and stored at."""

from __future__ import annotations

import math

MIN_MATRYOSHKA_DIM = 64


def matryoshka_dims(model_or_dim, smallest: int = MIN_MATRYOSHKA_DIM) -> list[int]:
    """The model's full dimension, then the powers of two below it down to ``smallest``.

    768 -> [768, 512, 256, 128, 64]; 384 -> [384, 256, 128, 64]; 1024 -> [1024, 512, 256, 128, 64].
    """
    full = model_or_dim if isinstance(model_or_dim, int) else model_or_dim.get_embedding_dimension()
    if not full or full < 1:
        raise ValueError(f"Cannot derive Matryoshka dimensions from embedding dimension {full!r}.")
    below = 2 ** math.floor(math.log2(full - 1)) if full > 1 else 0
    halvings = []
    while below >= smallest:
        halvings.append(below)
        below //= 2
    return [full, *halvings]
