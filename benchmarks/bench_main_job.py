"""The main job from nothing to report, per profile: per-stage times, then the same command again.

    python benchmarks/bench_main_job.py [--profiles smoke workshop] [--model fallback]

Each profile runs ``python -m helpers run`` twice in a fresh runs folder: the first run does everything,
the second should find nothing changed and skip every stage. Per-stage times come from the stage records
(``runs/<run>/stages/*.json``), the totals are wall-clock times of the whole command (model loading
included). The targets of the main job are printed beside the numbers; timings are never asserted.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = {"smoke": 5 * 60, "workshop": 25 * 60}
SECOND_RUN_SHARE = 0.10


def run_job(profile: str, runs_dir: Path, model: str) -> float:
    """Wall-clock seconds of one ``python -m helpers run`` (its output goes to runs_dir/<profile>.log)."""
    command = [sys.executable, "-m", "helpers", "run", "--profile", profile, "--runs-dir", str(runs_dir),
               "--model", model]
    started = time.perf_counter()
    with open(runs_dir / f"{profile}.log", "a") as log:
        subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=True,
                       env=os.environ | {"TQDM_DISABLE": "1"})
    return time.perf_counter() - started


def stage_seconds(run_dir: Path) -> dict[str, float]:
    """Seconds each stage took when it last ran, from its record."""
    from helpers.core.io import read_json
    from helpers.pipeline.stages import STAGE_NAMES

    return {name: read_json(run_dir / "stages" / f"{name}.json")["seconds"] for name in STAGE_NAMES}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profiles", nargs="+", default=["smoke"], choices=sorted(TARGET_S))
    parser.add_argument("--model", default="fallback", help="base model (default: the offline fallback)")
    args = parser.parse_args()

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for profile in args.profiles:
            runs_dir = Path(tmp) / profile
            runs_dir.mkdir()
            first = run_job(profile, runs_dir, args.model)
            stages = stage_seconds(runs_dir / profile)
            second = run_job(profile, runs_dir, args.model)
            results[profile] = (stages, first, second)
    _report(results)


def _report(results: dict[str, tuple[dict[str, float], float, float]]) -> None:
    profiles = list(results)
    print("\nseconds        " + "".join(f"{p:>12}" for p in profiles))
    for stage in next(iter(results.values()))[0]:
        print(f"{stage:<15}" + "".join(f"{results[p][0][stage]:>12.1f}" for p in profiles))
    print(f"{'first run':<15}" + "".join(f"{results[p][1]:>12.1f}" for p in profiles))
    print(f"{'target':<15}" + "".join(f"{TARGET_S[p]:>12.1f}" for p in profiles))
    print(f"{'second run':<15}" + "".join(f"{results[p][2]:>12.1f}" for p in profiles))
    print(f"{'second/first':<15}" + "".join(f"{results[p][2] / results[p][1]:>12.1%}" for p in profiles))
    for p in profiles:
        stages, first, second = results[p]
        met = "met" if first < TARGET_S[p] else "missed"
        share_met = "met" if second / first < SECOND_RUN_SHARE else "missed"
        print(f"{p}: {first:.0f} s for a target of {TARGET_S[p]} s ({met}); slowest stage: "
              f"{max(stages, key=stages.get)}; second run {second / first:.1%} of the first "
              f"(target < {SECOND_RUN_SHARE:.0%}: {share_met})")


if __name__ == "__main__":
    main()
