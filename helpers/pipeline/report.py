"""The run report: ``report.md`` beside its plots, and a self-contained ``report.html`` (plots embedded)."""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path

from helpers.core.config import RunPaths
from helpers.core.io import write_text

Table = list[list[str]]  # first row is the header


@dataclass
class Section:
    """One part of the report: prose, optional tables, optional plots (paths inside the run folder).

    ``captions[i]``, when given, is printed above ``tables[i]``. Prose may hold Markdown links
    (``[model/](model)``, relative to the run folder): report.html turns them into links too.
    """

    title: str
    text: str = ""
    tables: list[Table] = field(default_factory=list)
    images: list[Path] = field(default_factory=list)
    captions: list[str] = field(default_factory=list)
    anchor: str = ""  # the HTML id of the section (default: from the title)

    def captioned_tables(self) -> list[tuple[str, Table]]:
        """(caption or "", table) for each table."""
        return [(self.captions[i] if i < len(self.captions) else "", t) for i, t in enumerate(self.tables)]

    @property
    def id(self) -> str:
        return self.anchor or re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-")


def key_value_table(summary: dict, keys: list[str] | None = None, labels: dict[str, str] | None = None
                    ) -> Table:
    """A two-column table of the scalar entries of ``summary`` (or just ``keys``), each key shown by its
    label in ``labels`` when it has one; None values are left out."""
    labels = labels or {}
    rows = [[labels.get(k, k), fmt(v)] for k, v in summary.items()
            if (keys is None or k in keys) and v is not None and not isinstance(v, dict | list)]
    return [["", "value"], *rows]


def fmt(value) -> str:
    """A value for reading: yes/no, thousands separators, three significant digits below 100."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e6:
            return f"{value:,.0f}"
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def link(label: str, target: Path | str, root: Path) -> str:
    """A Markdown link to an artifact, relative to the run folder when it lies inside it."""
    target = Path(target)
    href = target.relative_to(root).as_posix() if target.is_absolute() and target.is_relative_to(root) \
        else target.as_posix()
    return f"[{label}]({href}{'/' if target.is_dir() and not href.endswith('/') else ''})"


def render_markdown(title: str, sections: list[Section], root: Path) -> str:
    """Markdown with images linked relative to the run folder."""
    out = [f"# {title}", ""]
    for s in sections:
        out += [f"## {s.title}", ""]
        if s.text:
            out += [s.text, ""]
        for caption, table in s.captioned_tables():
            out += ([f"**{caption}**", ""] if caption else []) + _markdown_table(table) + [""]
        out += [f"![{p.stem}]({p.relative_to(root).as_posix()})" for p in s.images if p.exists()] + [""]
    return "\n".join(out)


def _markdown_table(table: Table) -> list[str]:
    def row(cells: list[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return [row(table[0]), row(["---"] * len(table[0])), *(row(r) for r in table[1:])]


CSS = """body{font-family:system-ui,sans-serif;max-width:1000px;margin:1.5em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.6em 0;font-size:.88em;max-width:100%}
td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;overflow-wrap:break-word}
th{background:#f3f3f3;white-space:nowrap}
img{max-width:min(100%,760px);border:1px solid #eee}p{line-height:1.45}
h1{font-size:1.5em;margin:.3em 0}h2{font-size:1.25em;margin-top:1.4em}h3{font-size:1em;margin:.9em 0 .2em}
#verdict{background:#f6f9ff;border:1px solid #cdd9f0;border-radius:6px;padding:.2em 1em .6em}
#verdict h2{margin-top:.5em}"""
_MD_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")


def render_html(title: str, sections: list[Section]) -> str:
    """A single HTML file: tables as HTML, plots embedded as base64 PNGs, Markdown links as links."""
    body = [f"<h1>{html.escape(title)}</h1>"]
    for s in sections:
        body.append(f"<section id='{html.escape(s.id)}'><h2>{html.escape(s.title)}</h2>")
        body += [f"<p>{_inline(p)}</p>" for p in s.text.split("\n\n") if p.strip()]
        for caption, table in s.captioned_tables():
            body += ([f"<h3>{_inline(caption)}</h3>"] if caption else []) + [_html_table(table)]
        body += [_html_image(p) for p in s.images if p.exists()]
        body.append("</section>")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>\n")


def _inline(text: str) -> str:
    """Escaped text with its Markdown links as HTML links and its line breaks kept."""
    escaped = html.escape(text)
    return _MD_LINK.sub(lambda m: f"<a href='{m[2]}'>{m[1]}</a>", escaped).replace("\n", "<br>")


def _html_table(table: Table) -> str:
    head = "".join(f"<th>{_inline(str(c))}</th>" for c in table[0])
    cells = ("".join(f"<td>{_inline(str(c))}</td>" for c in r) for r in table[1:])
    rows = "".join(f"<tr>{c}</tr>" for c in cells)
    return f"<table><tr>{head}</tr>{rows}</table>"


def _html_image(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f"<p><img alt='{html.escape(path.stem)}' src='data:image/png;base64,{data}'></p>"


def write_report(paths: RunPaths, title: str, sections: list[Section]) -> tuple[Path, Path]:
    """Write report.md and report.html into the run folder; return both paths."""
    md_path, html_path = paths.report, paths.report.with_suffix(".html")
    write_text(md_path, render_markdown(title, sections, paths.root))
    write_text(html_path, render_html(title, sections))
    return md_path, html_path
