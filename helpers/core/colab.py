"""Colab conveniences for the notebooks: keep ``runs/`` on Google Drive, upload your own PDFs.

Off Colab they change nothing, say so in one line and return None, so the notebook cells that call them
run unchanged on a laptop, in CI and on Colab.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

from helpers.core import config

DRIVE_MOUNT = Path("/content/drive")
DRIVE_RUNS_FOLDER = "embedding-finetune-kit/runs"  # inside "My Drive"


def on_colab() -> bool:
    """True inside a Colab runtime (the same test as the notebooks' setup cell)."""
    return "google.colab" in sys.modules


def persist_runs_on_drive(folder: str = DRIVE_RUNS_FOLDER) -> Path | None:
    """On Colab: mount Google Drive and write every run under ``My Drive/<folder>``; else do nothing.

    Call it before any other ``helpers`` cell: it moves ``config.RUNS_DIR`` (and ``KIT_RUNS_DIR``), which
    the stage modules read when they are imported. Returns the runs folder on Drive, or None off Colab.
    """
    if not on_colab():
        print(f"Not on Colab: runs stay in {config.RUNS_DIR}")
        return None
    from google.colab import drive

    drive.mount(str(DRIVE_MOUNT))
    runs = config.set_runs_dir(DRIVE_MOUNT / "MyDrive" / folder)
    print(f"Runs are saved on Google Drive: {runs} (a disconnected runtime loses nothing)")
    return runs


def upload_pdfs(folder: Path | str) -> Path | None:
    """On Colab: open a file picker and save the chosen PDFs in ``folder``; else do nothing.

    Returns ``folder`` when at least one PDF was uploaded, else None (not on Colab, or no PDF chosen).
    Files that are not PDFs are deleted again and named.
    """
    if not on_colab():
        print("Not on Colab: copy your PDFs into a folder and point PDF_DIR at it.")
        return None
    from google.colab import files

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with contextlib.chdir(folder):  # files.upload() saves into the working directory
        names = list(files.upload())
    saved = [folder / n for n in names if n.lower().endswith(".pdf")]
    for other in (n for n in names if not n.lower().endswith(".pdf")):
        (folder / other).unlink(missing_ok=True)
        print(f"Skipped {other}: not a PDF")
    print(f"{len(saved)} PDF(s) in {folder}" if saved else "No PDF uploaded: PDF_DIR is unchanged.")
    return folder if saved else None
