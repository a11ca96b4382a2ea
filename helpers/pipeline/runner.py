"""The headless course: the stages in order, each skipped when its inputs and settings are unchanged."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from helpers.core import config
from helpers.core.diskspace import MIN_FREE_BYTES, DiskFullError, folder_bytes, is_disk_full
from helpers.core.io import read_json, write_json
from helpers.core.settings import RunSettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stage:
    """One stage: what it reads, what it writes, and the call that turns one into the other."""

    name: str
    inputs: Callable[[RunSettings], list[Path]]
    output: Callable[[config.RunPaths], Path]
    run: Callable[[config.RunPaths, RunSettings], dict]  # the stage package's run(paths, settings)
    settings: Callable[[RunSettings], dict]


def fingerprint(paths: list[Path], settings: dict) -> str:
    """Content hash of the input files (or folders) and the settings that shape a stage's output."""
    h = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for f in files:
            h.update(str(f.relative_to(path) if path.is_dir() else f.name).encode())
            h.update(hashlib.sha256(f.read_bytes()).digest() if f.exists() else b"missing")
    return h.hexdigest()


def stage_record(paths: config.RunPaths, name: str) -> Path:
    return paths.stage_record(name)


def run_stage(stage: Stage, settings: RunSettings) -> dict:
    """Run ``stage`` unless its output exists with the same input fingerprint and nothing was left pending
    (a summary's ``pending``: work that failed and a rerun retries); return its summary."""
    paths = settings.paths
    chosen = stage.settings(settings)
    digest = fingerprint(stage.inputs(settings), chosen)
    record = stage_record(paths, stage.name)
    if not settings.force and record.exists() and stage.output(paths).exists():
        previous = read_json(record)
        pending = previous["summary"].get("pending")
        if previous.get("fingerprint") == digest and not pending:
            logger.info(f"[{stage.name}] unchanged since the last run: skipped ({stage.output(paths)})")
            return previous["summary"] | {"skipped": True}
        if pending:
            logger.info(f"[{stage.name}] last run incomplete: {pending}; retrying")
        elif changed := changed_settings(previous.get("settings"), chosen):
            logger.info(f"[{stage.name}] {changed}")
    logger.info(f"[{stage.name}] running ...")
    started = time.perf_counter()
    try:
        summary = stage.run(paths, settings)
    except DiskFullError:
        raise
    except Exception as exc:
        if not is_disk_full(exc):
            raise
        needed = max(MIN_FREE_BYTES, 3 * folder_bytes(stage.inputs(settings)))
        raise DiskFullError(stage.output(paths), needed, f"the {stage.name} stage") from exc
    seconds = round(time.perf_counter() - started, 1)
    write_json(record, {"fingerprint": digest, "settings": chosen, "seconds": seconds, "summary": summary})
    logger.info(f"[{stage.name}] done in {seconds:.1f} s -> {config.shown(stage.output(paths))}")
    return summary | {"seconds": seconds}


def changed_settings(before: dict | None, now: dict) -> str | None:
    """What changed in a stage's settings since its last run, in one line (None: nothing, or unknown).

    An LLM that is configured now and was not then is named, with the way to keep the offline result."""
    if before is None:
        return None
    keys = [k for k in now if json.dumps(before.get(k), sort_keys=True, default=str)
            != json.dumps(now[k], sort_keys=True, default=str)]
    if not keys:
        return None
    if "llm" in keys and before.get("llm") is None:
        llm = now["llm"]
        return (f"an LLM is configured now ({llm['model']} at {llm['base_url']}); the last run was offline: "
                "running again with it (--generator offline keeps offline questions; unset OPENAI_API_KEY "
                "and KIT_LLM_BASE_URL to stay offline)")
    return f"settings changed since the last run ({', '.join(keys)}): running again"


def run_all(stages: list[Stage], settings: RunSettings) -> dict[str, dict]:
    """Run the stages in order; return each one's summary."""
    return {stage.name: run_stage(stage, settings) for stage in stages}
