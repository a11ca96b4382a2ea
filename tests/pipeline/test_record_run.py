"""scripts/record_run.py writes a finished run as the recorded run: the same files the fixture holds, the run
folder's path as {run}, eval.json's worsened lists cut to one; an unfinished run is refused."""

import importlib.util
import json

import pytest

from helpers.core import config

SCRIPT = config.REPO_ROOT / "scripts" / "record_run.py"
spec = importlib.util.spec_from_file_location("record_run", SCRIPT)
record_run = importlib.util.module_from_spec(spec)
spec.loader.exec_module(record_run)
RECORDED_RUN = record_run.TARGET  # the fixture itself


def test_recording_the_recorded_run_gives_it_back(recorded_run, tmp_path):
    eval_json = json.loads(recorded_run.eval.read_text())
    worsened = eval_json["query_sets"]["gold"]["worsened"]
    eval_json["query_sets"]["gold"]["worsened"] = worsened * 3  # a real run lists more than the fixture keeps
    recorded_run.eval.write_text(json.dumps(eval_json))
    written = record_run.record(recorded_run.root, tmp_path / "fixture")
    assert sorted(p.relative_to(tmp_path / "fixture") for p in written) == sorted(
        p.relative_to(RECORDED_RUN) for p in RECORDED_RUN.rglob("*.json"))
    for path in written:
        recorded = RECORDED_RUN / path.relative_to(tmp_path / "fixture")
        assert json.loads(path.read_text()) == json.loads(recorded.read_text()), path


def test_an_unfinished_run_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="lacks chunks.report.json, .*rag_eval.json"):
        record_run.record(tmp_path, tmp_path / "fixture")
    assert not (tmp_path / "fixture").exists()
