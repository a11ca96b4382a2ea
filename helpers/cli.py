"""Command line: ``python -m helpers run`` runs the whole course headless; one subcommand per stage."""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path
from typing import TYPE_CHECKING

from helpers.core import config, console, llm, presets
from helpers.core.diskspace import MIN_FREE_BYTES, DiskFullError, disk_full_advice, is_disk_full
from helpers.core.errors import FolderBusyError
from helpers.core.gold import GoldFormatError
from helpers.core.llm import LLMError
from helpers.pipeline.preflight import (
    check_model_name,
    check_pdfs,
    check_run_name,
    check_writable,
    offline_fallback_warning,
)
from helpers.pipeline.runlock import RunLockedError
from helpers.training.result import TrainingError

if TYPE_CHECKING:  # the evaluation package imports tqdm, which must wait for console.set_verbose
    from helpers.evaluation.result import EvalResult

# Errors a user can act on: one clear line, exit code 2, no stack trace.
USER_ERRORS = (ValueError, FileNotFoundError, LLMError, TrainingError, DiskFullError, RunLockedError, OSError,
               FolderBusyError)
# Errors whose every line matters (a gold file's bad lines): shown whole.
WHOLE_MESSAGE_ERRORS = (GoldFormatError,)

DESCRIPTION = """Fine-tune an embedding model on your own PDFs, headless.

  python -m helpers run                 all stages on the course corpus, the Debian FAQ (offline defaults)
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
    _add_gold_commands(sub.add_parser("gold", help="your own gold questions: draft a file, check it"))
    return parser


def _add_gold_commands(gold: argparse.ArgumentParser) -> None:
    actions = gold.add_subparsers(dest="gold_command", required=True)
    draft = actions.add_parser("draft", help="write <run>/gold_questions.jsonl: chunks, empty questions")
    draft.add_argument("-n", type=int, default=40, help="how many chunks to draft questions for (default 40)")
    draft.add_argument("--seed", type=int, default=42)
    draft.add_argument("--force", action="store_true", help="overwrite an existing gold file")
    check = actions.add_parser("check", help="check <run>/gold_questions.jsonl against the run's chunks")
    for p in (draft, check):
        p.add_argument("--run", default=None, help="run name (default: the profile name)")
        p.add_argument("--runs-dir", type=Path, default=config.RUNS_DIR, help="where runs are written")


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pdfs", type=Path, default=config.COURSE_CORPUS_DIR,
                   help="folder (or one file) of PDFs (default: the course corpus, the Debian FAQ)")
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
    p.add_argument("--split", choices=["chunks", "documents"], default="chunks",
                   help="split the questions by chunk (default), or also keep whole documents out of "
                        "training to see how the model does on documents added later (needs 3 or more PDFs)")
    p.add_argument("--force", action="store_true", help="rerun stages even when nothing changed")
    p.add_argument("--llm-timeout", type=float, default=None, metavar="SECONDS",
                   help=f"seconds per LLM request attempt (default: ${llm.TIMEOUT_ENV} or "
                        f"{llm.DEFAULT_TIMEOUT_S:g})")
    p.add_argument("--llm-attempts", type=int, default=None, metavar="N",
                   help=f"attempts per LLM request, retries included (default: ${llm.ATTEMPTS_ENV} or "
                        f"{llm.DEFAULT_MAX_ATTEMPTS})")
    p.add_argument("--verbose", action="store_true",
                   help="show everything the libraries print (load reports, raw metrics, every warning)")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console.show_messages()
    if args.command == "doctor":
        from helpers.doctor import main as doctor

        return doctor()
    try:
        return _gold(args) if args.command == "gold" else _run(args)
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
    if is_disk_full(exc) and not isinstance(exc, DiskFullError):  # outside a stage: where it happened
        exc = DiskFullError(getattr(exc, "filename", None) or config.RUNS_DIR, MIN_FREE_BYTES, "this step")
    text = str(exc).strip()
    if isinstance(exc, WHOLE_MESSAGE_ERRORS):
        return text
    return text.splitlines()[0] if text else type(exc).__name__


def llm_with_limits(args: argparse.Namespace) -> llm.LLMSettings | None:
    """The environment's LLM with --llm-timeout / --llm-attempts applied; a malformed or non-positive value
    fails here, before any model loads."""
    limits = {"timeout_s": ("--llm-timeout", args.llm_timeout),
              "max_attempts": ("--llm-attempts", args.llm_attempts)}
    for flag, value in limits.values():
        if value is not None and value <= 0:
            raise ValueError(f"{flag} must be positive, got {value}.")
    settings = llm.llm_settings()
    given = {field: value for field, (_, value) in limits.items() if value is not None}
    return dataclasses.replace(settings, **given) if settings else None


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


def _gold(args: argparse.Namespace) -> int:
    """``gold draft``: a file of chunks to write questions for; ``gold check``: every bad line, named."""
    from helpers.chunking.chunkers import load_chunks
    from helpers.core.gold import RUN_GOLD_FILENAME, check_gold, draft_questions, write_draft

    paths = config.run_paths(args.run, args.runs_dir)
    if not paths.chunks.is_file():
        raise FileNotFoundError(f"{paths.chunks} is missing: run `python -m helpers chunk` for this run.")
    target = paths.root / RUN_GOLD_FILENAME
    chunks = load_chunks(paths.chunks)
    if args.gold_command == "draft":
        if target.exists() and not args.force:
            raise ValueError(f"{target} exists: check it (`python -m helpers gold check`) or pass --force.")
        rows = draft_questions(chunks, args.n, args.seed)
        write_draft(rows, target)
        documents = len({row["evidence"][0]["document"] for row in rows})
        print(f"Drafted {len(rows)} chunks from {documents} documents: {target}\n"
              "Write one question per line that its passage answers (the \"question\" field; set \"type\" "
              "to keyword, paraphrase or factoid), then run `python -m helpers gold check`. The next "
              "evaluate and rag stages use this file.")
        return 0
    if not target.is_file():
        raise FileNotFoundError(f"{target} is missing: write one with `python -m helpers gold draft`.")
    questions, problems = check_gold(target, chunks)
    if problems:
        print(f"{target}: {len(problems)} line(s) to fix, nothing is used until they are fixed:")
        print("\n".join(f"  {p}" for p in problems))
        return 2
    print(f"{target}: {len(questions)} questions, all with evidence in the chunks. The evaluation uses them.")
    return 0


def _stage_row(name: str, summary: dict, output: Path | None, root: Path) -> list[str]:
    """One line of the final table: the stage, its time (or that it was unchanged), what it wrote."""
    state = "unchanged" if summary.get("skipped") else f"{summary.get('seconds', 0):.1f} s"
    if summary.get("pending"):
        state += f"; incomplete: {summary['pending']}"
    where = output.relative_to(root).as_posix() if output and output.is_relative_to(root) else output
    return [name, state, str(where or "")]


def _print_verdicts(report: EvalResult, run: str) -> None:
    """Per query set: the verdict in words, then fine-tuned vs base nDCG@10 at every dimension; without
    gold questions, why the verdict is weak and how to do better."""
    from helpers.evaluation.result import has_query_set, skipped
    from helpers.evaluation.verdicts import VERDICT_HEADER, verdict_sentences, verdict_sets, verdict_table
    from helpers.pipeline.run_report import write_your_own

    for sentence, query_set in zip(verdict_sentences(report), verdict_sets(report).values(), strict=True):
        print(f"\n{sentence}")
        print(console.table(VERDICT_HEADER, verdict_table(query_set)))
    if skipped(report, "gold") and has_query_set(report, "test"):
        print(f"\n{write_your_own(run)}")


def check_run_gold(paths: config.RunPaths) -> None:
    """A gold file of the run's own with any bad line stops the run before a stage rewrites anything, with
    every bad line named (checked against the chunks when they exist)."""
    from helpers.chunking.chunkers import load_chunks
    from helpers.core.gold import RUN_GOLD_FILENAME, check_gold

    path = paths.root / RUN_GOLD_FILENAME
    if not path.is_file():
        return
    _, problems = check_gold(path, load_chunks(paths.chunks) if paths.chunks.is_file() else None)
    if problems:
        raise GoldFormatError(f"{path}: {len(problems)} line(s) to fix before this run can use it (nothing "
                              "was run; `python -m helpers gold check` checks it again):\n"
                              + "\n".join(f"  {p}" for p in problems))


def _run(args: argparse.Namespace) -> int:
    console.set_verbose(args.verbose)  # first: tqdm, imported below, reads whether to draw bars once
    from helpers.core.settings import RunSettings
    from helpers.evaluation.result import load_result
    from helpers.pipeline.run_report import write_run_report
    from helpers.pipeline.runlock import run_lock
    from helpers.pipeline.runner import run_all
    from helpers.pipeline.stages import STAGES

    llm_settings = llm_with_limits(args)
    preflight(args)
    settings = RunSettings(pdf_dir=args.pdfs, model_id=args.model, profile=config.get_profile(args.profile),
                           run=args.run, runs_dir=args.runs_dir, generator=args.generator, split=args.split,
                           force=args.force, llm=llm_settings)
    stages = STAGES if args.command == "run" else [s for s in STAGES if s.name == args.command]
    print(f"Run {settings.paths.root} | profile {settings.profile.name} | PDFs {settings.pdf_dir}")
    started = time.perf_counter()
    with run_lock(settings.paths.root):  # before the libraries load: a busy folder is said at once
        console.quiet_libraries()
        check_run_gold(settings.paths)
        summaries = run_all(stages, settings)
        with disk_full_advice(settings.paths.root, MIN_FREE_BYTES, "the report"):
            report_md, report_html = write_run_report(settings.paths)
    print(f"\nFinished in {time.perf_counter() - started:.0f} s:")
    if warning := offline_fallback_warning(args.model, _train_summary(summaries, settings)):
        print(f"\n{warning}\n")
    outputs = {stage.name: stage.output(settings.paths) for stage in stages}
    rows = [_stage_row(name, summary, outputs.get(name), settings.paths.root)
            for name, summary in summaries.items()]
    print(console.table(["stage", "time", "output"], rows))
    if settings.paths.eval.is_file():
        _print_verdicts(load_result(settings.paths.eval), settings.paths.root.name)
    print(f"Report: {report_html}  (and {report_md.name})")
    return _failed(summaries)


def _failed(summaries: dict[str, dict]) -> int:
    """1, with the reason, when a stage produced nothing usable (every RAG answer failed); else 0."""
    failed = {name: s["failed"] for name, s in summaries.items() if s.get("failed")}
    for name, reason in failed.items():
        print(f"\nError: the {name} stage produced nothing usable: {reason}. Fix the cause and run the same "
              "command again.")
    return 1 if failed else 0
