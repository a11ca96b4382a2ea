"""What training prints: one compact line per validation, no raw metric dictionaries, unless verbose."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.core.config import REPO_ROOT
from helpers.core.presets import ARCTIC_QUERY_PROMPT
from helpers.core.schema import chunk_id
from helpers.training.progress import validation_line

TOPICS = ["bees dance to show flowers", "glaciers carve valleys slowly", "volcanoes erupt molten rock",
          "tides follow the moon", "owls hunt silently at night", "coral reefs shelter fish",
          "bridges hang decks from cables", "comets grow tails near the sun"]
RAW_MARKERS = ("{'loss'", "{'eval_", "'eval_dim_", "LOAD REPORT", "Writing model shards", "train_runtime")


def test_validation_line_lists_ndcg_per_dimension_largest_first():
    metrics = {"eval_dim_64_cosine_ndcg@10": 0.8171, "eval_dim_384_cosine_ndcg@10": 0.85549,
               "eval_dim_128_cosine_ndcg@10": 0.823, "eval_dim_384_cosine_mrr@10": 0.7, "epoch": 1.0}
    assert validation_line(40, metrics) == "step 40   ndcg@10  384: 0.855  128: 0.823  64: 0.817"
    assert validation_line(3, {"eval_loss": 1.0}) is None


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[Path, Path]:
    """A runs folder with run ``r`` holding pairs, and a random 2-layer BERT to fine-tune."""
    from datasets import Dataset, DatasetDict
    from sentence_transformers import SentenceTransformer

    from helpers.core.random_models import build_random_bert

    root = tmp_path_factory.mktemp("terminal")
    model_dir = build_random_bert(root / "models", "tiny", max_seq_length=32)
    model = SentenceTransformer(str(model_dir), device="cpu")
    model.prompts = {"query": ARCTIC_QUERY_PROMPT, "document": ""}
    model.save(str(model_dir))

    def rows(topics: list[str]) -> list[dict]:
        return [{"id": f"{t}-{i}", "anchor": f"{q} {t}?", "positive": f"It is known that {t}.",
                 "chunk_id": chunk_id("doc.pdf", t), "generator": "hand-written"}
                for t in topics for i, q in enumerate(("why do", "what about"))]

    splits = {"train": rows(TOPICS[:6]), "validation": rows(TOPICS[6:]), "test": rows(TOPICS[6:])}
    DatasetDict({k: Dataset.from_list(v) for k, v in splits.items()}).save_to_disk(str(root / "runs/r/pairs"))
    return root / "runs", model_dir


def _train_stage(runs: Path, model_dir: Path, *extra: str) -> str:
    """The CLI's train stage in a fresh process, as a user runs it; its stdout and stderr together."""
    for trained in ("model", "model_static"):  # a finished identical run would be reused, not retrained
        shutil.rmtree(runs / "r" / trained, ignore_errors=True)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "KIT_VERBOSE": "", "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "helpers", "train", "--runs-dir", str(runs), "--run", "r", "--profile",
           "smoke", "--model", str(model_dir), "--force", *extra]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    return out


def test_cli_training_prints_compact_validation_lines_and_no_raw_metric_dictionaries(tiny_run):
    out = _train_stage(*tiny_run)
    assert not [marker for marker in RAW_MARKERS if marker in out], out
    lines = [line.strip() for line in re.split(r"[\r\n]", out)]  # progress bars redraw with \r
    assert any(line.startswith("step 0") and "ndcg@10  128:" in line for line in lines), out
    assert "[train] done in" in out and "train" in out.split("Finished in")[-1]


def test_verbose_shows_what_the_libraries_print(tiny_run):
    out = _train_stage(*tiny_run, "--verbose")
    assert "'eval_dim_128_cosine_ndcg@10'" in out
