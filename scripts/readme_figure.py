"""Copy a finished run's nDCG@10-vs-dimension plot to docs/images/ndcg_vs_dim.png, the README's picture.

    python scripts/readme_figure.py runs/workshop    # a run folder (default: the current profile's)

It takes the plot of the hand-written gold questions when the run has one (else the synthetic test set's)
and prints what the picture shows, for the caption.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from helpers.core import config
from helpers.core.io import read_json
from helpers.evaluation.systems import HEADLINE

TARGET = config.REPO_ROOT / "docs" / "images" / "ndcg_vs_dim.png"
QUERY_SETS = ("gold", "test")  # hand-written questions first


def find_plot(run_dir: Path) -> Path:
    """The run's metric-vs-dimension plot (as ``evaluate_run`` saves it), gold questions first."""
    stem = f"{HEADLINE.replace('@', '_at_')}_vs_dim"
    for name in QUERY_SETS:
        path = run_dir / "plots" / f"{stem}_{name}.png"
        if path.is_file():
            return path
    raise FileNotFoundError(f"No {stem}_*.png in {run_dir / 'plots'}: finish the run's evaluate stage first "
                            "(python -m helpers run, or notebook 04).")


def caption(run_dir: Path) -> str:
    """Profile and models of the run, from its eval.json."""
    report = read_json(run_dir / "eval.json")
    systems = [f"{name}: {s.get('loaded') or s.get('model')}" for name, s in report["systems"].items()]
    return f"profile {report['profile']}; " + "; ".join(systems)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path, nargs="?", default=config.RUNS_DIR / config.get_profile().name,
                        help="a finished run folder (default: runs/<profile>)")
    parser.add_argument("--out", type=Path, default=TARGET, help=f"where to copy it (default: {TARGET})")
    args = parser.parse_args(argv)
    try:
        plot = find_plot(args.run_dir)
    except FileNotFoundError as exc:
        print(f"Error: {exc}")
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(plot, args.out)
    print(f"Copied {plot} -> {args.out}\nIt shows: {caption(args.run_dir)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
