"""Print Sphinx HTML documentation (Python's, the Linux kernel's) page by page with headless Chromium.

Sphinx writes HTML5, which xml.etree cannot read, so nothing is parsed: the reading order comes from each
page's `<link rel="next">`, and navigation (sidebars, breadcrumbs, footers of the classic and the Read the
Docs themes) is hidden by a stylesheet added to the page's `<head>`, with a `<base>` so its images and
stylesheets resolve in the package's folder. One HTML page gives one PDF. Standard library and
subprocess only (no `helpers` import).
"""

from __future__ import annotations

import html
import re
import tempfile
from pathlib import Path, PurePosixPath

import docbook_pdf as dp

TITLE = re.compile(r"<title>(.*?)</title>", re.IGNORECASE | re.DOTALL)
NAVIGATION = [
    "div.sphinxsidebar", "div.related", "div.footer", "#sidebarbutton", "div.mobile-nav",  # classic
    "nav.wy-nav-side", "nav.wy-nav-top", 'div[role="navigation"]', "footer",  # Read the Docs
]
HIDE_CSS = (
    ", ".join(NAVIGATION) + " { display: none !important; } "
    "div.bodywrapper, section.wy-nav-content-wrap { margin: 0 !important; } "
    "div.body, div.wy-nav-content { max-width: none !important; } "
)


def reading_order(html_dir: Path, start: str) -> list[str]:
    """Return the pages after `start` in reading order, relative to `html_dir`.

    The order follows each page's rel="next" link; a page that is linked but not shipped (Debian leaves
    Python's changelog out) is skipped, and the chain goes on at the page whose rel="prev" names it.
    """
    nexts, prevs = links(html_dir, "next"), links(html_dir, "prev")
    after_missing = {prev: page for page, prev in prevs.items()}
    order: list[str] = []
    name = nexts.get(start)
    while name and name != start and name not in order:
        if (html_dir / name).is_file():
            order.append(name)
        name = nexts.get(name) or after_missing.get(name)
    return order


def links(html_dir: Path, rel: str) -> dict[str, str]:
    """Map every page under `html_dir` to the page its `<link rel=...>` names (both relative paths)."""
    pattern = re.compile(rf'<link\s+rel="{rel}"[^>]*?href="([^"#]+)', re.IGNORECASE)
    found = {}
    for path in html_dir.rglob("*.html"):
        name = path.relative_to(html_dir).as_posix()
        match = pattern.search(path.read_text(encoding="utf-8", errors="replace"))
        if match:
            found[name] = _joined(name, match.group(1))
    return found


def _joined(current: str, href: str) -> str:
    """Resolve `href` against the folder of page `current` (both relative to the documentation root)."""
    parts: list[str] = []
    for part in (PurePosixPath(current).parent / href).parts:
        if part == "..":
            parts.pop()
        elif part != ".":
            parts.append(part)
    return "/".join(parts)


def title_of(page_html: str) -> str:
    """The page's <title>, entities decoded and whitespace collapsed."""
    match = TITLE.search(page_html)
    return " ".join(html.unescape(match.group(1)).split()) if match else ""


def printable(page_html: str, page_dir: Path) -> str:
    """The page with a <base> pointing at its folder and the page and navigation CSS added to <head>."""
    head = (f'<base href="{page_dir.resolve().as_uri()}/">'
            f'<style type="text/css">{dp.PAGE_CSS} {HIDE_CSS}</style>')
    return re.sub(r"<head[^>]*>", lambda m: m.group(0) + head, page_html, count=1, flags=re.IGNORECASE)


def print_page(html_dir: Path, name: str, pdf_path: Path) -> tuple[str, int]:
    """Print one documentation page to `pdf_path`; return its title and page count."""
    source = html_dir / name
    page_html = source.read_text(encoding="utf-8", errors="replace")
    with tempfile.TemporaryDirectory(prefix="corpus-sphinx-") as tmp:
        page = Path(tmp) / "page.html"
        page.write_text(printable(page_html, source.parent), encoding="utf-8")
        dp.print_file(page, pdf_path)
    return title_of(page_html), dp.pdf_pages(pdf_path)
