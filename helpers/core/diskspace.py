"""A full disk, at any stage, becomes one clear message: where, how much is free, about how much is needed.

``ENOSPC`` reaches the kit as an ``OSError``, but torch's serializer reports it as a ``RuntimeError``
(``[enforce fail at inline_container.cc] ... file write failed`` / ``unexpected pos``) and safetensors as
``StorageFull`` and sqlite (Qdrant's local mode) as "database or disk is full": ``is_disk_full`` recognises
them all, also inside exception chains and groups.
"""

from __future__ import annotations

import errno
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
DISK_FULL_TEXTS = ("no space left on device", "storagefull", "file write failed", "unexpected pos",
                   "pytorchstreamwriter failed", "disk quota exceeded",
                   "database or disk is full")  # sqlite, under Qdrant's local mode
MIN_FREE_BYTES = 200 * 2**20  # what any stage needs at least, beside its own estimate


class DiskFullError(RuntimeError):
    """The disk filled up; the message says where, what is free and about what is needed."""

    def __init__(self, path: Path | str, needed_bytes: int | None = None, what: str = "this stage"):
        self.path, self.needed_bytes = Path(path), needed_bytes
        free = free_bytes(self.path)
        need = f"about {human(needed_bytes)} needed for {what}" if needed_bytes else f"more needed for {what}"
        super().__init__(
            f"The disk is full at {self.path}: {human(free)} free, {need}. Free space there, or move the "
            "runs folder to a disk with room (--runs-dir or KIT_RUNS_DIR); finished stages are kept and the "
            "same command continues, incomplete checkpoints are set aside.")


@contextmanager
def disk_full_advice(folder: Path | str, needed_bytes: int | None, what: str) -> Iterator[None]:
    """A full disk inside the block (in whatever form it is reported) becomes :class:`DiskFullError`,
    naming ``folder``."""
    try:
        yield
    except DiskFullError:
        raise
    except Exception as exc:
        if not is_disk_full(exc):
            raise
        raise DiskFullError(folder, needed_bytes, what) from exc


def is_disk_full(exc: BaseException | None) -> bool:
    """True when ``exc``, its causes or the exceptions of a group come from a full disk."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in DISK_FULL_ERRNOS:
            return True
        if any(text in str(current).lower() for text in DISK_FULL_TEXTS):
            return True
        todo += [current.__cause__, current.__context__, *getattr(current, "exceptions", ())]
    return False


def free_bytes(path: Path | str) -> int:
    """Free bytes on the disk holding ``path`` (its nearest existing parent)."""
    path = Path(path).resolve()
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def folder_bytes(paths: list[Path]) -> int:
    """Total size of the files (or folders of files) in ``paths``."""
    total = 0
    for path in paths:
        files = path.rglob("*") if path.is_dir() else [path]
        total += sum(f.stat().st_size for f in files if f.is_file())
    return total


def human(n: int | None) -> str:
    """Bytes as ``512 MB`` / ``1.3 GB``."""
    if n is None:
        return "unknown"
    for unit, size in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"
