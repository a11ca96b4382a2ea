"""The project's own files: dependency list, environment file, notebooks' structure, CI entry point."""

import json
import re
import tomllib
from pathlib import Path

import pytest

from helpers import config

ROOT = config.REPO_ROOT
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_known_incompatibilities_are_pinned():
    extras = _pyproject()["project"]["optional-dependencies"]
    rag = " ".join(extras["rag"])
    assert "ragas==0.4.3" in rag and "langchain-community<0.4" in rag and "rapidfuzz" in rag
    assert any(d.startswith("accelerate") for d in _pyproject()["project"]["dependencies"])


def test_environment_yml_installs_from_the_one_list():
    text = (ROOT / "environment.yml").read_text()
    assert re.search(r'-e "\.\[dev\]"', text), "environment.yml must install the package's own list"
    assert "python=3.11" in text


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "bash scripts/test.sh" in readme and "bash scripts/run.sh" in readme
    assert "bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text()


def test_notebooks_exist_in_order():
    numbers = [int(p.name[:2]) for p in NOTEBOOKS]
    assert numbers == list(range(len(numbers))) and numbers


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_valid_and_follows_the_conventions(path: Path):
    import nbformat

    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# ")
    assert config.COLAB_BADGE_PREFIX + path.name in first.source, "Colab badge with the repository's URL"
    setup = nb.cells[1].source
    assert "google.colab" in setup and f"github.com/{config.KIT_REPO}" in setup
    assert "torch" not in setup.split("pip", 1)[-1], "the Colab install must keep Colab's torch"
    assert any("show_setup()" in c.source for c in nb.cells if c.cell_type == "code")
    assert any("Exercise" in c.source for c in nb.cells if c.cell_type == "markdown")
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors, "a stored error output"
    assert not any(len(c.source.splitlines()) > 20 for c in nb.cells if c.cell_type == "code"), \
        "a code cell longer than ~15 lines belongs in helpers"
    json.dumps(nb)
