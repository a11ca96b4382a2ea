"""Build a 10,000-page folder of real PDFs from three Debian documentation packages, in a fixed order.

1. the PostgreSQL 15 manual (postgresql-doc-15, DocBook XHTML): all of it, grouped and printed exactly as
   `build_manual.py` does (one PDF per chapter, long chapters split at 30,000 characters);
2. the Python 3.11 documentation (python3.11-doc, Sphinx HTML): one PDF per page, in reading order;
3. the Linux 6.1 kernel documentation (linux-doc-6.1, Sphinx HTML): one PDF per page, in reading order;

printed in that order until the folder holds at least --pages pages. Every PDF's name starts with its
position, so the folder read in name order is the reading order, and a slice of it by page count (its
first files up to N pages, see `manifest.json`) is a smaller corpus of the same kind: the first 1,012
pages are the files of `pg15-manual-1000`. Missing packages are installed as root (see
`docbook_pdf.ensure_packages`); a rerun whose manifest records the same settings does nothing unless
--force is given.

    python benchmarks/corpora/build_manuals.py --pages 10000
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import build_manual as pg
import docbook_pdf as dp
import sphinx_pdf

PYTHON_PACKAGE, PYTHON_HTML = "python3.11-doc", Path("/usr/share/doc/python3.11/html")
LINUX_PACKAGE, LINUX_HTML = "linux-doc-6.1", Path("/usr/share/doc/linux-doc-6.1/html")
PACKAGES = [pg.PACKAGE, PYTHON_PACKAGE, LINUX_PACKAGE]


@dataclass
class Document:
    """One PDF to print: its source package, file name, HTML files, and how to print it."""

    package: str
    file: str
    html: list[str]
    write: Callable[[Path], tuple[str, int]]  # prints the PDF at the path; returns (title, pages)


def postgresql_documents() -> Iterator[Document]:
    """The PostgreSQL manual's groups, in reading order, as `build_manual.py` prints them."""
    pages = [pg.read_page(pg.HTML_DIR, name) for name in pg.reading_order(pg.HTML_DIR)]
    stylesheets = pg.stylesheets_of(pg.HTML_DIR)
    for index, group in enumerate(pg.group_pages(pages), start=1):
        def write(path: Path, group: list[pg.Page] = group) -> tuple[str, int]:
            return group[0].title, pg.print_group(group, path, stylesheets)

        yield Document(pg.PACKAGE, "1pg-" + pg.pdf_name(index, group), [p.name for p in group], write)


def sphinx_documents(package: str, html_dir: Path, start: str, prefix: str) -> Iterator[Document]:
    """One document per page of a Sphinx documentation, in reading order after `start`."""
    for index, name in enumerate(sphinx_pdf.reading_order(html_dir, start), start=1):
        def write(path: Path, name: str = name) -> tuple[str, int]:
            return sphinx_pdf.print_page(html_dir, name, path)

        stem = name.removesuffix(".html").replace("/", "_")
        yield Document(package, f"{prefix}{index:04d}-{stem}.pdf", [name], write)


def documents() -> Iterator[Document]:
    """Every document of the corpus in its order: the PostgreSQL manual, then Python's, then Linux's."""
    yield from postgresql_documents()
    yield from sphinx_documents(PYTHON_PACKAGE, PYTHON_HTML, "contents.html", "2py-")
    yield from sphinx_documents(LINUX_PACKAGE, LINUX_HTML, "index.html", "3linux-")


def settings(target_pages: int) -> dict:
    """What the build depends on: the three package versions, Chromium, the page CSS and the options."""
    return dp.build_settings(pg.PACKAGE, target_pages=target_pages, max_group_chars=pg.MAX_GROUP_CHARS,
                             versions={p: dp.package_version(p) for p in PACKAGES},
                             hidden_navigation=sphinx_pdf.HIDE_CSS)


def build(target_pages: int, out_dir: Path, force: bool) -> None:
    """Print documents in order into `out_dir` until they add up to `target_pages` pages."""
    dp.ensure_packages([*dp.TOOL_PACKAGES, *PACKAGES])
    wanted = settings(target_pages)
    if not dp.start_build(out_dir, wanted, force, f">= {target_pages} pages"):
        return
    start = time.monotonic()
    files, total = [], 0
    for doc in documents():
        if total >= target_pages:
            break
        title, n = doc.write(out_dir / doc.file)
        total += n
        files.append({"file": doc.file, "package": doc.package, "title": title, "html": doc.html, "pages": n})
        print(f"{doc.file:60s} {n:4d} pages  (total {total})", flush=True)
    elapsed = time.monotonic() - start
    dp.write_manifest(out_dir, {"settings": wanted, "files": files, "total_pages": total,
                                "pdfs": len(files)})
    print(f"{len(files)} PDFs, {total} pages in {out_dir} ({elapsed:.0f} s)")


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and build the corpus."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=10_000, help="minimum total pages (default 10000)")
    parser.add_argument("--out", type=Path, help="output folder (default data/downloads/bench/manuals-PAGES)")
    parser.add_argument("--force", action="store_true", help="rebuild even when the manifest is up to date")
    args = parser.parse_args(argv)
    build(args.pages, args.out or dp.BENCH_DIR / f"manuals-{args.pages}", args.force)


if __name__ == "__main__":
    main()
