"""Static embedding models, made offline: a bag of token vectors, no transformer at inference time.

``distilled_static_path`` distils the bundled MiniLM with model2vec (``StaticEmbedding.from_distillation``:
each vocabulary token goes through MiniLM once, then PCA to 256 dimensions and SIF weighting) and caches the
result in ``config.CACHE_DIR``, keyed by the fallback's checksum, so it is made once per machine.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

from helpers.core import config
from helpers.core.hf import fallback_model_path, quiet_transformers

logger = logging.getLogger(__name__)

PCA_DIMS = 256


def distilled_static_path(cache_dir: Path | str | None = None) -> Path:
    """Folder of the static model distilled from the fallback; it is distilled first if not cached."""
    name = f"static-distilled-{config.FALLBACK_WEIGHTS_SHA256[:12]}-{PCA_DIMS}d"
    folder = Path(cache_dir or config.CACHE_DIR) / name
    if not (folder / "modules.json").is_file():
        distill_static(fallback_model_path(), folder)
    return folder


def distill_static(source: Path, output: Path, pca_dims: int = PCA_DIMS, **options) -> Path:
    """Distil the SentenceTransformer folder ``source`` into a static model saved at ``output``.

    ``options`` go to ``StaticEmbedding.from_distillation`` (e.g. ``token_remove_pattern`` to leave tokens
    out of the vocabulary). The folder appears whole or not at all; when two processes distil at once, the
    first one kept wins.
    """
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding

    output.parent.mkdir(parents=True, exist_ok=True)
    logger.info(f"Distilling a static model from {source} with model2vec (made once, kept in {output})")
    # It warns about every distill() argument this model2vec version lacks (apply_zipf, use_subword).
    warnings = logging.getLogger(StaticEmbedding.__module__)
    level = warnings.level
    warnings.setLevel(logging.ERROR)
    try:
        with quiet_transformers():
            module = StaticEmbedding.from_distillation(str(source), pca_dims=pca_dims, **options)
    finally:
        warnings.setLevel(level)
    tmp = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the cache is shared like any model folder
    SentenceTransformer(modules=[module], device="cpu").save(str(tmp))
    try:
        os.replace(tmp, output)
    except OSError:  # another process saved it first
        shutil.rmtree(tmp, ignore_errors=True)
    return output
