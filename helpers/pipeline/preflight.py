"""Checks made before any model is loaded: paths, names and the runs folder, each failing with its fix."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from helpers.core import presets

RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def check_pdfs(path: Path) -> None:
    if not path.exists():
        raise FileNotFoundError(f"--pdfs {path}: no such file or folder (give a folder of PDFs or one PDF).")
    if path.is_file() and path.suffix.lower() != ".pdf":
        raise ValueError(f"--pdfs {path} is not a .pdf file (give a folder of PDFs or one PDF).")


def check_run_name(name: str | None) -> None:
    if name is not None and not RUN_NAME.match(name):
        raise ValueError(f"--run {name!r}: use letters, digits, '.', '_' and '-' only (it names a folder).")


def check_writable(folder: Path) -> None:
    """Create ``folder`` if needed and write a file in it; a clear error when that is not possible."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise PermissionError(f"The runs folder {folder} is not writable ({exc.strerror or exc}): give "
                              "--runs-dir or KIT_RUNS_DIR a folder you can write to.") from None


def check_model_name(model_id: str | None) -> None:
    """A preset, an existing folder or something shaped like a hub id (owner/name)."""
    if model_id is None:
        return
    path = Path(model_id).expanduser()
    if model_id.startswith((".", "/", "~")) or os.sep in model_id and path.exists():
        if not path.is_dir():
            raise ValueError(f"--model {model_id}: the model folder does not exist (give a preset, a hub id, "
                             "a folder or 'fallback').")
        return
    if presets.resolve(model_id).source == "hub" and not HUB_ID.match(model_id):
        raise ValueError(f"--model {model_id!r} is neither a preset ({', '.join(presets.PRESETS)}), a folder "
                         "nor a hub id (owner/name).")


def offline_fallback_warning(requested: str | None, summary: dict) -> str | None:
    """The loud line for a run where an explicitly chosen model was replaced by the offline fallback."""
    if not requested or not summary.get("is_fallback") or presets.resolve(requested).source == "bundled":
        return None
    return (f"WARNING: --model {requested} could not be loaded (offline or not in the local cache): this run "
            f"fine-tuned and evaluated {summary.get('base_model')} instead. Connect to the model hub (or "
            "download the model into the cache) and rerun with --force to train the model you asked for.")
