"""Colab for the notebooks: the setup cell's install, ``runs/`` on Google Drive, your own PDFs.

The install (``python -m helpers.core.colab``, run by every notebook's setup cell on Colab) adds what the
runtime lacks at the versions of ``constraints-colab.txt`` and leaves the runtime's own packages as they
are. That file is resolved by ``scripts/lock.sh`` against Colab's recorded packages
(``colab/pip-freeze.gpu.txt``) with the constraints and preferences written here. This module uses the
standard library only: on Colab it runs before the kit is installed.

Off Colab the Drive and upload helpers change nothing, say so in one line and return None, so the notebook
cells that call them run unchanged on a laptop, in CI and on Colab.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

from helpers.core import config

DRIVE_MOUNT = Path("/content/drive")
DRIVE_RUNS_FOLDER = "embedding-finetune-kit/runs"  # inside "My Drive"
COLAB_FREEZE = config.REPO_ROOT / "colab" / "pip-freeze.gpu.txt"  # Colab's packages, as Google records them
COLAB_CONSTRAINTS = config.REPO_ROOT / "constraints-colab.txt"
COLAB_EXTRA = "colab"  # the kit without the Jupyter stack: Colab's kernel is kept
# What Colab's runtime itself runs on (its kernel, its arrays and tables, torch and its CUDA libraries):
# the install leaves these at the version it found, and the lock fails rather than move one.
PROTECTED = frozenset({"ipykernel", "ipython", "jupyter-client", "jupyter-core", "jupyter-server",
                       "notebook", "tornado", "pyzmq", "traitlets", "numpy", "pandas", "pyarrow", "protobuf",
                       "setuptools", "triton"})
PROTECTED_PREFIXES = ("torch", "nvidia-", "cuda-")
# Colab packages the kit needs at another version than Colab's, and why. Every other Colab package may
# only move up within its major version, and only where a package the kit adds requires it.
NEEDED_CHANGES = {
    "sentence-transformers": "the kit is written for sentence-transformers 6 (tested with 6.2); Colab has 5",
    "jiter": "ragas 0.4.3 needs instructor, and each instructor release that takes openai 2 wants jiter<0.15",
}


def on_colab() -> bool:
    """True inside a Colab runtime (the same test as the notebooks' setup cell)."""
    return "google.colab" in sys.modules


def persist_runs_on_drive(folder: str = DRIVE_RUNS_FOLDER) -> Path | None:
    """On Colab: mount Google Drive and write every run under ``My Drive/<folder>``; else do nothing.

    Call it before the cells that make a run's paths: it moves ``config.RUNS_DIR`` (and ``KIT_RUNS_DIR``),
    which every default reads when used. Returns the runs folder on Drive, or None off Colab.
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


def canonical_name(name: str) -> str:
    """A package's name as PyPI compares it (``Jupyter_Client`` -> ``jupyter-client``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def is_protected(name: str) -> bool:
    """True for a package of Colab's runtime that the install must leave as it found it."""
    name = canonical_name(name)
    return name in PROTECTED or name.startswith(PROTECTED_PREFIXES)


def read_pins(path: Path) -> dict[str, str]:
    """``name==version`` lines of a freeze or constraints file -> {name: version}; markers, comments and
    ``name @ url`` lines are left out."""
    pins = {}
    for line in path.read_text().splitlines():
        spec = line.partition(";")[0].strip()
        if "==" in spec and not spec.startswith("#"):
            name, _, version = spec.partition("==")
            pins[canonical_name(name)] = version.strip()
    return pins


def public_version(version: str) -> str:
    """``2.11.0+cu128`` -> ``2.11.0``: the version PyPI knows."""
    return version.partition("+")[0]


def resolution_constraints(colab: dict[str, str]) -> list[str]:
    """What the Colab resolution may do with each package Colab has: a protected one stays, a needed
    change is free, any other may only move up, within its major version."""
    lines = []
    for name, version in sorted(colab.items()):
        version = public_version(version)
        if is_protected(name):
            lines.append(f"{name}=={version}")
        elif name not in NEEDED_CHANGES:
            major = int(re.match(r"\d+", version).group())
            lines.append(f"{name}>={version},<{major + 1}")
    return lines


def preferred_versions(colab: dict[str, str], locked: dict[str, str]) -> list[str]:
    """The versions the resolution starts from: Colab's, but the lock's where the kit needs a change or
    Colab has no such package."""
    keep = {name: public_version(v) for name, v in colab.items() if name not in NEEDED_CHANGES}
    return [f"{name}=={version}" for name, version in sorted({**locked, **keep}.items())]


def install_command(python: str = sys.executable) -> list[str]:
    """The pip command that installs the kit on Colab: its ``colab`` extra at the Colab constraints."""
    return [python, "-m", "pip", "install", "-q", "-c", COLAB_CONSTRAINTS.name, "-e", f".[{COLAB_EXTRA}]"]


def missing_or_different() -> list[str]:
    """Packages of ``constraints-colab.txt`` (and the kit itself) not installed at the pinned version."""
    wanted = {**read_pins(COLAB_CONSTRAINTS), config.DISTRIBUTION: None}
    return [name for name, version in sorted(wanted.items())
            if installed_version(name) is None or version not in (None, installed_version(name))]


def installed_version(name: str) -> str | None:
    """The installed version of a package, or None."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def install_kit() -> None:
    """Install the kit for Colab from this repository, once per runtime: when every package of
    ``constraints-colab.txt`` and the kit are already there at those versions, say so and install nothing."""
    if not missing_or_different():
        print("The kit is already installed on this runtime: nothing to do.")
        return
    start = time.monotonic()
    subprocess.run(install_command(), check=True, cwd=config.REPO_ROOT)
    print(f"Installed the kit in {time.monotonic() - start:.0f} s, keeping Colab's torch "
          f"{installed_version('torch')}, numpy and kernel. No restart needed.")


def resolve(folder: Path, uv: str = "uv", *extra: str) -> Path:
    """Resolve the colab extra for Colab (Python 3.13, Linux x86_64, wheels only) against Colab's packages
    with uv, in ``folder``: within resolution_constraints, from preferred_versions (uv prefers the versions
    of the output file it rewrites), torch left to Colab. ``extra``: more uv arguments. Returns the file."""
    colab = read_pins(COLAB_FREEZE)
    (folder / "colab-bounds.txt").write_text("\n".join(resolution_constraints(colab)) + "\n")
    (folder / "excluded.txt").write_text("torch\n")
    output = folder / COLAB_CONSTRAINTS.name
    preferred = preferred_versions(colab, read_pins(config.REPO_ROOT / "constraints.txt"))
    output.write_text("\n".join(preferred) + "\n")
    subprocess.run([uv, "pip", "compile", "pyproject.toml", "--quiet", "--no-config", "--no-python-downloads",
                    "--no-build", "--extra", COLAB_EXTRA, "--python-version", "3.13",
                    "--python-platform", "x86_64-manylinux_2_35", "--no-header", "--no-annotate",
                    "--constraints", str(folder / "colab-bounds.txt"),
                    "--excludes", str(folder / "excluded.txt"), "-o", str(output), *extra],
                   check=True, cwd=config.REPO_ROOT)
    return output


def lock(uv: str = "uv") -> None:
    """Write ``constraints-colab.txt`` anew (scripts/lock.sh)."""
    with tempfile.TemporaryDirectory() as tmp:
        resolved = resolve(Path(tmp), uv).read_text()
    COLAB_CONSTRAINTS.write_text("# Made by scripts/lock.sh (python -m helpers.core.colab lock) from "
                                 "pyproject.toml's colab extra and colab/pip-freeze.gpu.txt: do not edit.\n"
                                 + resolved)


def main(argv: list[str]) -> None:
    """``python -m helpers.core.colab``: install the kit (the setup cell);
    ``python -m helpers.core.colab lock``: write constraints-colab.txt anew (scripts/lock.sh)."""
    if argv[:1] == ["lock"]:
        lock()
    else:
        install_kit()


if __name__ == "__main__":
    main(sys.argv[1:])
