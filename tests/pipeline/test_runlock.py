"""One run at a time per run folder; a killed run's lock is taken over."""

import os
import signal
import subprocess
import sys

from helpers import cli
from helpers.pipeline.runlock import OWNER_FILE, run_lock

HOLD_LOCK = """
import sys, time
from pathlib import Path
from helpers.pipeline.runlock import run_lock
with run_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_a_second_run_of_the_same_folder_stops_at_once_naming_the_first(tmp_path, capsys):
    with run_lock(tmp_path / "runs" / "r"):
        code = cli.main(["chunk", "--run", "r", "--runs-dir", str(tmp_path / "runs"), "--model", "fallback"])
    out = capsys.readouterr().out
    assert code == 2 and f"is in use by process {os.getpid()}" in out and "another --run name" in out
    assert "Embedding model:" not in out and not (tmp_path / "runs" / "r" / "chunks.jsonl").exists()
    assert not (tmp_path / "runs" / "r" / OWNER_FILE).exists()  # released by the holder


def test_the_lock_of_a_killed_run_is_taken_over(tmp_path, capsys):
    root = tmp_path / "r"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(root)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with run_lock(root):
        assert f'"pid": {os.getpid()}' in (root / OWNER_FILE).read_text()
    out = capsys.readouterr().out
    assert f"the lock left by process {holder.pid}" in out and "is stale" in out
