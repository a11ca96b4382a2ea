"""Errors a user can act on that no library names: the CLI shows them in one line, without a traceback."""

from __future__ import annotations


class FolderBusyError(RuntimeError):
    """A folder the stage needs is held by another process; the message names it and how to free it."""
