"""One run at a time per run folder: an exclusive lock, and a note naming the process that holds it.

The lock is an OS file lock (``filelock``, ``flock`` on Unix): the system releases it when its process
dies, however it dies, so a killed run's lock is simply taken over by the next run, which says so.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from helpers.core.io import read_json, write_json

logger = logging.getLogger(__name__)

LOCK_FILE = ".run.lock"
OWNER_FILE = ".run.owner.json"


class RunLockedError(RuntimeError):
    """Another process is running the same run folder."""


@contextmanager
def run_lock(root: Path) -> Iterator[None]:
    """Hold the run folder ``root`` for the block; fail at once, naming the holder, if another run has it."""
    from filelock import FileLock, Timeout

    root.mkdir(parents=True, exist_ok=True)
    lock = FileLock(root / LOCK_FILE, timeout=0)
    owner_path = root / OWNER_FILE
    try:
        lock.acquire()
    except Timeout:
        raise RunLockedError(f"The run folder {root} is in use by {_describe(owner_path)}: wait for it to "
                             "finish (or stop it), or give this run another --run name.") from None
    try:
        if owner_path.is_file():
            logger.info(f"Taking over {root}: the lock left by {_describe(owner_path)} is stale (that run "
                        "stopped without releasing it).")
        write_json(owner_path, {"pid": os.getpid(), "host": socket.gethostname(),
                                "command": " ".join(sys.argv), "started": time.strftime("%Y-%m-%dT%H:%M:%S")})
        yield
    finally:
        owner_path.unlink(missing_ok=True)
        lock.release()


def _describe(owner_path: Path) -> str:
    try:
        owner = read_json(owner_path)
    except (OSError, ValueError):
        return "another process"
    return (f"process {owner.get('pid')} on {owner.get('host')} (started {owner.get('started')}: "
            f"{owner.get('command')})")
