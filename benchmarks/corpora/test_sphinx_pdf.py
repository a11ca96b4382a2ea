"""Behaviour of sphinx_pdf's reading order and page preparation (pytest, no Chromium needed)."""

from pathlib import Path

from sphinx_pdf import printable, reading_order, title_of


def page(folder: Path, name: str, prev: str | None, nxt: str | None) -> None:
    """Write a Sphinx-like page with optional rel="prev" / rel="next" links (relative to its folder)."""
    links = "".join(f'<link rel="{rel}" title="x" href="{href}" />'
                    for rel, href in (("prev", prev), ("next", nxt)) if href)
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"<html><head><title>{name} &#8212; Docs</title>{links}</head><body>x</body></html>")


def test_reading_order_follows_next_links_across_folders(tmp_path: Path) -> None:
    page(tmp_path, "contents.html", None, "intro/index.html")
    page(tmp_path, "intro/index.html", "../contents.html", "first.html")
    page(tmp_path, "intro/first.html", "index.html", "../library/os.html")
    page(tmp_path, "library/os.html", "../intro/first.html", None)
    assert reading_order(tmp_path, "contents.html") == ["intro/index.html", "intro/first.html",
                                                        "library/os.html"]


def test_a_page_that_is_not_shipped_is_skipped_and_the_chain_goes_on(tmp_path: Path) -> None:
    page(tmp_path, "contents.html", None, "whatsnew/changelog.html")  # changelog.html is missing
    page(tmp_path, "tutorial/index.html", "../whatsnew/changelog.html", "../end.html")
    page(tmp_path, "end.html", "tutorial/index.html", "contents.html")  # a loop back to the start ends it
    assert reading_order(tmp_path, "contents.html") == ["tutorial/index.html", "end.html"]


def test_printable_adds_base_and_navigation_css_to_the_head(tmp_path: Path) -> None:
    html = '<html><head lang="en"><title>os &#8212; Python</title></head><body>text</body></html>'
    out = printable(html, tmp_path)
    assert out.startswith(f'<html><head lang="en"><base href="{tmp_path.resolve().as_uri()}/">')
    assert "div.sphinxsidebar" in out and "nav.wy-nav-side" in out and "@page" in out
    assert out.endswith("<body>text</body></html>")
    assert title_of(html) == "os — Python"
