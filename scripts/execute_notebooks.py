"""Run the course notebooks in order and store their outputs as a learner sees them, without bar residue.

    KIT_PROFILE=smoke python scripts/execute_notebooks.py            # 00-05, then the solutions
    KIT_PROFILE=smoke python scripts/execute_notebooks.py 04 solutions/04   # some of them, in this order
    python scripts/execute_notebooks.py --strip-only                 # only clean the stored outputs

Every notebook runs top to bottom in one runs folder (the learner's), course notebooks first, then their
solutions, and the seconds each took are printed (the instructor guide's machine times come from here).
Progress bars stay live for learners; in stored outputs they are text residue ("Loading PDFs: 0%|"), so
the stream outputs that hold nothing but bars are dropped and bar lines removed from the others.
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

import nbformat

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
COURSE = sorted(NOTEBOOKS.glob("0*.ipynb")) + sorted((NOTEBOOKS / "solutions").glob("0*.ipynb"))
BAR = re.compile(r"\d+%\|")  # tqdm's "  0%|" / "100%|██████████|"


def without_bars(text: str) -> str:
    """``text`` without its progress-bar lines (a bar redraws with carriage returns: each piece counts)."""
    pieces = re.split(r"[\r\n]", text)
    kept = [p for p in pieces if p.strip() and not BAR.search(p)]
    return "".join(line + "\n" for line in kept)


def strip_bars(nb: nbformat.NotebookNode) -> int:
    """Drop progress-bar residue from ``nb``'s outputs (text streams, and the widgets a bar draws in
    Jupyter, stored as their text); return how many outputs changed."""
    changed = 0
    for cell in nb.cells:
        outputs = []
        for out in cell.get("outputs", []):
            shown = out.get("data", {}).get("text/plain", "")
            if out.get("output_type") == "display_data" and BAR.search(shown):
                changed += 1
                continue
            if out.get("output_type") == "stream" and BAR.search(out["text"]):
                changed += 1
                out["text"] = without_bars(out["text"])
                if not out["text"]:
                    continue
            outputs.append(out)
        if cell.cell_type == "code":
            cell.outputs = outputs
    return changed


def execute(path: Path, timeout: int) -> float:
    """Run ``path`` in its own folder and store the outputs; return the seconds it took."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    started = time.perf_counter()
    NotebookClient(nb, timeout=timeout, resources={"metadata": {"path": str(path.parent)}}).execute()
    seconds = time.perf_counter() - started
    strip_bars(nb)
    nbformat.write(nb, path)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="notebooks by number: 03, solutions/03 (default: all)")
    parser.add_argument("--strip-only", action="store_true", help="clean stored outputs, run nothing")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds a cell may take")
    args = parser.parse_args()
    chosen = [p for p in COURSE if not args.names or any(
        p.relative_to(NOTEBOOKS).as_posix().startswith(n) for n in args.names)]
    for path in chosen:
        name = path.relative_to(NOTEBOOKS).as_posix()
        if args.strip_only:
            nb = nbformat.read(path, as_version=4)
            if changed := strip_bars(nb):
                nbformat.write(nb, path)
            print(f"{name:<42} {changed} outputs cleaned")
        else:
            print(f"{name:<42} {execute(path, args.timeout):6.0f} s", flush=True)


if __name__ == "__main__":
    main()
