"""The notebooks' Colab install cell: it installs from the one dependency list, what it installs covers what
the notebooks import (themselves and through ``helpers``), and it never installs or upgrades torch."""

from __future__ import annotations

import ast
import shlex
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import nbformat
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from helpers.core import config

ROOT = config.REPO_ROOT
PROJECT = "helpers"
NOTEBOOKS = sorted((ROOT / "notebooks").rglob("[0-9][0-9]_*.ipynb"))
# Modules a notebook may import that no pip install provides: the kit itself, and Colab's own module.
NOT_INSTALLED = {PROJECT, "google"}
VALUED_FLAGS = {"-c", "--constraint", "-r", "--requirement"}
FORBIDDEN_FLAGS = {"-U", "--upgrade", "--upgrade-strategy", "--force-reinstall", "-I", "--ignore-installed"}


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _code(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code"]


def _python(source: str) -> str:
    """The cell without IPython magics and shell lines (``%env``, ``!pip``), which are not Python."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def pip_install_args(source: str) -> list[list[str]]:
    """The arguments after ``install`` of every pip install in a cell: subprocess lists and ``!pip`` lines."""
    commands = [[e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
                for node in ast.walk(ast.parse(_python(source))) if isinstance(node, ast.List)]
    commands += [shlex.split(line.lstrip()[1:]) for line in source.splitlines()
                 if line.lstrip().startswith(("!", "%pip"))]
    return [words[words.index("install") + 1:] for words in commands if "pip" in " ".join(words[:3])
            and "install" in words]


def specs(args: list[str]) -> list[str]:
    """What a pip install's arguments name: packages and paths, without the flags and their values."""
    values = {i + 1 for i, a in enumerate(args) if a in VALUED_FLAGS}
    return [a for i, a in enumerate(args) if not a.startswith("-") and i not in values]


def constraint_files(args: list[str]) -> list[str]:
    """The files a pip install takes its versions from (``-c FILE``)."""
    return [args[i + 1] for i, a in enumerate(args[:-1]) if a in ("-c", "--constraint")]


def local_extras(spec: str) -> list[str] | None:
    """``.[all]`` -> ["all"]; ``.`` -> []; None for a spec that is not this project's folder."""
    path, _, extras = spec.partition("[")
    if path not in (".", "./", str(ROOT)):
        return None
    return [e.strip() for e in extras.rstrip("]").split(",") if e.strip()]


def expand_extras(extras: list[str], optional: dict[str, list[str]]) -> list[Requirement]:
    """The requirements of the project's extras, its self-references (``helpers[llm,eval]``) expanded."""
    out: list[Requirement] = []
    for extra in extras:
        for req in map(Requirement, optional[extra]):
            if canonicalize_name(req.name) == PROJECT:
                out += expand_extras(sorted(req.extras), optional)
            else:
                out.append(req)
    return out


def closure(roots: list[Requirement]) -> set[str]:
    """Every distribution the roots pull in, following the installed packages' own requirements."""
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = list(roots)
    while todo:
        req = todo.pop()
        key = (canonicalize_name(req.name), frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            requires = metadata.requires(req.name) or []
        except metadata.PackageNotFoundError:
            continue  # not installed on this machine (e.g. a platform-specific dependency)
        for sub in map(Requirement, requires):
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in ["", *req.extras]):
                todo.append(sub)
    return {name for name, _ in seen}


def imported_modules(source: str) -> set[str]:
    """Full names of what the code imports (``from helpers.core import config`` gives
    ``helpers.core.config`` too)."""
    names = set()
    for node in ast.walk(ast.parse(_python(source))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
    # importing helpers.rag.chain runs helpers/rag/__init__.py first
    return names | {name.rsplit(".", n)[0] for name in names for n in range(1, name.count(".") + 1)}


def kit_module_file(name: str) -> Path | None:
    """The source file of a module of the kit (``helpers.rag.chain`` -> helpers/rag/chain.py)."""
    path = ROOT.joinpath(*name.split("."))
    return next((f for f in (path.with_suffix(".py"), path / "__init__.py") if f.is_file()), None)


def third_party_imports(sources: list[str]) -> set[str]:
    """Top-level names of the third-party modules the code imports, through the kit's modules it uses
    (imports inside functions included), without the standard library."""
    todo = [name for source in sources for name in imported_modules(source)]
    seen: set[str] = set()
    found: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        top = name.split(".")[0]
        if top != PROJECT:
            found.add(top)
        elif source_file := kit_module_file(name):
            todo += imported_modules(source_file.read_text())
    return found - set(sys.stdlib_module_names)


def installed_by(nb) -> list[Requirement]:
    """What the notebook's setup cell installs, as requirements (the project's extras expanded)."""
    project = _pyproject()
    reqs: list[Requirement] = []
    for spec in (s for args in pip_install_args(nb.cells[1].source) for s in specs(args)):
        extras = local_extras(spec)
        if extras is None:
            reqs.append(Requirement(spec))
        else:
            reqs += [*map(Requirement, project["dependencies"]),
                     *expand_extras(extras, project["optional-dependencies"])]
    return reqs


def test_the_parser_reads_both_kinds_of_install():
    cell = ('import subprocess, sys\nsubprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", '
            '".[all]"], check=True)\n!pip install -q "bm25s>=0.2"\n%pip install openai')
    assert [specs(a) for a in pip_install_args(cell)] == [[".[all]"], ["bm25s>=0.2"], ["openai"]]
    assert constraint_files(["-q", "-c", "constraints.txt", "-e", "."]) == ["constraints.txt"]
    assert specs(["-q", "-c", "constraints.txt", "-e", "."]) == ["."]
    assert local_extras(".[all]") == ["all"] and local_extras(".") == [] and local_extras("openai") is None
    assert third_party_imports(["%matplotlib inline\nimport os\nfrom IPython.display import display"]) \
        == {"IPython"}
    assert {"qdrant_client", "ragas"} <= third_party_imports(["from helpers.rag.scoring import load_systems"])


def test_torch_requirement_keeps_an_installed_torch():
    torch = next(Requirement(d) for d in _pyproject()["dependencies"] if d.startswith("torch"))
    assert all(s.operator == ">=" for s in torch.specifier), "a pin or a cap would replace Colab's torch"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.relative_to(ROOT / "notebooks").as_posix())
def test_install_cell_matches_the_dependency_list(path):
    nb = nbformat.read(path, as_version=4)
    installs = pip_install_args(nb.cells[1].source)
    assert installs, "the setup cell must pip-install the course on Colab"
    project = _pyproject()
    declared = {canonicalize_name(Requirement(d).name)
                for d in [*project["dependencies"], *sum(project["optional-dependencies"].values(), [])]}
    for args in installs:
        assert not FORBIDDEN_FLAGS & {a.split("=")[0] for a in args}, f"{args}: would upgrade Colab's torch"
        assert constraint_files(args) == ["constraints.txt"], f"{args}: must install the locked versions"
        for spec in specs(args):
            extras = local_extras(spec)
            if extras is None:
                name = canonicalize_name(Requirement(spec).name)
                assert name != "torch", "the install cell must keep Colab's torch"
                assert name in declared, f"{name} is installed on Colab but not in pyproject.toml"
            else:
                unknown = set(extras) - set(project["optional-dependencies"])
                assert not unknown, f"extras {sorted(unknown)} are not in pyproject.toml"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.relative_to(ROOT / "notebooks").as_posix())
def test_install_cell_covers_the_notebooks_imports(path):
    nb = nbformat.read(path, as_version=4)
    available = closure(installed_by(nb))
    providers = metadata.packages_distributions()
    for module in sorted(third_party_imports(_code(nb)) - NOT_INSTALLED):
        dists = {canonicalize_name(d) for d in providers.get(module, [])}
        assert dists, f"{module} is imported but no installed distribution provides it"
        assert dists & available, f"{module} ({', '.join(sorted(dists))}) is not installed by the setup cell"
