"""Kill the main job anywhere (SIGKILL, also while a checkpoint is written), rerun it, check it recovers;
then break the RAG stage's LLM, disk and Qdrant folder and check each gives one clear line and loses nothing.

    python benchmarks/fault_injection.py [--n 10] [--seed 0] [--budget-s 3600] [--no-rag] [--keep DIR]

A reference run of ``python -m helpers run`` (smoke profile, questions from the loopback fake LLM) gives the
job's length T. Each trial then starts the job in a fresh run folder and SIGKILLs its process group: at a
random time in [1 s, T] (odd trials), or the moment a ``checkpoint-*`` folder without its completion marker
appears, i.e. while the Trainer writes it (even trials). The same command is then rerun to the end, and the
trial passes when the rerun exits 0 with a report, an eval.json that parses, and every stage recorded as done
before the kill skipped ("unchanged since the last run"). Trials stop when ``--budget-s`` is spent; the
table says what each kill hit and what the rerun did. Timings are printed, never asserted.

The RAG faults (``rag_faults``) run ``python -m helpers rag`` (or ``run``) on copies of the reference run:
hanging answers (rc 1, bounded time), failing answers (counted, and only they asked again), the Qdrant folder
held by another process, a full disk in the stage (a small tmpfs, as root) and while writing the report;
after each, the fault is removed and the same command must finish with rc 0.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
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
from helpers.testing.fake_llm import FakeLLM, Reply, default_reply, prompt_of  # noqa: E402
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
    killed: bool = True  # False: the job finished before its kill time (a faster run than the reference)
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


def start(run: str, runs_dir: Path, env: dict, log: Path, command: str = "run",
          options: tuple[str, ...] = ()) -> subprocess.Popen:
    command = [sys.executable, "-m", "helpers", command, "--run", run, "--runs-dir", str(runs_dir),
               "--model", "fallback", "--generator", "llm", *options]
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
    if job.returncode == 0:
        trial.killed = False
    elif job.returncode != -signal.SIGKILL:
        trial.problems += (f"the job failed by itself (rc {job.returncode}) before the kill",)
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


@dataclass
class Fault:
    name: str
    rc: int | None = None
    line: str = "-"
    seconds: float = 0.0
    rerun_rc: int | None = None
    rerun_line: str = "-"
    problems: tuple[str, ...] = ()


ANSWER_MARK = "\n\nQuestion: "  # the RAG answer prompt ends with the question


def run_command(run: str, runs_dir: Path, env: dict, command: str = "rag",
                options: tuple[str, ...] = ()) -> tuple[int, str, float]:
    """Run ``python -m helpers <command>`` on ``run`` to the end: (rc, its output, seconds)."""
    log = runs_dir / f"{run}.{command}.log"
    log.unlink(missing_ok=True)
    started = time.monotonic()
    rc = start(run, runs_dir, env, log, command, options).wait()
    return rc, log.read_text(), time.monotonic() - started


def key_line(out: str, *marks: str) -> str:
    """The first line of ``out`` holding one of ``marks`` (what the user is told), else its last line."""
    lines = out.strip().splitlines()
    return next((line for line in lines for mark in marks if mark in line), lines[-1] if lines else "")


def copy_run(runs_dir: Path, name: str, target: Path | None = None) -> Path:
    """The reference run without its RAG results, answers and index: the rag stage must run again."""
    source, folder = runs_dir / "reference", (target or runs_dir) / name
    left_out = {"qdrant", "rag_answers", "rag_eval.json", "report.md", "report.html", ".run.lock"}

    def ignore(where: str, names: list[str]) -> list[str]:  # at the top and in stages/ only (not pairs/)
        here = Path(where)
        return [n for n in names if (here == source and n in left_out) or (here.name == "stages" and
                                                                           n == "rag.json")]

    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(source, folder, ignore=ignore)
    return folder


def hanging_answers(runs_dir: Path, env: dict, llm: FakeLLM) -> Fault:
    fault = Fault("hanging answers (timeout 1 s, 2 attempts)")
    copy_run(runs_dir, "hang")
    llm.responder = lambda body, attempt: (Reply("late", delay_s=5) if ANSWER_MARK in prompt_of(body)
                                           else default_reply(body, attempt))
    fault.rc, out, fault.seconds = run_command("hang", runs_dir, env, options=(
        "--llm-timeout", "1", "--llm-attempts", "2"))
    fault.line = key_line(out, "Error:")
    if fault.rc != 1 or "produced nothing usable" not in out:
        fault.problems += (f"expected rc 1 and 'produced nothing usable', got rc {fault.rc}",)
    llm.responder = default_reply
    fault.rerun_rc, out, _ = run_command("hang", runs_dir, env)
    fault.rerun_line = key_line(out, "RAG answers")
    if fault.rerun_rc != 0 or "[rag] last run incomplete" not in out or "RAG answers: all" not in out:
        fault.problems += (f"the rerun did not retry and answer everything (rc {fault.rerun_rc})",)
    return fault


def failing_answers(runs_dir: Path, env: dict, llm: FakeLLM) -> Fault:
    fault = Fault("failing answers (HTTP 500 on some questions)")
    copy_run(runs_dir, "flaky")

    def flaky(body: dict, attempt: int) -> Reply:
        prompt = prompt_of(body)
        failing = ANSWER_MARK in prompt and len(prompt.rsplit(ANSWER_MARK, 1)[1]) % 3 == 0
        return Reply("down", status=500) if failing else default_reply(body, attempt)

    llm.responder = flaky
    fault.rc, out, fault.seconds = run_command("flaky", runs_dir, env, options=("--llm-attempts", "2"))
    fault.line = key_line(out, "RAG answers failed")
    failed = re.search(r"(\d+) of (\d+) RAG answers failed", out)
    if fault.rc != 0 or not failed:
        fault.problems += (f"expected rc 0 and a count of failed answers, got rc {fault.rc}",)
    llm.responder = default_reply
    before = llm.count(ANSWER_MARK)
    fault.rerun_rc, out, _ = run_command("flaky", runs_dir, env)
    asked = llm.count(ANSWER_MARK) - before
    fault.rerun_line = f"{asked} answers asked again; " + key_line(out, "RAG answers")
    if fault.rerun_rc != 0 or not failed or not 0 < asked <= int(failed[1]):
        fault.problems += (f"the rerun asked {asked} answers, not just the failed ones",)
    return fault


def busy_qdrant(runs_dir: Path, env: dict) -> Fault:
    fault = Fault("Qdrant folder held by another process")
    folder = copy_run(runs_dir, "busy") / "qdrant"
    folder.mkdir()
    hold = (f"import time\nfrom qdrant_client import QdrantClient\nc = QdrantClient(path={str(folder)!r})\n"
            "print('open', flush=True)\ntime.sleep(600)")
    holder = subprocess.Popen([sys.executable, "-c", hold], stdout=subprocess.PIPE, text=True, env=env)
    try:
        holder.stdout.readline()
        fault.rc, out, fault.seconds = run_command("busy", runs_dir, env)
    finally:
        holder.kill()
        holder.wait()
    fault.line = key_line(out, "Error:")
    if fault.rc != 2 or "is open in another process" not in out or "Traceback" in out:
        fault.problems += (f"expected rc 2 and one clear line, got rc {fault.rc}",)
    fault.rerun_rc, out, _ = run_command("busy", runs_dir, env)
    fault.rerun_line = key_line(out, "RAG answers")
    if fault.rerun_rc != 0:
        fault.problems += (f"the rerun failed (rc {fault.rerun_rc})",)
    return fault


def full_disk(runs_dir: Path, env: dict, command: str) -> Fault:
    """``command`` on a copy of the run in a tmpfs with little room: rc 2 naming that folder; then room is
    made and the same command finishes."""
    fault = Fault(f"disk full in {'the rag stage' if command == 'rag' else 'the report writer'}")
    disk = runs_dir / f"disk-{command}"
    disk.mkdir(exist_ok=True)
    room = 2 * sum(f.stat().st_size for f in (runs_dir / "reference").rglob("*") if f.is_file())
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={room}", "tmpfs", str(disk)],
                      capture_output=True).returncode:
        fault.problems += ("skipped: a tmpfs could not be mounted (needs root)",)
        return fault
    try:
        run = copy_run(runs_dir, "full", disk)
        if command == "run":  # the stages are done: only the report is left to write, on a full disk
            assert run_command("full", disk, env)[0] == 0
            (run / "report.md").unlink()
            (run / "report.html").unlink()
        used = shutil.disk_usage(disk).used
        subprocess.run(["mount", "-o", f"remount,size={used + 64 * 2**10}", str(disk)], check=True)
        fault.rc, out, fault.seconds = run_command("full", disk, env, command)
        fault.line = key_line(out, "Error:")
        if fault.rc != 2 or f"The disk is full at {disk}" not in out or "Traceback" in out:
            fault.problems += (f"expected rc 2 and the full disk named at {disk}, got rc {fault.rc}",)
        subprocess.run(["mount", "-o", f"remount,size={room}", str(disk)], check=True)
        fault.rerun_rc, out, _ = run_command("full", disk, env, command)
        fault.rerun_line = key_line(out, "RAG answers", "Report:")
        if fault.rerun_rc != 0 or not (run / "report.html").is_file():
            fault.problems += (f"the rerun with room failed (rc {fault.rerun_rc})",)
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)
    return fault


def rag_faults(runs_dir: Path, env: dict, llm: FakeLLM) -> list[Fault]:
    """Every RAG-stage and report fault, each on its own copy of the reference run."""
    faults = [hanging_answers(runs_dir, env, llm), failing_answers(runs_dir, env, llm),
              busy_qdrant(runs_dir, env), full_disk(runs_dir, env, "rag"), full_disk(runs_dir, env, "run")]
    for fault in faults:
        print(f"{fault.name}: {'ok' if not fault.problems else 'FAILED: ' + '; '.join(fault.problems)}",
              flush=True)
    return faults


def print_faults(faults: list[Fault]) -> None:
    for f in faults:
        print(f"- {f.name}: rc {f.rc} in {f.seconds:.0f} s, said: {f.line.strip()}\n"
              f"  after the fix: rc {f.rerun_rc}, {f.rerun_line.strip()}"
              + ("" if not f.problems else f"\n  PROBLEMS: {'; '.join(f.problems)}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10, help="kills, alternating mid-checkpoint and random")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budget-s", type=float, default=3600, help="no new kill starts after this")
    parser.add_argument("--keep", type=Path, default=None, help="keep the runs and logs in this folder")
    parser.add_argument("--no-rag", action="store_true", help="leave out the RAG-stage faults")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    began = time.monotonic()
    with FakeLLM(latency_s=0.02) as llm, tempfile.TemporaryDirectory() as tmp:
        runs_dir = args.keep or Path(tmp)
        runs_dir.mkdir(parents=True, exist_ok=True)
        env = os.environ | {"KIT_PROFILE": "smoke", "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1",
                            "KIT_LLM_BASE_URL": llm.base_url, "KIT_LLM_MODEL": "fake", "MPLBACKEND": "Agg",
                            "PYTHONPATH": str(REPO)}
        reference_s, stages = reference_run(runs_dir, env)
        print(f"Reference run: {reference_s:.0f} s ("
              + ", ".join(f"{name} {s:.0f} s" for name, s in stages.items()) + ")", flush=True)
        faults = [] if args.no_rag else rag_faults(runs_dir, env, llm)
        trials: list[Trial] = []
        while sum(t.killed for t in trials) < args.n:
            if time.monotonic() - began > args.budget_s:
                print(f"Budget of {args.budget_s:.0f} s spent: stopping after {len(trials)} trials.")
                break
            kind = "mid-checkpoint" if len(trials) % 2 == 0 else "random"
            trial = run_trial(Trial(f"trial{len(trials)}", kind), runs_dir, env, reference_s, rng)
            trials.append(trial)
            state = "ok" if trial.ok else "FAILED"
            if not trial.killed:
                state = "finished before its kill time, not counted"
            print(f"{trial.name} ({kind}): {state}", flush=True)
    print()
    print_table(trials)
    trials = [t for t in trials if t.killed]
    passed = sum(t.ok for t in trials)
    if faults:
        print("\nRAG-stage and report faults:")
        print_faults(faults)
    faults_ok = sum(not f.problems for f in faults)
    print(f"\n{passed} of {len(trials)} killed runs recovered (N = {len(trials)}); {faults_ok} of "
          f"{len(faults)} faults gave one clear line and recovered; load: {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs; {time.monotonic() - began:.0f} s in all.")
    raise SystemExit(0 if passed == len(trials) and faults_ok == len(faults) else 1)


if __name__ == "__main__":
    main()
