"""The notebooks' Colab install cell: it installs from the one dependency list at the Colab constraints
(never the lock's), what it installs covers what the notebooks import (themselves and through ``helpers``)
with what Colab has, and it never moves a package Colab's runtime runs on (torch, numpy, the kernel)."""

from __future__ import annotations

import ast
import shlex
import socket
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import nbformat
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from helpers.core import colab, config

ROOT = config.REPO_ROOT
PACKAGE = "helpers"  # the import name; pip knows the kit as config.DISTRIBUTION
NOTEBOOKS = sorted((ROOT / "notebooks").rglob("[0-9][0-9]_*.ipynb"))
# Modules a notebook may import that no pip install provides: the kit itself, and Colab's own module.
NOT_INSTALLED = {PACKAGE, "google"}
COLAB_HAS = set(colab.read_pins(colab.COLAB_FREEZE))
VALUED_FLAGS = {"-c", "--constraint", "-r", "--requirement"}
FORBIDDEN_FLAGS = {"-U", "--upgrade", "--upgrade-strategy", "--force-reinstall", "-I", "--ignore-installed"}


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _code(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code"]


def _python(source: str) -> str:
    """The cell without IPython magics and shell lines (``%env``, ``!pip``), which are not Python."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def _commands(source: str) -> list[list[str]]:
    """The commands of a cell: the strings of its lists (``subprocess.run([...])``) and its ``!`` lines."""
    commands = [[e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
                for node in ast.walk(ast.parse(_python(source))) if isinstance(node, ast.List)]
    return commands + [shlex.split(line.lstrip()[1:]) for line in source.splitlines()
                       if line.lstrip().startswith(("!", "%pip"))]


def pip_install_args(source: str) -> list[list[str]]:
    """The arguments after ``install`` of every pip install a cell makes: its subprocess lists and ``!pip``
    lines, and the install of ``python -m helpers.core.colab`` (colab.install_command)."""
    commands = _commands(source)
    if any(words[words.index("-m") + 1:][:1] == [colab.__name__] for words in commands if "-m" in words):
        commands.append(colab.install_command())
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
    """The requirements of the project's extras, its self-references (``<distribution>[llm]``) expanded."""
    out: list[Requirement] = []
    for extra in extras:
        for req in map(Requirement, optional[extra]):
            if canonicalize_name(req.name) == config.DISTRIBUTION:
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
        if top != PACKAGE:
            found.add(top)
        elif source_file := kit_module_file(name):
            todo += imported_modules(source_file.read_text())
    return found - set(sys.stdlib_module_names)


def colab_install_problems(args: list[str]) -> list[str]:
    """What is wrong with a pip install's arguments on Colab: it must take the Colab constraints, and
    neither name torch nor pull in a package Colab's runtime runs on (the Jupyter stack of ``.[all]``)."""
    project = _pyproject()
    declared = {canonicalize_name(Requirement(d).name)
                for d in [*project["dependencies"], *sum(project["optional-dependencies"].values(), [])]}
    problems = [f"{flag}: would upgrade Colab's packages" for flag in FORBIDDEN_FLAGS & {a.split("=")[0]
                                                                                       for a in args}]
    if constraint_files(args) != [colab.COLAB_CONSTRAINTS.name]:
        problems.append(f"takes {constraint_files(args)}, not {colab.COLAB_CONSTRAINTS.name}: the lock's "
                        "versions would replace Colab's kernel, numpy, pandas and torch")
    for spec in specs(args):
        extras = local_extras(spec)
        if extras is None:
            names = [canonicalize_name(Requirement(spec).name)]
            problems += [f"{name} is not in pyproject.toml" for name in names if name not in declared]
        elif unknown := set(extras) - set(project["optional-dependencies"]):
            problems.append(f"extras {sorted(unknown)} are not in pyproject.toml")
            names = []
        else:
            names = [r.name for r in expand_extras(extras, project["optional-dependencies"])]
        problems += [f"{spec} installs {name}, Colab's own" for name in names if colab.is_protected(name)]
    return problems


def pinned_off_colab(pins: dict[str, str], colab_versions: dict[str, str]) -> list[str]:
    """Pins that would move a Colab package the wrong way: a protected one at all, any other down or up a
    major version, unless helpers.core.colab.NEEDED_CHANGES names it."""
    problems = []
    for name, version in sorted(pins.items()):
        if name not in colab_versions or name in colab.NEEDED_CHANGES:
            continue
        old, new = Version(colab.public_version(colab_versions[name])), Version(version)
        if colab.is_protected(name) and new != old:
            problems.append(f"protected {name} {old} -> {new}")
        elif new < old or new.major != old.major:
            problems.append(f"{name} {old} -> {new}")
    return problems


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


def test_the_colab_checks_reject_the_lock_and_a_moved_protected_package():
    problems = colab_install_problems(["-q", "-c", "constraints.txt", "-e", ".[all]"])
    assert any("constraints.txt" in p for p in problems) and any("ipykernel" in p for p in problems)
    assert colab_install_problems(["-c", "constraints-colab.txt", "torch"]) \
        == ["torch installs torch, Colab's own"]
    assert pinned_off_colab({"numpy": "2.4.6", "ipykernel": "7.4.0", "tqdm": "4.60.0", "jiter": "0.14.0"},
                            {"numpy": "2.1.3", "ipykernel": "6.17.1", "tqdm": "4.67.1", "jiter": "0.16.0"}) \
        == ["protected ipykernel 6.17.1 -> 7.4.0", "protected numpy 2.1.3 -> 2.4.6", "tqdm 4.67.1 -> 4.60.0"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.relative_to(ROOT / "notebooks").as_posix())
def test_install_cell_matches_the_dependency_list(path):
    nb = nbformat.read(path, as_version=4)
    installs = pip_install_args(nb.cells[1].source)
    assert installs, "the setup cell must pip-install the course on Colab"
    for args in installs:
        assert not colab_install_problems(args), f"{args}: {colab_install_problems(args)}"


def test_colab_constraints_keep_colab_s_packages():
    assert not pinned_off_colab(colab.read_pins(colab.COLAB_CONSTRAINTS), colab.read_pins(colab.COLAB_FREEZE))


def _pypi_reachable() -> bool:
    try:
        socket.create_connection(("pypi.org", 443), timeout=3).close()
    except OSError:
        return False
    return True


def test_colab_constraints_resolve_for_colab(tmp_path):
    """The resolution-only install check (a few seconds, network): the colab extra, at constraints-colab.txt,
    resolves for Colab's Python with every Colab package in its bounds, to exactly that file's pins."""
    uv = pytest.importorskip("uv", reason="uv is not installed (bash scripts/setup.sh installs it)")
    if not _pypi_reachable():
        pytest.skip("PyPI cannot be reached: the Colab resolution is not checked")
    resolved = colab.resolve(tmp_path, uv.find_uv_bin(), "--constraints", str(colab.COLAB_CONSTRAINTS))
    assert colab.read_pins(resolved) == colab.read_pins(colab.COLAB_CONSTRAINTS), \
        "constraints-colab.txt is stale: bash scripts/lock.sh"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.relative_to(ROOT / "notebooks").as_posix())
def test_install_cell_covers_the_notebooks_imports(path):
    nb = nbformat.read(path, as_version=4)
    available = closure(installed_by(nb)) | COLAB_HAS
    providers = metadata.packages_distributions()
    for module in sorted(third_party_imports(_code(nb)) - NOT_INSTALLED):
        dists = {canonicalize_name(d) for d in providers.get(module, [])}
        assert dists, f"{module} is imported but no installed distribution provides it"
        assert dists & available, f"{module} ({', '.join(sorted(dists))}) is not installed by the setup cell"


def test_the_distribution_is_named_for_the_project_and_installs_the_helpers_package():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["name"] == config.DISTRIBUTION
    assert project["tool"]["setuptools"]["packages"]["find"]["include"] == [f"{PACKAGE}*"]
    for extra, requirements in project["project"]["optional-dependencies"].items():
        assert all(Requirement(r).name != PACKAGE for r in requirements), extra  # not by the old name
