"""Point the course at another GitHub repository (a fork): the Colab badges and the setup cells' clone.

    python scripts/set_repo.py OWNER/NAME

The repository lives in one place, ``KIT_REPO`` in helpers/core/config.py; this rewrites it there and in
every link made from it (README.md, and each notebook's badges and setup cell, edited with nbformat so cell
ids and outputs stay). tests/test_project_files.py checks that they agree.
"""

from __future__ import annotations

import re
import sys

import nbformat

from helpers.core import config

CONFIG_FILE = config.REPO_ROOT / "helpers" / "core" / "config.py"
TEXT_FILES = [CONFIG_FILE, config.REPO_ROOT / "README.md"]
NOTEBOOKS = sorted((config.REPO_ROOT / "notebooks").rglob("[0-9][0-9]_*.ipynb"))


def repoint(text: str, old: str, new: str) -> str:
    """``text`` with the repository ``old`` (in a GitHub or Colab URL, or quoted) replaced by ``new``."""
    return re.sub(rf'(github\.com/|github/|"){re.escape(old)}(?=[/")\s]|$)', rf"\g<1>{new}", text, flags=re.M)


def set_repo(new: str) -> None:
    """Rewrite config.KIT_REPO and every link made from it to ``new``."""
    old = config.KIT_REPO
    for path in TEXT_FILES:
        path.write_text(repoint(path.read_text(), old, new))
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            cell.source = repoint(cell.source, old, new)
        nbformat.write(nb, path)
    print(f"{old} -> {new} in {len(TEXT_FILES) + len(NOTEBOOKS)} files")


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1].count("/") != 1:
        sys.exit(__doc__)
    set_repo(sys.argv[1])
