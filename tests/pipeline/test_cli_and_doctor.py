import sqlite3
import subprocess
import sys

import pytest

from helpers import cli, doctor
from helpers.core import lockfile
from helpers.core.config import REPO_ROOT
from helpers.pipeline.stages import STAGE_NAMES


def test_help_lists_every_stage():
    out = subprocess.run([sys.executable, "-m", "helpers", "--help"], capture_output=True, text=True,
                         check=True).stdout
    for name in ["doctor", "run", *STAGE_NAMES]:
        assert name in out


def test_run_options_parse():
    args = cli.build_parser().parse_args(
        ["run", "--pdfs", "x", "--model", "fallback", "--profile", "workshop", "--run", "r1", "--force"])
    assert (str(args.pdfs), args.model, args.profile, args.run, args.force) == (
        "x", "fallback", "workshop", "r1", True)


def test_bad_profile_is_refused():
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["run", "--profile", "huge"])


def test_doctor_passes_here_and_never_prints_the_key(monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-123")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert doctor.main() == 0
    out = capsys.readouterr().out
    assert "sk-test-secret-123" not in out
    assert "offline fallback model" in out and "HF_HUB_OFFLINE" in out


def test_doctor_names_the_fix_for_a_missing_package(monkeypatch, capsys):
    monkeypatch.setattr(doctor, "REQUIRED_PACKAGES", (*doctor.REQUIRED_PACKAGES, "no-such-package-xyz"))
    assert doctor.main() == 1
    out = capsys.readouterr().out
    assert "[ERR] no-such-package-xyz" in out and "scripts/setup.sh" in out


def test_doctor_reports_packages_installed_at_another_version_than_locked(monkeypatch, tmp_path, capsys):
    pins = tmp_path / "constraints.txt"
    pins.write_text("packaging==0.0.1\n")
    monkeypatch.setattr(lockfile, "CONSTRAINTS_FILE", pins)
    assert doctor.main() == 0  # a difference is a warning, not a failure
    line = next(x for x in capsys.readouterr().out.splitlines() if "locked versions" in x)
    assert "1 differ: packaging" in line and "(lock 0.0.1)" in line and "constraints.txt" in line


def test_folder_without_readable_pdfs_is_one_clear_error(tmp_path, capsys):
    (tmp_path / "pdfs").mkdir()
    (tmp_path / "pdfs" / "notes.pdf").write_text("not a pdf")
    code = cli.main(["chunk", "--pdfs", str(tmp_path / "pdfs"), "--runs-dir", str(tmp_path / "runs"),
                     "--model", "fallback"])
    out = capsys.readouterr().out
    assert code == 2
    assert "Error: No text could be loaded" in out and "notes.pdf: not a PDF" in out


def test_missing_model_folder_is_one_clear_error(tmp_path, capsys):
    code = cli.main(["chunk", "--model", str(tmp_path / "no-model"), "--runs-dir", str(tmp_path / "runs")])
    assert code == 2
    assert "does not exist" in capsys.readouterr().out


def test_full_disk_becomes_advice():
    import errno

    assert "disk is full" in cli._one_line(OSError(errno.ENOSPC, "No space left on device"))


TORCH_DISK_FULL = ("[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed writing file "
                   "data/0: file write failed")


@pytest.mark.parametrize("error", [OSError(28, "No space left on device", "chunks.jsonl"),
                                   RuntimeError(TORCH_DISK_FULL),
                                   sqlite3.OperationalError("database or disk is full")])  # Qdrant, local
def test_full_disk_at_any_stage_names_the_space_needed(tmp_path, monkeypatch, capsys, error):
    from helpers.pipeline import stages

    def full(paths, settings):
        raise error

    monkeypatch.setattr(stages, "STAGES", [stages.Stage("chunk", lambda s: [s.pdf_dir], lambda p: p.chunks,
                                                        full, lambda s: {})])
    assert cli.main(["chunk", "--runs-dir", str(tmp_path / "runs"), "--model", "fallback"]) == 2
    out = capsys.readouterr().out
    assert "Error: The disk is full at" in out and "free, about" in out
    assert "needed for the chunk stage" in out
    assert "Traceback" not in out


def test_training_advice_is_one_clear_error_not_a_traceback(monkeypatch, capsys):
    from helpers.training.result import TrainingError

    def out_of_memory(args):
        raise TrainingError("Out of GPU memory. Try batch_size=16.")

    monkeypatch.setattr(cli, "_run", out_of_memory)
    assert cli.main(["train"]) == 2
    out = capsys.readouterr().out
    assert "Error: Out of GPU memory. Try batch_size=16." in out and "Traceback" not in out


def test_final_summary_says_whether_fine_tuning_helped(tmp_path, monkeypatch, capsys):
    from helpers.core import config
    from helpers.core.io import write_json
    from helpers.pipeline import run_report
    from helpers.pipeline import runner as pipeline

    monkeypatch.setattr(pipeline, "run_all", lambda stages, settings: {"evaluate": {"seconds": 1.5}})
    monkeypatch.setattr(run_report, "write_run_report",
                        lambda paths: (paths.root / "report.md", paths.root / "report.html"))
    tests = [{"a": "base", "dim": "384", "mean_diff": -0.001, "ci_low": -0.02, "ci_high": 0.02,
              "p_value": 0.8, "detectable_diff": 0.031, "n_queries": 40},
             {"a": "base", "dim": "64", "mean_diff": 0.1, "ci_low": 0.06, "ci_high": 0.14, "p_value": 0.001,
              "detectable_diff": 0.052, "n_queries": 40}]
    metrics = {s: {d: {"ndcg@10": {"mean": m}} for d, m in (("384", 0.8), ("64", 0.7))}
               for s in ("base", "fine-tuned")}
    write_json(config.run_paths("r", tmp_path).eval,
               {"query_sets": {"gold": {"verdict": "no clear difference", "paired_tests": tests,
                                        "n_queries": 40, "metrics": metrics}}})

    assert cli.main(["evaluate", "--runs-dir", str(tmp_path), "--run", "r"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert ["evaluate", "1.5", "s", "eval.json"] in [line.split() for line in lines]
    assert ("Fine-tuned vs base on the gold questions (40): no clear difference at 384 dims; helped at 64 "
            "dims. With 40 questions a change smaller than 0.052 nDCG@10 at 64 dims would go unseen (80% "
            "power).") in lines
    assert ["64", "0.700", "0.700", "+0.100", "+0.060", "to", "+0.140", "0.052", "helped"] in [
        line.split() for line in lines]


def test_gold_draft_then_check_names_the_empty_questions_until_they_are_written(tmp_path, capsys):
    import json

    from helpers.chunking.chunkers import save_chunks
    from helpers.core import config
    from helpers.testing.chunks import sample_chunks

    paths = config.run_paths("r", tmp_path)
    save_chunks(sample_chunks(6), paths.chunks)
    where = ["--runs-dir", str(tmp_path), "--run", "r"]
    assert cli.main(["gold", "draft", "-n", "3", *where]) == 0
    gold = paths.root / "gold_questions.jsonl"
    assert "Drafted 3 chunks from 1 documents" in capsys.readouterr().out
    assert cli.main(["gold", "draft", "-n", "3", *where]) == 2  # never overwritten by accident
    capsys.readouterr()

    assert cli.main(["gold", "check", *where]) == 2
    out = capsys.readouterr().out
    assert out.count("empty question") == 3 and "gold_questions.jsonl:3: empty question" in out
    rows = [json.loads(line) for line in gold.read_text().splitlines()]
    gold.write_text("".join(json.dumps(row | {"question": f"What does clause {i} say?"}) + "\n"
                            for i, row in enumerate(rows)))
    assert cli.main(["gold", "check", *where]) == 0
    assert "3 questions, all with evidence in the chunks" in capsys.readouterr().out


def test_doctor_fails_when_the_runs_folder_is_not_writable(monkeypatch, tmp_path, capsys):
    from helpers.core import config

    (tmp_path / "a-file").write_text("")
    monkeypatch.setattr(config, "RUNS_DIR", tmp_path / "a-file" / "runs")  # even root cannot write there
    assert doctor.main() == 1
    out = capsys.readouterr().out
    assert "[ERR] runs folder writable" in out and "KIT_RUNS_DIR" in out


@pytest.mark.parametrize(("options", "message"), [
    (["--pdfs", "no/such/folder"], "--pdfs no/such/folder: no such file or folder"),
    (["--run", "../elsewhere"], "--run '../elsewhere': use letters, digits"),
    (["--model", "not a model!"], "--model 'not a model!' is neither a preset"),
    (["--model", "./no-such-model"], "the model folder does not exist"),
    (["--runs-dir", "{file}/runs"], "is not writable"),
])
def test_paths_and_names_are_checked_before_any_model_loads(tmp_path, capsys, options, message):
    (tmp_path / "a-file").write_text("")
    options = [o.replace("{file}", str(tmp_path / "a-file")) for o in options]
    runs = [] if "--runs-dir" in options else ["--runs-dir", str(tmp_path / "runs")]
    assert cli.main(["run", *runs, *options]) == 2
    out = capsys.readouterr().out
    assert message in out and "Embedding model:" not in out and "Traceback" not in out


def test_an_explicit_model_replaced_by_the_offline_fallback_is_said_loudly(tmp_path, monkeypatch, capsys):
    from helpers.core import config
    from helpers.core.io import write_json
    from helpers.pipeline import run_report
    from helpers.pipeline import runner as pipeline

    fallback = {"is_fallback": True, "base_model": config.FALLBACK_MODEL_NAME, "seconds": 1.0}
    monkeypatch.setattr(pipeline, "run_all", lambda stages, settings: {"train": fallback})
    run = ["train", "--runs-dir", str(tmp_path), "--run", "r"]
    assert cli.main([*run, "--model", "some-org/typo-model"]) == 0
    out = capsys.readouterr().out
    assert "WARNING: --model some-org/typo-model could not be loaded" in out
    assert f"fine-tuned and evaluated {config.FALLBACK_MODEL_NAME} instead" in out

    paths = config.run_paths("r", tmp_path)
    write_json(paths.model / "training_config.json",
               {"base_model": {"requested": "some-org/typo-model", "loaded": config.FALLBACK_MODEL_NAME,
                               "reason": "some-org/typo-model not available offline", "preset": "fallback"}})
    write_json(paths.stage_record("train"), {"summary": fallback})
    report = run_report.write_run_report(paths)[0].read_text()
    headings = [line for line in report.splitlines() if line.startswith("## ")]
    assert headings[0] == "## WARNING: not the model you asked for" and len(headings) > 1
    assert "Asked for some-org/typo-model" in report
    assert cli.main(run) == 0  # the course default falling back offline is the documented behaviour
    assert "WARNING" not in capsys.readouterr().out


def test_the_terminal_verdict_without_gold_questions_names_the_fix(recorded_run, capsys):
    from helpers.cli import _print_verdicts
    from helpers.core.io import read_json

    report = read_json(recorded_run.eval)
    _print_verdicts(report, "smoke")
    assert "rests on synthetic questions" not in capsys.readouterr().out  # gold was there
    report["query_sets"].pop("gold")
    report["skipped_query_sets"] = {"gold": "written for another corpus"}
    _print_verdicts(report, "my_docs")
    out = capsys.readouterr().out
    assert "Fine-tuned vs base on the test questions" in out and "gold draft --run my_docs" in out
    assert "all synthetic" in out and "helped at" not in out.split("\n\n")[1]


def test_a_malformed_run_gold_file_stops_the_run_before_anything_is_rewritten(tmp_path, monkeypatch, capsys):
    import json

    from helpers.chunking.chunkers import save_chunks
    from helpers.core import config
    from helpers.pipeline import runner as pipeline
    from helpers.testing.chunks import sample_chunks

    paths = config.run_paths("r", tmp_path)
    save_chunks(sample_chunks(6), paths.chunks)
    good = {"id": "q1", "question": "How much per night in London?", "type": "factoid", "answerable": True,
            "evidence": [{"document": "handbook.pdf", "quote": "180 pounds per night"}],
            "reference_answer": "180 pounds."}
    lines = [json.dumps(good), "{not json", json.dumps(good | {"id": "q2", "question": ""}),
             *(json.dumps(good | {"id": f"q{i}"}) for i in range(3, 10))]
    (paths.root / "gold_questions.jsonl").write_text("\n".join(lines) + "\n")
    ran = []
    monkeypatch.setattr(pipeline, "run_all", lambda stages, settings: ran.append(1) or {})
    assert cli.main(["run", "--runs-dir", str(tmp_path), "--run", "r"]) == 2
    out = capsys.readouterr().out
    assert "gold_questions.jsonl: 2 line(s) to fix before this run can use it (nothing was run" in out
    assert "gold_questions.jsonl:2: not valid JSON" in out and "gold_questions.jsonl:3: empty question" in out
    assert not ran and "Traceback" not in out


def test_a_full_disk_while_writing_the_report_names_the_runs_folder_in_use(tmp_path, monkeypatch, capsys):
    import errno

    from helpers.pipeline import run_report
    from helpers.pipeline import runner as pipeline

    def full(paths):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pipeline, "run_all", lambda stages, settings: {})
    monkeypatch.setattr(run_report, "write_run_report", full)
    assert cli.main(["evaluate", "--runs-dir", str(tmp_path / "elsewhere"), "--run", "r"]) == 2
    out = capsys.readouterr().out
    assert f"The disk is full at {tmp_path / 'elsewhere' / 'r'}:" in out and "needed for the report" in out


def test_a_stage_that_produced_nothing_usable_fails_the_command_after_the_report(tmp_path, monkeypatch,
                                                                                 capsys):
    from helpers.pipeline import run_report
    from helpers.pipeline import runner as pipeline

    reason = "114 of 114 RAG answers failed (timeout (> 2 s) after 2 attempts: 8, not sent: ...: 106)"
    monkeypatch.setattr(pipeline, "run_all", lambda stages, settings: {
        "rag": {"seconds": 3.0, "pending": reason, "failed": reason}})
    written = []
    monkeypatch.setattr(run_report, "write_run_report", lambda paths: written.append(paths) or (
        paths.root / "report.md", paths.root / "report.html"))
    assert cli.main(["rag", "--runs-dir", str(tmp_path), "--run", "r"]) == 1
    out = capsys.readouterr().out
    assert written and f"Error: the rag stage produced nothing usable: {reason}." in out
    assert "incomplete: 114 of 114 RAG answers failed" in out


def test_a_busy_qdrant_folder_is_one_clear_error(tmp_path, monkeypatch, capsys):
    from helpers.pipeline import runner as pipeline
    from helpers.rag.chain import QdrantFolderBusy

    def busy(stages, settings):
        raise QdrantFolderBusy(settings.paths.qdrant)

    monkeypatch.setattr(pipeline, "run_all", busy)
    assert cli.main(["rag", "--runs-dir", str(tmp_path), "--run", "r"]) == 2
    out = capsys.readouterr().out
    assert f"Error: The Qdrant index folder {tmp_path / 'r' / 'qdrant'} is open in another process" in out
    assert "Traceback" not in out


def test_progress_bars_are_set_before_any_library_draws_one(tmp_path):
    """In a log file (not a terminal) the libraries' bars are off only if that is set before tqdm is first
    imported (it reads its settings once); a stage module imported by the CLI loads tqdm."""
    script = f"""
import sys
from helpers import cli
from helpers.core import console

def record(on):
    print("tqdm loaded before the bars were set:", "tqdm" in sys.modules)
    raise SystemExit(0)

console.set_verbose = record
cli.main(["rag", "--runs-dir", {str(tmp_path)!r}, "--run", "r"])
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO_ROOT,
                          timeout=300)
    assert "tqdm loaded before the bars were set: False" in done.stdout, done.stdout + done.stderr[-2000:]
