"""What the terminal shows: the kit's own lines, one progress bar per long step, quiet libraries.

Library modules log their lines (``logging.getLogger(__name__)``); the edges (the CLI, the notebooks'
``show_setup``) call ``show_messages`` so that those lines read in the terminal and under a notebook cell as
plain text, as if printed.

The Hugging Face libraries report every model load ("LOAD REPORT" tables), every shard written and every
dataset saved; ``quiet_libraries`` lowers their loggers to errors and turns their progress bars off, so
errors still show and the kit's own bars (tqdm) stay. ``KIT_VERBOSE=1`` (the CLI's ``--verbose``) leaves
everything as the libraries print it.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings

VERBOSE_ENV = "KIT_VERBOSE"
NOISY_LOGGERS = ("transformers", "sentence_transformers", "datasets", "huggingface_hub", "accelerate",
                 "torch.distributed", "model2vec")
# Loggers whose errors the kit already counts and reports in words: RAGAS logs every judge reply it cannot
# parse as an error, and the kit counts each as a failed score (rag_eval.json, the report's RAG table).
COUNTED_ELSEWHERE = ("ragas.prompt",)
# Warnings the kit has checked and that need no action from the user (regular expressions on the message).
HARMLESS_WARNINGS = (
    r".*`resume_download` is deprecated.*",
    r".*TRANSFORMERS_CACHE.*",
    r".*pin_memory.*no accelerator is found.*",
    r".*Was asked to gather along dimension 0.*",
)


class _Stdout(logging.StreamHandler):
    """Writes to whatever ``sys.stdout`` is when a line is logged: a notebook's cell, pytest's capture."""

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, _value) -> None:
        pass


def show_messages() -> None:
    """Show the kit's logged lines on stdout, message only (once per process, however often called)."""
    kit = logging.getLogger("helpers")
    if not any(isinstance(h, _Stdout) for h in kit.handlers):
        handler = _Stdout()
        handler.setFormatter(logging.Formatter("%(message)s"))
        kit.addHandler(handler)
    kit.setLevel(logging.INFO)
    kit.propagate = False


def kit_lines_only() -> None:
    """An edge's console: the kit's logged lines on stdout (``show_messages``), the libraries quiet
    (``quiet_libraries``)."""
    show_messages()
    quiet_libraries()


def verbose() -> bool:
    """True when the user asked to see everything (``KIT_VERBOSE`` set to anything but 0/empty)."""
    return os.environ.get(VERBOSE_ENV, "").strip().lower() not in {"", "0", "false", "no"}


def set_verbose(on: bool) -> None:
    """Show everything (``on``) or the kit's own lines only, here and in the processes this one starts
    (progress bars then only in a terminal). Call it before anything imports tqdm, which reads its
    settings once; ``quiet_libraries`` then lowers the libraries' own output when they are loaded."""
    os.environ[VERBOSE_ENV] = "1" if on else "0"
    bars_in_terminals_only()


def no_usage_tracking() -> None:
    """Ask ragas not to post usage events (``RAGAS_DO_NOT_TRACK``, unless the user set it)."""
    os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")


def quiet_libraries() -> None:
    """Lower the Hugging Face libraries' loggers to errors and hide their progress bars (not in verbose)."""
    if verbose():
        return
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    for name in COUNTED_ELSEWHERE:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    for pattern in HARMLESS_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    _quiet_transformers()
    _quiet_datasets()


def _quiet_transformers() -> None:
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        return
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()  # "Writing model shards", "Loading weights"


def _quiet_datasets() -> None:
    try:
        import datasets
    except ImportError:
        return
    datasets.disable_progress_bars()  # "Saving the dataset (1/1 shards)", "Map"
    datasets.logging.set_verbosity_error()


def bars_in_terminals_only() -> None:
    """Progress bars where someone watches them: in a terminal; in a log file or a pipe every redraw would be
    a line of its own (hundreds per run), so there tqdm is off and the kit's own lines tell what happens.
    ``TQDM_DISABLE=0`` or ``--verbose`` keeps them."""
    if not sys.stderr.isatty() and not verbose():
        os.environ.setdefault("TQDM_DISABLE", "1")


def table(header: list[str], rows: list[list[str]]) -> str:
    """A plain-text table with aligned columns, indented by two spaces."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  " + "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])
