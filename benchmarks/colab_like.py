"""A Colab-like environment, and what the notebooks' setup cell does to it.

    .venv/bin/python benchmarks/colab_like.py [--venv DIR] [--notebooks]

Seeds a Python 3.13 virtual environment with Colab's recorded versions (colab/pip-freeze.gpu.txt) of every
package the kit's install touches, torch 2.11.0 included (PyPI's build of Colab's version, with the CUDA
libraries PyPI's torch asks for: Colab's own +cu128 build is not on PyPI), then runs what the setup cell
runs on Colab (``python -m helpers.core.colab``) twice, timed, with an empty pip cache and pip's machine
settings switched off, as on a new runtime. Prints what the install changed and exits 1 when a protected
package moved or a package was downgraded that helpers.core.colab.NEEDED_CHANGES does not name.
``--notebooks`` then runs every notebook with nbval in the smoke profile there (pytest and nbval are put in
at versions that move nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from helpers.core import colab, config, lockfile

PYTHON = os.environ.get("KIT_COLAB_PYTHON", "/root/.pyenv/versions/3.13.0/bin/python3.13")
COLAB_TORCH = "torch==2.11.0"
SNAPSHOT = ("import json, importlib.metadata as m; "
            "print(json.dumps({d.name: d.version for d in m.distributions()}))")


def uv(*args: str) -> None:
    """Run uv (from the kit's environment), without the project's uv settings (they pin the lock's torch)."""
    subprocess.run([sys.executable, "-m", "uv", *args, "--no-config"], check=True)


def seed_names(freeze: dict[str, str]) -> list[str]:
    """Colab's packages that the kit's install touches: those the lock or the Colab constraints name, pip, and
    the protected ones; torch and its CUDA libraries come with torch."""
    touched = {p["name"] for p in lockfile.read_lock()["package"]}
    touched |= set(colab.read_pins(colab.COLAB_CONSTRAINTS))
    names = {n for n in freeze if n in touched or n == "pip" or colab.is_protected(n)}
    return sorted(n for n in names if not colab.is_protected(n) or n in colab.PROTECTED - {"triton"})


def seed(venv: Path, work: Path) -> None:
    """A new venv with Colab's versions: the seeded packages, pinned with all of Colab's versions but the
    CUDA libraries (PyPI's torch asks for its own)."""
    freeze = colab.read_pins(colab.COLAB_FREEZE)
    pins = [f"{n}=={colab.public_version(v)}" for n, v in freeze.items()
            if not (colab.is_protected(n) and n.startswith(("nvidia-", "cuda-", "triton")))]
    (work / "colab-pins.txt").write_text("\n".join(pins) + "\n")
    (work / "seed.txt").write_text("\n".join([*seed_names(freeze), COLAB_TORCH]) + "\n")
    subprocess.run([PYTHON, "-m", "venv", str(venv)], check=True)
    uv("pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), "-r", str(work / "seed.txt"),
       "-c", str(work / "colab-pins.txt"))


def snapshot(venv: Path) -> dict[str, str]:
    """{package: version} of everything installed in the venv."""
    out = subprocess.run([venv / "bin" / "python", "-c", SNAPSHOT], check=True, text=True,
                         capture_output=True)
    return {colab.canonical_name(name): version for name, version in json.loads(out.stdout).items()}


def setup_cell(venv: Path, env: dict[str, str]) -> float:
    """Seconds the setup cell's install takes in the venv (what the cell runs after cloning)."""
    start = time.monotonic()
    subprocess.run([venv / "bin" / "python", "-m", "helpers.core.colab"], check=True, cwd=config.REPO_ROOT,
                   env=env)
    return time.monotonic() - start


def pip_env(work: Path) -> dict[str, str]:
    """The environment of a new Colab runtime's pip: no machine settings, an empty cache."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    return {**env, "PIP_CONFIG_FILE": os.devnull, "PIP_CACHE_DIR": str(work / "pip-cache")}


def report(changes: lockfile.Changes, before: dict[str, str]) -> list[str]:
    """Print what changed; return the problems (protected packages moved, unexplained downgrades)."""
    print(f"\n{len(changes.changed)} of {len(before)} packages changed, {len(changes.added)} added:")
    for name, (old, new) in changes.changed.items():
        why = colab.NEEDED_CHANGES.get(name, "required by a package the kit adds")
        print(f"  {name} {old} -> {new}  ({why})")
    print("  added: " + ", ".join(f"{n} {v}" for n, v in changes.added.items()))
    problems = [f"protected {n} {a} -> {b}" for n, (a, b) in changes.changed.items() if colab.is_protected(n)]
    problems += [f"downgraded {n} {a} -> {b}" for n, (a, b) in changes.downgraded.items()
                 if n not in colab.NEEDED_CHANGES]
    return problems


def run_notebooks(venv: Path) -> int:
    """nbval over every notebook in the smoke profile, in the venv; pytest and nbval move nothing there."""
    pins = venv / "kit-pins.txt"
    pins.write_text("\n".join(f"{n}=={v}" for n, v in snapshot(venv).items() if n != "helpers") + "\n")
    python = str(venv / "bin" / "python")
    uv("pip", "install", "--quiet", "--python", python, "-c", str(pins), "pytest", "nbval")
    env = {**os.environ, "KIT_PROFILE": "smoke"}
    return subprocess.run([venv / "bin" / "python", "-m", "pytest", "notebooks", "--nbval-lax", "-p",
                           "no:cacheprovider", "-q"], cwd=config.REPO_ROOT, env=env).returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--venv", type=Path, help="where to build it (default: a temporary folder)")
    parser.add_argument("--notebooks", action="store_true", help="then run the notebooks with nbval there")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="colab-like-"))
    venv = args.venv or work / "venv"
    seed(venv, work)
    before = snapshot(venv)
    print(f"Seeded {venv} with {len(before)} packages at Colab's versions (torch {before['torch']})")
    first = setup_cell(venv, pip_env(work))
    second = setup_cell(venv, pip_env(work))
    problems = report(lockfile.version_changes(before, snapshot(venv)), before)
    print(f"\nsetup cell: first {first:.0f} s, second {second:.1f} s")
    print("\n".join(problems) or "protected packages unchanged; no downgrade but the needed ones")
    if problems:
        sys.exit(1)
    if args.notebooks:
        sys.exit(run_notebooks(venv))


if __name__ == "__main__":
    main()
