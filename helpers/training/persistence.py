"""What a run keeps on disk: its fingerprint, the cached result of an identical run, checkpoints, the saved
model folder and the push to the hub."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path

from helpers.core import config as kit_config
from helpers.core.io import read_json, write_json
from helpers.training.checkpoints import newest_complete
from helpers.training.result import TrainResult
from helpers.training.settings import TrainConfig

logger = logging.getLogger(__name__)

FINGERPRINT_FILE = "fingerprint.json"


def run_fingerprint(cfg: TrainConfig, base_model: str, pairs, corpus: dict[str, str]) -> str:
    """Hash of everything that shapes the trained weights: config, base model, pairs, corpus."""
    h = hashlib.sha256(json.dumps([cfg.as_dict(), base_model], sort_keys=True).encode())
    for name in ("train", "validation"):
        if name in pairs:
            h.update(json.dumps(pairs[name].to_list(), sort_keys=True).encode())
    h.update(json.dumps(sorted(corpus.items())).encode())
    return h.hexdigest()[:16]


def prepare_checkpoints(checkpoint_dir: Path, fingerprint: str, resume: bool) -> str | None:
    """The newest complete checkpoint to resume from, if it belongs to this exact run (incomplete ones are
    set aside); checkpoints of other runs are removed."""
    marker = checkpoint_dir / FINGERPRINT_FILE
    same_run = marker.is_file() and read_json(marker).get("fingerprint") == fingerprint
    if checkpoint_dir.exists() and not (resume and same_run):
        shutil.rmtree(checkpoint_dir)
    write_json(marker, {"fingerprint": fingerprint})
    return newest_complete(checkpoint_dir) if resume and same_run else None


def cached_result(output_dir: Path, fingerprint: str) -> TrainResult | None:
    """The result of a finished run with the same fingerprint, so a re-run does no work twice."""
    meta_path = output_dir / "training_config.json"
    if not meta_path.is_file() or not (output_dir / "config_sentence_transformers.json").is_file():
        return None
    meta = read_json(meta_path)
    if meta.get("fingerprint") != fingerprint:
        return None
    result = {**meta["result"], "output_dir": output_dir, "cached": True, "config": meta["config"]}
    try:
        return TrainResult(**result)
    except TypeError:  # written by another version of the kit: train again
        return None


def save_model(model, output_dir: Path, cfg: TrainConfig, result: TrainResult, fingerprint: str,
               log_history: list[dict], loaded) -> None:
    """Write the model folder (weights, prompts, model card) with its training config and log, atomically."""
    tmp = output_dir.with_name(f".{output_dir.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save(str(tmp))
    meta = {
        "fingerprint": fingerprint,
        "base_model": {"requested": loaded.requested, "loaded": loaded.loaded, "reason": loaded.reason,
                       "preset": loaded.preset.name},
        "config": replace(cfg, dims=result.dims).as_dict(),
        "result": {k: v for k, v in asdict(result).items() if k not in {"output_dir", "config", "cached"}},
        "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    write_json(tmp / "training_config.json", meta)
    write_json(tmp / "train_log.json", log_history)
    shutil.rmtree(output_dir, ignore_errors=True)
    os.replace(tmp, output_dir)


def push_model(model, repo_id: str) -> None:
    token = kit_config.hub_token()
    if not token:
        logger.info("push_to_hub skipped: set HF_TOKEN to push the model.")
        return
    url = model.push_to_hub(repo_id, token=token, exist_ok=True)
    logger.info(f"Pushed to {url}")
