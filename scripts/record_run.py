"""Record a finished run as the tests' and README's reference run (tests/pipeline/data/smoke_run).

    python scripts/record_run.py runs/smoke     # a run folder the main job finished, report included

Copies the run's small JSON records (the chunk, questions and train reports, eval.json, rag_eval.json) with
the run folder's path written as ``{run}`` (the tests put their copy's path back), keeps one worsened
query per query set in eval.json (the report shows the list; the tests need one), and copies the run's
gold plot to the README's picture. Then the README's numbers are quoted from it:
``tests/pipeline/test_readme_numbers.py`` names every one that differs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from helpers.core import config

TARGET = config.REPO_ROOT / "tests" / "pipeline" / "data" / "smoke_run"
RECORDS = ("chunks.report.json", "pairs/report.json", "stages/train.json", "eval.json", "rag_eval.json")
WORSENED_KEPT = 1


def recorded_text(source: Path, run_dir: Path) -> str:
    """``source``'s JSON with the run folder's path as ``{run}``; eval.json's worsened lists cut short."""
    data = json.loads(source.read_text())
    if source.name == "eval.json":
        for query_set in data["query_sets"].values():
            query_set["worsened"] = query_set["worsened"][:WORSENED_KEPT]
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    return text.replace(str(run_dir.resolve()), "{run}")


def record(run_dir: Path, target: Path = TARGET) -> list[Path]:
    """Write every record of ``run_dir`` under ``target``; the paths written."""
    missing = [name for name in RECORDS if not (run_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{run_dir} lacks {', '.join(missing)}: finish the main job there first.")
    written = []
    for name in RECORDS:
        out = target / name
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(recorded_text(run_dir / name, run_dir))
        written.append(out)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    args = parser.parse_args()
    for path in record(args.run_dir):
        print(f"recorded {config.shown(path)}")
    figure_script = config.REPO_ROOT / "scripts" / "readme_figure.py"
    subprocess.run([sys.executable, str(figure_script), str(args.run_dir)], check=True)


if __name__ == "__main__":
    main()
