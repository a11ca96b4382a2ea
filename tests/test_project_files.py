"""The project's own files: dependency list, environment file, notebooks' structure, CI entry point."""

import itertools
import json
import re
import tomllib
from pathlib import Path

import pytest

from helpers.core import config

ROOT = config.REPO_ROOT
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SOLUTIONS = sorted((ROOT / "notebooks" / "solutions").glob("[0-9][0-9]_solutions.ipynb"))
EXERCISE = re.compile(r"^### Exercise (\d+) \((predict before you run|hands-on)[^)]*\)", re.M)


def solutions_of(chapter: Path) -> Path:
    """Where the runnable solutions of a chapter's exercises live."""
    return ROOT / "notebooks" / "solutions" / f"{chapter.name[:2]}_solutions.ipynb"


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


def _assert_opening(nb, badge_target: str) -> None:
    """Title with the Colab badge, the Colab-only setup cell that keeps Colab's torch, then show_setup()."""
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# ")
    assert config.COLAB_BADGE_PREFIX + badge_target in first.source, "Colab badge with the repository's URL"
    setup = nb.cells[1].source
    assert "google.colab" in setup and f"github.com/{config.KIT_REPO}" in setup
    assert '"-m", "helpers.core.colab"' in setup, "the Colab install, which keeps Colab's torch"
    assert any("show_setup()" in c.source for c in nb.cells if c.cell_type == "code")


def _assert_valid_and_short(nb) -> None:
    import nbformat

    nbformat.validate(nb)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors, "a stored error output"
    assert not any(len(c.source.splitlines()) > 20 for c in nb.cells if c.cell_type == "code"), \
        "a code cell longer than ~15 lines belongs in helpers"
    json.dumps(nb)


def _markdown(nb) -> str:
    return "\n\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_valid_and_follows_the_conventions(path: Path):
    import nbformat

    nb = nbformat.read(path, as_version=4)
    _assert_opening(nb, path.name)
    assert any("Exercise" in c.source for c in nb.cells if c.cell_type == "markdown")
    assert any("persist_runs_on_drive" in c.source for c in nb.cells[:5]), "the Drive cell, before any work"
    _assert_valid_and_short(nb)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_exercises_are_marked_and_each_has_a_solution(path: Path):
    import nbformat

    nb = nbformat.read(path, as_version=4)
    markdown = _markdown(nb)
    exercises = EXERCISE.findall(markdown)
    for cell, after in itertools.pairwise(nb.cells):
        if cell.cell_type == "markdown" and (match := EXERCISE.match(cell.source)):
            assert "<details>" not in cell.source, f"exercise {match[1]}: the solution follows the try cell"
            assert after.cell_type == "code" and after.source.startswith(f"# Exercise {match[1]}:"), (
                f"exercise {match[1]} has no code cell to try in right after it")
    headed = [c for c in nb.cells if c.cell_type == "markdown" and EXERCISE.match(c.source)]
    assert len(headed) == len(exercises), "one exercise per markdown cell"
    assert 2 <= len(exercises) <= 4, "2-4 exercises headed '### Exercise N (predict before you run|hands-on)'"
    assert [int(n) for n, _ in exercises] == list(range(1, len(exercises) + 1))
    assert {kind for _, kind in exercises} == {"predict before you run", "hands-on"}
    solutions = solutions_of(path)
    assert solutions.is_file(), f"no solutions notebook {solutions.relative_to(ROOT)}"
    link = f"(solutions/{solutions.name})"
    blocks = re.findall(r"<details><summary>Solution</summary>(.*?)</details>", markdown, re.S)
    assert len(blocks) == len(exercises) and all(link in b for b in blocks), "each Solution links its code"
    cells = nbformat.read(solutions, as_version=4).cells
    for number, _ in exercises:
        start = next((i for i, c in enumerate(cells) if c.cell_type == "markdown"
                      and c.source.startswith(f"## Exercise {number} ")), None)
        assert start is not None, f"{solutions.name} has no '## Exercise {number}' section"
        section = itertools.takewhile(lambda c: not c.source.startswith("## Exercise"), cells[start + 1:])
        assert any(c.cell_type == "code" for c in section), f"exercise {number} has no solution code"


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_solutions_notebook_follows_the_conventions(path: Path):
    import nbformat

    nb = nbformat.read(path, as_version=4)
    chapters = [c for c in NOTEBOOKS if solutions_of(c) == path]
    assert len(chapters) == 1, "a solutions notebook belongs to one chapter"
    _assert_opening(nb, f"solutions/{path.name}")
    assert nb.cells[1].source == nbformat.read(chapters[0], as_version=4).cells[1].source, \
        "the chapter's own setup cell"
    _assert_valid_and_short(nb)


def test_solutions_run_after_the_chapters():
    """pytest collects notebooks/ in name order: chapters first, then solutions/, in one KIT_RUNS_DIR."""
    assert SOLUTIONS and all(p.name < "solutions" for p in NOTEBOOKS)
    assert "tests notebooks" in (ROOT / "scripts" / "test.sh").read_text()


def test_readme_links_are_made_from_the_one_repository():
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"https://(?:colab\.research\.google\.com/)?github(?:\.com)?/[^)\s]+", readme)
    assert len(links) == len(NOTEBOOKS) + len(SOLUTIONS)
    assert all(link.startswith(config.COLAB_BADGE_PREFIX) for link in links), \
        "a link to another repository than config.KIT_REPO: python scripts/set_repo.py OWNER/NAME"


def test_set_repo_rewrites_the_links_and_nothing_else():
    import importlib.util

    spec = importlib.util.spec_from_file_location("set_repo", ROOT / "scripts" / "set_repo.py")
    set_repo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(set_repo)
    text = ('KIT_REPO = "a/kit"\n[badge](https://colab.research.google.com/github/a/kit/blob/main/x.ipynb)\n'
            'repo_url = "https://github.com/a/kit"\nsee https://github.com/a/kit-tools')
    assert set_repo.repoint(text, "a/kit", "me/fork") == text.replace("a/kit", "me/fork", 3)


@pytest.mark.parametrize("path", NOTEBOOKS + SOLUTIONS, ids=lambda p: p.name)
def test_stored_outputs_read_as_a_learner_sees_them(path: Path):
    """No progress-bar residue, no absolute path of the machine that ran them (see
    scripts/execute_notebooks.py)."""
    import nbformat

    texts = ["".join(out.get("text", "")) + str(out.get("data", {}).get("text/plain", ""))
             for cell in nbformat.read(path, as_version=4).cells for out in cell.get("outputs", [])]
    assert not [t for t in texts if re.search(r"\d+%\|", t)], "progress-bar residue in stored outputs"
    assert not [t for t in texts if re.search(r"(/work|/home|/root|/content|/Users)/\S*runs/", t)], (
        "an absolute runs path in stored outputs: print config.shown(path)")
