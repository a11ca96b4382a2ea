"""The recorded smoke run the report tests render: its JSON artifacts, plots redrawn from eval.json."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.core.config import RunPaths

RECORDED_RUN = Path(__file__).parent / "data" / "smoke_run"


@pytest.fixture
def recorded_run(tmp_path) -> RunPaths:
    """A copy of tests/pipeline/data/smoke_run (made by ``python -m helpers run`` on the sample corpus,
    eval.json trimmed to one worsened query per set) with its paths pointing at the copy, and its plots."""
    from helpers.core.io import read_json
    from helpers.evaluation.views import save_plots

    root = tmp_path / "smoke"
    for source in RECORDED_RUN.rglob("*.json"):
        target = root / source.relative_to(RECORDED_RUN)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(source.read_text().replace("{run}", str(root)))
    paths = RunPaths(root)
    save_plots(read_json(paths.eval), paths.plots)
    (paths.model).mkdir()
    return paths
