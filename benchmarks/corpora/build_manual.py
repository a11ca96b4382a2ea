"""Build a folder of real PDFs from the PostgreSQL 15 manual (Debian package postgresql-doc-15).

The manual's HTML is read in reading order (following each page's rel="next" link from index.html),
cut into groups of pages (a chapter, or a run of its sections when the chapter is long), stripped of
navigation bars and tables of contents, and each group is printed to one PDF with headless Chromium.
Groups are printed in reading order until the folder holds at least --pages pages, so the 1000-page
folder is a superset of the 250-page one (same first files).

Missing Debian packages (chromium, poppler-utils, postgresql-doc-15) are installed with
`apt-get install -y` when run as root; otherwise the script exits with the command to run.
A rerun whose manifest.json matches the same settings does nothing unless --force is given.

    python benchmarks/corpora/build_manual.py --pages 250
    python benchmarks/corpora/build_manual.py --pages 1000
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path

import docbook_pdf as dp

PACKAGE = "postgresql-doc-15"
HTML_DIR = Path("/usr/share/doc/postgresql-doc-15/html")
# A new group starts at each of these top-level DocBook divisions; a "part" page is only an introduction,
# so it opens the group of the chapter that follows it.
GROUP_STARTS = {"preface", "part", "chapter", "appendix", "reference", "bibliography"}
SKIPPED = {"book", "index"}  # the title page (a table of contents) and the back-of-book index
MAX_GROUP_CHARS = 30_000  # split a long chapter at page boundaries to stay under this (~10-15 A4 pages)


@dataclass
class Page:
    """One HTML file of the manual, navigation stripped."""

    name: str
    kind: str
    title: str
    body: list = field(repr=False)
    chars: int = 0


def reading_order(html_dir: Path) -> list[str]:
    """Return the HTML file names in reading order, following rel="next" from index.html."""
    order, name = [], "index.html"
    while name and name not in order:
        order.append(name)
        head = dp.load(html_dir / name).find(dp.X + "head")
        nexts = [link.get("href") for link in head if link.tag == dp.X + "link" and link.get("rel") == "next"]
        name = nexts[0] if nexts else None
    return order


def read_page(html_dir: Path, name: str) -> Page:
    """Load one HTML file, strip navigation and tables of contents, and classify its top division."""
    root = dp.load(html_dir / name)
    dp.strip_navigation(root)
    body = dp.content_of(root)
    title = dp.text_of(root.find(f"{dp.X}head/{dp.X}title"))
    chars = sum(len(dp.text_of(e)) for e in body)
    return Page(name=name, kind=body[0].get("class", ""), title=title, body=body, chars=chars)


def group_pages(pages: list[Page], max_chars: int = MAX_GROUP_CHARS) -> list[list[Page]]:
    """Cut the reading order into groups: one per chapter-like division, split before a page that would
    take a group past `max_chars` characters of text (a single longer page stays one group)."""
    groups: list[list[Page]] = []
    for page in pages:
        if page.kind in SKIPPED:
            continue
        follows_part = bool(groups) and [p.kind for p in groups[-1]] == ["part"]
        starts = page.kind in GROUP_STARTS and not follows_part
        full = bool(groups) and sum(p.chars for p in groups[-1]) + page.chars > max_chars
        if not groups or starts or full:
            groups.append([page])
        else:
            groups[-1].append(page)
    return groups


def pdf_name(index: int, group: list[Page]) -> str:
    """Name a group's PDF by its position and first HTML file, e.g. 007-ddl-constraints.pdf."""
    return f"{index:03d}-{Path(group[0].name).stem}.pdf"


def print_group(group: list[Page], pdf_path: Path, stylesheets: list[str]) -> int:
    """Print one group of pages as one PDF; return its page count."""
    body = [elem for page in group for elem in page.body]
    doc = dp.new_document(group[0].title, HTML_DIR, stylesheets, body)
    dp.print_pdf(doc, pdf_path)
    return dp.pdf_pages(pdf_path)


def stylesheets_of(html_dir: Path) -> list[str]:
    """Return the stylesheet hrefs that the manual's pages link (taken from index.html)."""
    head = dp.load(html_dir / "index.html").find(dp.X + "head")
    return [e.get("href") for e in head if e.tag == dp.X + "link" and e.get("rel") == "stylesheet"]


def build(target_pages: int, out_dir: Path, force: bool) -> None:
    """Print groups in reading order into `out_dir` until they add up to `target_pages` pages."""
    dp.ensure_packages([*dp.TOOL_PACKAGES, PACKAGE])
    settings = dp.build_settings(PACKAGE, target_pages=target_pages, max_group_chars=MAX_GROUP_CHARS)
    if not dp.start_build(out_dir, settings, force, f"{settings['version']}, >= {target_pages} pages"):
        return
    start = time.monotonic()
    pages = [read_page(HTML_DIR, name) for name in reading_order(HTML_DIR)]
    stylesheets = stylesheets_of(HTML_DIR)
    files, total = [], 0
    for index, group in enumerate(group_pages(pages), start=1):
        if total >= target_pages:
            break
        name = pdf_name(index, group)
        n = print_group(group, out_dir / name, stylesheets)
        total += n
        files.append({"file": name, "title": group[0].title, "html": [p.name for p in group], "pages": n})
        print(f"{name:48s} {n:4d} pages  (total {total})", flush=True)
    elapsed = time.monotonic() - start
    dp.write_manifest(
        out_dir, {"settings": settings, "files": files, "total_pages": total, "pdfs": len(files)}
    )
    print(f"{len(files)} PDFs, {total} pages in {out_dir} ({elapsed:.0f} s)")


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and build one variant."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pages", type=int, default=250, help="minimum total pages (default 250)")
    parser.add_argument(
        "--out", type=Path, help="output folder (default data/downloads/bench/pg15-manual-<pages>)"
    )
    parser.add_argument("--force", action="store_true", help="rebuild even when the manifest is up to date")
    args = parser.parse_args(argv)
    out_dir = args.out or dp.BENCH_DIR / f"pg15-manual-{args.pages}"
    build(args.pages, out_dir, args.force)


if __name__ == "__main__":
    main()
