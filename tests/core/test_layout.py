"""The package layout: core <- stages (chunking < questions < training < evaluation < rag) <- pipeline <- cli.

Every module under helpers/ is parsed with ``ast``; its imports (at module level and inside functions) make
the graph. Importing ``helpers.a.b`` runs ``helpers/a/__init__.py`` first, so that is an edge too.

Two more rules are read from the same trees: only ``core/config.py`` (``RunPaths``) knows the run folder's
layout, so no other module joins a run artifact's name onto a path or builds one from ``.parent``; and the
environment is read at the edges only (``ENV_EDGES``), which pass the values down.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

HELPERS = Path(__file__).resolve().parents[2] / "helpers"
STAGES = ("chunking", "questions", "training", "evaluation", "rag")
TOP = {"helpers", "helpers.__main__", "helpers.cli", "helpers.doctor"}


def module_files(root: Path = HELPERS) -> dict[str, Path]:
    """Dotted name -> file, for every module and package of helpers/."""
    files = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return files


def imports_of(path: Path) -> list[tuple[int, str, int]]:
    """(line, dotted name, level) of every import in the file; ``from a import b`` gives ``a.b`` and ``a``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, 0) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            found += [(node.lineno, base, node.level)]
            found += [(node.lineno, f"{base}.{alias.name}".lstrip("."), node.level) for alias in node.names]
    return found


def import_graph(root: Path = HELPERS) -> dict[str, set[str]]:
    """Module -> the kit's modules it imports (their packages' ``__init__`` included, not its own)."""
    files = module_files(root)
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        for _, target, level in imports_of(path):
            assert level == 0, f"{path}: relative import; the kit uses absolute imports only"
            if target not in files:
                continue
            parts = target.split(".")
            for n in range(1, len(parts) + 1):
                dep = ".".join(parts[:n])
                if dep != name and not name.startswith(dep + ".") and dep in files:
                    graph[name].add(dep)
    return graph


def layer(module: str) -> tuple[int, str]:
    """(rank, group): core 0, the stages 1..5 in course order, pipeline 6, cli and friends 7."""
    parts = module.split(".")
    if module in TOP:
        return 7, "cli"
    group = parts[1]
    if group == "core":
        return 0, "core"
    if group in STAGES:
        return 1 + STAGES.index(group), group
    if group == "pipeline":
        return 6, "pipeline"
    if group == "testing":
        return 8, "testing"
    raise AssertionError(f"{module} belongs to no layer: put it in core/, a stage, pipeline/ or at the top")


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph.get(v, ()):
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def wrong_way(graph: dict[str, set[str]]) -> list[str]:
    """Imports against the layers: core importing anything above it, a stage importing a later stage, the
    pipeline or the cli, anything but the tests' helpers importing helpers.testing."""
    bad = []
    for module, deps in sorted(graph.items()):
        rank, group = layer(module)
        for dep in sorted(deps):
            dep_rank, dep_group = layer(dep)
            if dep_group == "testing" and group != "testing":
                bad.append(f"{module} -> {dep} (only tests use helpers.testing)")
            elif dep_group != "testing" and dep_rank > rank and group != "testing":
                bad.append(f"{module} ({group}) -> {dep} ({dep_group})")
    return bad


GRAPH = import_graph()


def test_the_graph_sees_known_imports():
    """Not vacuous: edges known to exist are found, function-level ones too."""
    assert "helpers.core.config" in GRAPH["helpers.training.trainer"]  # from helpers.core import config
    assert "helpers.training.dims" in GRAPH["helpers.evaluation.stage"]  # inside dims_for()
    assert "helpers.training" in GRAPH["helpers.evaluation.stage"]  # the package's __init__ runs first
    assert "helpers.pipeline.stages" in GRAPH["helpers.cli"]
    assert len(GRAPH) > 40


def test_no_import_cycles():
    assert cycles(GRAPH) == []


def test_imports_go_one_way():
    assert wrong_way(GRAPH) == []


def test_every_stage_has_one_entry_point_shape():
    """Each stage package exposes ``run(paths, settings)``: the call the pipeline makes."""
    shapes = {stage: list(inspect.signature(importlib.import_module(f"helpers.{stage}").run).parameters)
              for stage in STAGES}
    assert shapes == {stage: ["paths", "settings"] for stage in STAGES}


def test_every_module_has_a_layer():
    for module in GRAPH:
        layer(module)


@pytest.mark.parametrize(("graph", "problem"), [
    ({"helpers.core.a": {"helpers.core.b"}, "helpers.core.b": {"helpers.core.a"}}, "cycle"),
    ({"helpers.core.config": {"helpers.training.trainer"}, "helpers.training.trainer": set()}, "wrong way"),
    ({"helpers.training.x": {"helpers.rag.chain"}, "helpers.rag.chain": set()}, "wrong way"),
    ({"helpers.rag.chain": {"helpers.pipeline.runner"}, "helpers.pipeline.runner": set()}, "wrong way"),
])
def test_the_checks_catch_what_they_are_for(graph, problem):
    assert (cycles(graph) if problem == "cycle" else wrong_way(graph))


# ----------------------------------------------------------------------- the run folder and the environment

PATHS_OWNER = "helpers/core/config.py"
# Names in a run folder (see RunPaths); "model", "pairs" and "cache" are left out: other folders use them too.
RUN_ARTIFACTS = {"chunks.jsonl", "eval.json", "rag_eval.json", "report.md", "report.html", "stages",
                 "llm_cache", "checkpoints", "checkpoints_static", "plots", "embeddings", "rag_answers",
                 "qdrant", "model_static", "train.json"}
# The modules that read environment variables: the command lines, and core modules whose job it is (config:
# KIT_* and the libraries' own variables; console: KIT_VERBOSE; llm: the endpoint; presets: KIT_MODEL).
ENV_EDGES = {"helpers/cli.py", "helpers/training/__main__.py", "helpers/core/config.py",
             "helpers/core/console.py", "helpers/core/llm.py", "helpers/core/presets.py"}


def hand_built_run_paths(source: str, name: str = "<module>") -> list[str]:
    """Where ``source`` joins a run artifact's name onto a path (``x / "chunks.jsonl"``, ``x / "stages/a"``)
    or derives a path from another one's parent (``x.parent / ...``)."""
    found = []
    for node in ast.walk(ast.parse(source, name)):
        if not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div)):
            continue
        right = node.right
        if isinstance(right, ast.Constant) and isinstance(right.value, str) and (
                right.value.split("/")[0] in RUN_ARTIFACTS):
            found.append(f"{name}:{node.lineno}: / {right.value!r} (use RunPaths)")
        if isinstance(node.left, ast.Attribute) and node.left.attr == "parent":
            found.append(f"{name}:{node.lineno}: .parent / ... (use RunPaths)")
    return found


def environment_reads(source: str, name: str = "<module>") -> list[str]:
    """Where ``source`` reads (or writes) the environment: ``os.environ``, ``os.getenv`` (or imported)."""
    found = []
    for node in ast.walk(ast.parse(source, name)):
        if (isinstance(node, ast.Attribute) and node.attr in {"environ", "getenv", "putenv"}
                and isinstance(node.value, ast.Name) and node.value.id == "os"):
            found.append(f"{name}:{node.lineno}: os.{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module == "os" and (
                {a.name for a in node.names} & {"environ", "getenv", "putenv"}):
            found.append(f"{name}:{node.lineno}: from os import ...")
    return found


def relative(path: Path) -> str:
    return path.relative_to(HELPERS.parent).as_posix()


def test_only_run_paths_knows_the_run_folder():
    found = [hit for path in module_files().values() if relative(path) != PATHS_OWNER
             for hit in hand_built_run_paths(path.read_text(), relative(path))]
    assert found == []


def test_the_environment_is_read_at_the_edges_only():
    found = [hit for path in module_files().values() if relative(path) not in ENV_EDGES
             for hit in environment_reads(path.read_text(), relative(path))]
    assert found == []


def test_every_environment_edge_exists():
    assert not ENV_EDGES - {relative(path) for path in module_files().values()}


PLANTED_PATHS = """
from pathlib import Path

def chunks_of(pairs_dir: Path) -> Path:
    return pairs_dir.parent / "chunks.jsonl"

def record(root: Path) -> Path:
    return root / "stages/train.json"
"""
PLANTED_ENV = """
import os
from os import getenv

def profile():
    return os.environ.get("KIT_PROFILE") or getenv("KIT_PROFILE") or os.getenv("X")
"""
CLEAN = """
from helpers.core.config import RunPaths

def chunks_of(paths: RunPaths):
    return paths.chunks, paths.root / "gold_questions.jsonl", paths.model.parent
"""


def test_the_new_checks_catch_what_they_are_for():
    assert len(hand_built_run_paths(PLANTED_PATHS)) == 3  # .parent /, "chunks.jsonl", "stages/..."
    assert len(environment_reads(PLANTED_ENV)) == 3  # os.environ, from os import getenv, os.getenv
    assert hand_built_run_paths(CLEAN) == [] and environment_reads(CLEAN) == []


def test_figures_are_saved_by_one_function():
    """``helpers.core.io.save_figure`` is the only caller of ``savefig``."""
    callers = [relative(path) for path in module_files().values()
               if any(isinstance(node, ast.Attribute) and node.attr == "savefig"
                      for node in ast.walk(ast.parse(path.read_text())))]
    assert callers == ["helpers/core/io.py"]


def test_only_the_edges_quiet_other_libraries():
    """Stages leave the process's logging alone: the CLI and the notebooks' setup call quiet_libraries (alone
    or through kit_lines_only)."""
    quieting = {"quiet_libraries", "kit_lines_only"}
    callers = sorted(relative(path) for path in module_files().values()
                     if any(isinstance(node, ast.Attribute) and node.attr in quieting
                            for node in ast.walk(ast.parse(path.read_text()))))
    assert callers == ["helpers/cli.py", "helpers/core/notebook.py", "helpers/training/__main__.py"]


# Modules whose print() is their output: the command lines, the notebooks' setup and Colab helpers, the
# views that show something in a notebook, and the PDF downloader's warnings on stderr (and its command line).
PRINTERS = ["helpers/chunking/sources.py", "helpers/cli.py", "helpers/core/colab.py",
            "helpers/core/notebook.py", "helpers/doctor.py", "helpers/evaluation/views.py",
            "helpers/rag/views.py", "helpers/training/__main__.py"]


def calls_of(name: str) -> list[str]:
    """The modules that call ``name`` (a function or a method)."""
    return sorted(relative(path) for path in module_files().values()
                  if any(isinstance(node, ast.Call) and name in {getattr(node.func, "id", None),
                                                                 getattr(node.func, "attr", None)}
                         for node in ast.walk(ast.parse(path.read_text()))))


def test_library_modules_log_and_the_edges_print():
    """Library modules log (``logging.getLogger(__name__)``); the edges print and show the kit's lines."""
    assert calls_of("print") == PRINTERS
    edges = set(calls_of("show_messages") + calls_of("kit_lines_only")) - {"helpers/core/console.py"}
    assert sorted(edges) == ["helpers/chunking/sources.py", "helpers/cli.py", "helpers/core/notebook.py",
                             "helpers/training/__main__.py"]

