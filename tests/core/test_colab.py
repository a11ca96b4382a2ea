"""helpers.core.colab: nothing happens off Colab; on Colab (a fake google.colab) Drive and uploads
are used."""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import pytest

from helpers.core import colab, config


@pytest.fixture
def restore_runs_dir(monkeypatch):
    """Undo config.set_runs_dir after the test (RUNS_DIR and KIT_RUNS_DIR)."""
    monkeypatch.setattr(config, "RUNS_DIR", config.RUNS_DIR)
    monkeypatch.setenv(config.RUNS_ENV, os.environ.get(config.RUNS_ENV, ""))


@pytest.fixture
def fake_colab(monkeypatch, tmp_path):
    """A google.colab module whose Drive mounts a temporary folder and whose upload returns two files."""
    mounted: list[str] = []

    def mount(where: str) -> None:
        mounted.append(where)
        (Path(where) / "MyDrive").mkdir(parents=True, exist_ok=True)

    def upload() -> dict[str, bytes]:  # like Colab: saves in the working directory, returns name -> bytes
        uploaded = {"policy.pdf": b"%PDF-1.4 fake", "notes.txt": b"not a pdf"}
        for name, data in uploaded.items():
            Path(name).write_bytes(data)
        return uploaded

    module = types.ModuleType("google.colab")
    module.drive = types.SimpleNamespace(mount=mount, mounted=mounted)
    module.files = types.SimpleNamespace(upload=upload)
    monkeypatch.setitem(sys.modules, "google.colab", module)
    monkeypatch.setattr(colab, "DRIVE_MOUNT", tmp_path / "drive")
    return module


def test_off_colab_nothing_happens(monkeypatch, tmp_path, restore_runs_dir, capsys):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    before = config.RUNS_DIR
    assert not colab.on_colab()
    assert colab.persist_runs_on_drive() is None
    assert colab.upload_pdfs(tmp_path / "uploads") is None
    assert before == config.RUNS_DIR and not (tmp_path / "uploads").exists()
    assert capsys.readouterr().out.count("Not on Colab") == 2


def test_drive_moves_the_runs_folder(fake_colab, restore_runs_dir, tmp_path):
    runs = colab.persist_runs_on_drive(folder="kit/runs")
    assert runs == (tmp_path / "drive" / "MyDrive" / "kit" / "runs").resolve() and runs.is_dir()
    assert fake_colab.drive.mounted == [str(tmp_path / "drive")]
    assert runs == config.RUNS_DIR and os.environ[config.RUNS_ENV] == str(runs)
    assert config.run_paths("demo").root == runs / "demo"


def test_upload_keeps_the_pdfs(fake_colab, tmp_path, capsys):
    folder = tmp_path / "my_pdfs"
    cwd = Path.cwd()
    assert colab.upload_pdfs(folder) == folder
    assert sorted(p.name for p in folder.iterdir()) == ["policy.pdf"]
    assert Path.cwd() == cwd
    assert "Skipped notes.txt: not a PDF" in capsys.readouterr().out


def test_upload_of_no_pdf_returns_none(fake_colab, tmp_path):
    fake_colab.files.upload = lambda: {}
    assert colab.upload_pdfs(tmp_path / "my_pdfs") is None


def test_install_runs_once_per_runtime(monkeypatch, capsys):
    runs: list[list[str]] = []
    monkeypatch.setattr(colab.subprocess, "run", lambda cmd, **kw: runs.append(cmd))
    monkeypatch.setattr(colab, "missing_or_different", lambda: ["bm25s"])
    colab.install_kit()
    assert runs == [colab.install_command()] and "-c" in runs[0] and "constraints-colab.txt" in runs[0]
    monkeypatch.setattr(colab, "missing_or_different", lambda: [])
    colab.install_kit()
    assert len(runs) == 1 and "already installed" in capsys.readouterr().out


def test_missing_or_different_names_what_the_colab_constraints_pin_otherwise(monkeypatch, tmp_path):
    pins = tmp_path / "constraints-colab.txt"
    pins.write_text("# header\npackaging==0.0.1\nnot-installed-anywhere==1.0\n")
    monkeypatch.setattr(colab, "COLAB_CONSTRAINTS", pins)
    assert colab.missing_or_different() == ["not-installed-anywhere", "packaging"]


def test_the_resolution_keeps_protected_packages_and_bounds_the_others():
    colab_versions = {"numpy": "2.1.3", "torch": "2.11.0+cu128", "requests": "2.32.4", "jiter": "0.16.0"}
    assert colab.resolution_constraints(colab_versions) \
        == ["numpy==2.1.3", "requests>=2.32.4,<3", "torch==2.11.0"]
    locked = {"jiter": "0.14.0", "bm25s": "0.3.16", "numpy": "2.5.5"}
    assert colab.preferred_versions(colab_versions, locked) == \
        ["bm25s==0.3.16", "jiter==0.14.0", "numpy==2.1.3", "requests==2.32.4", "torch==2.11.0"]
    assert colab.is_protected("Jupyter_Client") and colab.is_protected("nvidia-cudnn-cu12")
    assert not colab.is_protected("sentence-transformers")


def test_on_colab_the_doctor_compares_with_the_colab_install(fake_colab, monkeypatch, tmp_path):
    from helpers import doctor

    pins = tmp_path / "constraints-colab.txt"
    pins.write_text("packaging==0.0.1\n")
    monkeypatch.setattr(colab, "COLAB_CONSTRAINTS", pins)
    check = doctor.lock_check()
    assert "1 differ: packaging" in check.detail and check.fix == doctor.FIX_COLAB
