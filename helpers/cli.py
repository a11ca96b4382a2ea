"""Command line: ``python -m helpers run`` runs the whole course headless; one subcommand per stage."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from helpers.core import config, llm, presets
from helpers.core.diskspace import MIN_FREE_BYTES, DiskFullError, is_disk_full
from helpers.core.llm import LLMError
from helpers.pipeline.preflight import (
    check_model_name,
    check_pdfs,
    check_run_name,
    check_writable,
    offline_fallback_warning,
)
from helpers.pipeline.runlock import RunLockedError
from helpers.training.trainer import TrainingError

# Errors a user can act on: one clear line, exit code 2, no stack trace.
USER_ERRORS = (ValueError, FileNotFoundError, LLMError, TrainingError, DiskFullError, RunLockedError, OSError)

DESCRIPTION = """Fine-tune an embedding model on your own PDFs, headless.

  python -m helpers run                 all stages on the sample corpus (offline defaults)
  python -m helpers run --pdfs my_pdfs  the same on your own folder of PDFs
  python -m helpers doctor              what this machine has, and what is missing

Each stage reads the previous stage's artifact from runs/<run>/ and is skipped when its inputs and
settings have not changed, so a killed run continues where it stopped."""


def build_parser() -> argparse.ArgumentParser:
    from helpers.pipeline.stages import STAGE_NAMES

    parser = argparse.ArgumentParser(prog="python -m helpers", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("doctor", help="check Python, packages, device, model hub, LLM and disk")
    run = sub.add_parser("run", help="run every stage in order")
    _add_run_options(run)
    for name in STAGE_NAMES:
        _add_run_options(sub.add_parser(name, help=f"run only the {name} stage"))
    return parser


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pdfs", type=Path, default=config.SAMPLE_CORPUS_DIR,
                   help="folder (or one file) of PDFs (default: the bundled sample corpus)")
    p.add_argument("--model", default=None,
                   help=f"base model: a preset ({', '.join(presets.PRESETS)}), any hub id or a local folder "
                        f"(default: ${presets.MODEL_ENV} or {presets.DEFAULT_PRESET}; offline, hub models "
                        "fall back to the bundled MiniLM, static ones to a distilled static model)")
    p.add_argument("--profile", choices=list(config.PROFILES), default=None,
                   help=f"size of every stage (default: ${config.PROFILE_ENV} or {config.DEFAULT_PROFILE})")
    p.add_argument("--run", default=None,
                   help="run name: artifacts go to <runs-dir>/<run> (default: the profile name)")
    p.add_argument("--runs-dir", type=Path, default=config.RUNS_DIR, help="where runs are written")
    p.add_argument("--generator", choices=["auto", "llm", "offline"], default="auto",
                   help="question generator: the LLM when configured (auto), or force one")
    p.add_argument("--force", action="store_true", help="rerun stages even when nothing changed")
    p.add_argument("--llm-timeout", type=float, default=None, metavar="SECONDS",
                   help=f"seconds per LLM request attempt (default: ${llm.TIMEOUT_ENV} or "
                        f"{llm.DEFAULT_TIMEOUT_S:g})")
    p.add_argument("--llm-attempts", type=int, default=None, metavar="N",
                   help=f"attempts per LLM request, retries included (default: ${llm.ATTEMPTS_ENV} or "
                        f"{llm.DEFAULT_MAX_ATTEMPTS})")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "doctor":
        from helpers.doctor import main as doctor

        return doctor()
    try:
        return _run(args)
    except KeyboardInterrupt:
        print("\nInterrupted: finished stages are kept; run the same command again to continue.")
        return 130
    except Exception as exc:
        if not isinstance(exc, USER_ERRORS) and not is_disk_full(exc):
            raise
        print(f"\nError: {_one_line(exc)}")
        print("Finished stages are kept; fix this and run the same command again.")
        return 2


def _one_line(exc: BaseException) -> str:
    if is_disk_full(exc) and not isinstance(exc, DiskFullError):  # e.g. while writing the report
        exc = DiskFullError(getattr(exc, "filename", None) or config.RUNS_DIR, MIN_FREE_BYTES, "the report")
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _set_llm_limits(args: argparse.Namespace) -> None:
    """--llm-timeout / --llm-attempts reach the stages through the environment, as the profile does."""
    limits = (("--llm-timeout", args.llm_timeout, llm.TIMEOUT_ENV),
              ("--llm-attempts", args.llm_attempts, llm.ATTEMPTS_ENV))
    for flag, value, name in limits:
        if value is not None:
            if value <= 0:
                raise ValueError(f"{flag} must be positive, got {value}.")
            os.environ[name] = str(value)
    llm.llm_settings()  # a malformed value in the environment fails here, before any model loads


def preflight(args: argparse.Namespace) -> None:
    """Paths and names, checked before anything slow starts."""
    if args.command in ("run", "chunk"):
        check_pdfs(args.pdfs)
    check_run_name(args.run)
    check_writable(args.runs_dir)
    check_model_name(args.model)


def _train_summary(summaries: dict[str, dict], settings) -> dict:
    """This run's train summary, or the one recorded by an earlier run of the stage."""
    from helpers.core.io import read_json
    from helpers.pipeline.runner import stage_record

    if "train" in summaries:
        return summaries["train"]
    record = stage_record(settings.paths, "train")
    return read_json(record)["summary"] if record.is_file() else {}


def _run(args: argparse.Namespace) -> int:
    from helpers.core.io import read_json
    from helpers.pipeline.run_report import evaluation_verdicts, write_run_report
    from helpers.pipeline.runlock import run_lock
    from helpers.pipeline.runner import RunSettings, run_all
    from helpers.pipeline.stages import STAGES

    if args.profile:  # stage modules read the profile from the environment too
        os.environ[config.PROFILE_ENV] = args.profile
    _set_llm_limits(args)
    preflight(args)
    settings = RunSettings(pdf_dir=args.pdfs, model_id=args.model, profile=config.get_profile(args.profile),
                           run=args.run, runs_dir=args.runs_dir, generator=args.generator, force=args.force)
    stages = STAGES if args.command == "run" else [s for s in STAGES if s.name == args.command]
    print(f"Run {settings.paths.root} | profile {settings.profile.name} | PDFs {settings.pdf_dir}")
    started = time.perf_counter()
    with run_lock(settings.paths.root):
        summaries = run_all(stages, settings)
        report_md, report_html = write_run_report(settings.paths)
    print(f"\nFinished in {time.perf_counter() - started:.0f} s:")
    if warning := offline_fallback_warning(args.model, _train_summary(summaries, settings)):
        print(f"\n{warning}\n")
    for name, summary in summaries.items():
        state = "skipped (unchanged)" if summary.get("skipped") else f"{summary.get('seconds', 0):.1f} s"
        if summary.get("pending"):
            state += f"; incomplete: {summary['pending']}"
        print(f"  {name:<10} {state}")
    if settings.paths.eval.is_file():
        for line in evaluation_verdicts(read_json(settings.paths.eval)):
            print(line)
    print(f"Report: {report_html}  (and {report_md.name})")
    return 0
