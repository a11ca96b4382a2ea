"""Kill the main job anywhere (SIGKILL, also while a checkpoint is written), rerun it, check it recovers.

    python benchmarks/fault_injection.py [--n 6] [--seed 0] [--budget-s 2400] [--reference-s T]

A reference run of ``python -m helpers run`` (smoke profile, questions from the loopback fake LLM) gives the
job's length T. Each trial then starts the job in a fresh run folder and SIGKILLs its process group: at a
random time in [1 s, T] (odd trials), or the moment a ``checkpoint-*`` folder without its completion marker
appears, i.e. while the Trainer writes it (even trials). The same command is then rerun to the end, and the
trial passes when the rerun exits 0 with a report, an eval.json that parses, and every stage recorded as done
before the kill skipped ("unchanged since the last run"). Trials stop when ``--budget-s`` is spent; the
table says what each kill hit and what the rerun did. Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from helpers.pipeline.stages import STAGE_NAMES  # noqa: E402
from helpers.testing.fake_llm import FakeLLM  # noqa: E402
from helpers.training.checkpoints import COMPLETE_MARKER  # noqa: E402

POLL_S = 0.01


@dataclass
class Trial:
    name: str
    kind: str
    killed_at_s: float = 0.0
    running: str = "-"
    done_before: tuple[str, ...] = ()
    rerun_s: float = 0.0
    rerun_rc: int | None = None
    resumed_from: str = "-"
    set_aside: int = 0
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


def start(run: str, runs_dir: Path, env: dict, log: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "helpers", "run", "--run", run, "--runs-dir", str(runs_dir),
               "--model", "fallback", "--generator", "llm"]
    with log.open("a") as out:
        return subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def half_written_checkpoint(run_dir: Path) -> bool:
    """A checkpoint folder the Trainer has started and not finished (no completion marker yet)."""
    return any(folder.is_dir() and not (folder / COMPLETE_MARKER).exists()
               for folder in run_dir.glob("checkpoints*/checkpoint-*"))


def kill_when(process: subprocess.Popen, condition, limit_s: float) -> float:
    """SIGKILL the job's process group once ``condition()`` holds (or after ``limit_s``); seconds waited."""
    started = time.monotonic()
    while process.poll() is None and not condition() and time.monotonic() - started < limit_s:
        time.sleep(POLL_S)
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    return time.monotonic() - started


def run_trial(trial: Trial, runs_dir: Path, env: dict, reference_s: float, rng: random.Random) -> Trial:
    run_dir, log = runs_dir / trial.name, runs_dir / f"{trial.name}.log"
    job = start(trial.name, runs_dir, env, log)
    if trial.kind == "mid-checkpoint":
        trial.killed_at_s = kill_when(job, lambda: half_written_checkpoint(run_dir), 1.5 * reference_s)
    else:
        at = rng.uniform(1.0, reference_s)
        trial.killed_at_s = kill_when(job, lambda: False, at)
    killed_log = log.read_text()
    if job.returncode != -signal.SIGKILL:
        trial.problems += (f"the job ended by itself (rc {job.returncode}) before the kill",)
    running = re.findall(r"^\[(\w+)\] running", killed_log, re.MULTILINE)
    trial.running = running[-1] if running else "startup"
    trial.done_before = tuple(s for s in STAGE_NAMES if (run_dir / "stages" / f"{s}.json").is_file())

    log.write_text(killed_log + "\n===== rerun =====\n")
    started = time.monotonic()
    rerun = start(trial.name, runs_dir, env, log)
    try:
        trial.rerun_rc = rerun.wait(timeout=4 * reference_s)
    except subprocess.TimeoutExpired:
        os.killpg(rerun.pid, signal.SIGKILL)
        trial.problems += ("the rerun did not finish in 4 T",)
    trial.rerun_s = time.monotonic() - started
    out = log.read_text().split("===== rerun =====", 1)[1]
    trial.problems += check_rerun(trial, run_dir, out)
    resumed = re.findall(r"Resuming from \S*/(checkpoints\w*/checkpoint-\d+)", out)
    trial.resumed_from = ", ".join(resumed) or "-"
    trial.set_aside = out.count("was not completely written")
    return trial


def check_rerun(trial: Trial, run_dir: Path, out: str) -> tuple[str, ...]:
    problems = []
    if trial.rerun_rc != 0:
        problems.append(f"rerun rc {trial.rerun_rc}: {out.strip().splitlines()[-1] if out.strip() else ''}")
    report = run_dir / "report.md"
    if not report.is_file() or f"Run report: {trial.name}" not in report.read_text():
        problems.append("no valid report.md")
    if not (run_dir / "report.html").is_file():
        problems.append("no report.html")
    try:
        json.loads((run_dir / "eval.json").read_text())
    except (OSError, ValueError):
        problems.append("eval.json missing or invalid")
    for stage in trial.done_before:
        if f"[{stage}] unchanged since the last run: skipped" not in out:
            problems.append(f"{stage} was complete before the kill and was redone")
    return tuple(problems)


def reference_run(runs_dir: Path, env: dict) -> tuple[float, dict[str, float]]:
    log = runs_dir / "reference.log"
    started = time.monotonic()
    rc = start("reference", runs_dir, env, log).wait()
    seconds = time.monotonic() - started
    if rc != 0:
        raise SystemExit(f"The reference run failed (rc {rc}); see its log:\n{log.read_text()[-3000:]}")
    records = runs_dir / "reference" / "stages"
    return seconds, {s: json.loads((records / f"{s}.json").read_text())["seconds"] for s in STAGE_NAMES}


def print_table(trials: list[Trial]) -> None:
    header = ["trial", "kill", "killed at", "while", "done before", "rerun", "resumed from", "set aside",
              "ok"]
    rows = [[t.name, t.kind, f"{t.killed_at_s:.1f} s", t.running, ",".join(t.done_before) or "-",
             f"{t.rerun_s:.0f} s (rc {t.rerun_rc})", t.resumed_from, str(t.set_aside),
             "yes" if t.ok else "NO: " + "; ".join(t.problems)] for t in trials]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=6, help="kills, alternating mid-checkpoint and random")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budget-s", type=float, default=2400, help="no new trial starts after this")
    parser.add_argument("--reference-s", type=float, default=None,
                        help="the job's length from an earlier reference run (skips the reference run)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the runs and logs in this folder")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    began = time.monotonic()
    with FakeLLM(latency_s=0.02) as llm, tempfile.TemporaryDirectory() as tmp:
        runs_dir = args.keep or Path(tmp)
        runs_dir.mkdir(parents=True, exist_ok=True)
        env = os.environ | {"KIT_PROFILE": "smoke", "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1",
                            "KIT_LLM_BASE_URL": llm.base_url, "KIT_LLM_MODEL": "fake", "MPLBACKEND": "Agg",
                            "PYTHONPATH": str(REPO)}
        if args.reference_s:
            reference_s = args.reference_s
            print(f"Reference run: {reference_s:.0f} s (given)", flush=True)
        else:
            reference_s, stages = reference_run(runs_dir, env)
            print(f"Reference run: {reference_s:.0f} s ("
                  + ", ".join(f"{name} {s:.0f} s" for name, s in stages.items()) + ")", flush=True)
        trials = []
        for i in range(args.n):
            if time.monotonic() - began > args.budget_s:
                print(f"Budget of {args.budget_s:.0f} s spent: stopping after {len(trials)} trials.")
                break
            kind = "mid-checkpoint" if i % 2 == 0 else "random"
            trials.append(run_trial(Trial(f"trial{i}", kind), runs_dir, env, reference_s, rng))
            print(f"trial{i} ({kind}): {'ok' if trials[-1].ok else 'FAILED'}", flush=True)
    print()
    print_table(trials)
    passed = sum(t.ok for t in trials)
    print(f"\n{passed} of {len(trials)} killed runs recovered (N = {len(trials)}); load: "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; {time.monotonic() - began:.0f} s in all.")
    raise SystemExit(0 if passed == len(trials) else 1)


if __name__ == "__main__":
    main()
