"""The run report: ``report.md`` beside its plots, and a self-contained ``report.html`` (plots embedded)."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path

from helpers.core.config import RunPaths
from helpers.core.io import write_text

Table = list[list[str]]  # first row is the header


@dataclass
class Section:
    """One part of the report: prose, optional tables, optional plots (paths inside the run folder).

    ``captions[i]``, when given, is printed above ``tables[i]``.
    """

    title: str
    text: str = ""
    tables: list[Table] = field(default_factory=list)
    images: list[Path] = field(default_factory=list)
    captions: list[str] = field(default_factory=list)

    def captioned_tables(self) -> list[tuple[str, Table]]:
        """(caption or "", table) for each table."""
        return [(self.captions[i] if i < len(self.captions) else "", t) for i, t in enumerate(self.tables)]


def key_value_table(summary: dict, keys: list[str] | None = None) -> Table:
    """A two-column table of the scalar entries of ``summary`` (or just ``keys``)."""
    rows = [[k, _fmt(v)] for k, v in summary.items()
            if (keys is None or k in keys) and not isinstance(v, dict | list)]
    return [["", "value"], *rows]


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:,.1f}"
    return str(value)


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


CSS = """body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}
th{background:#f3f3f3}img{max-width:100%;border:1px solid #eee}p{line-height:1.5}"""


def render_html(title: str, sections: list[Section]) -> str:
    """A single HTML file: tables as HTML, plots embedded as base64 PNGs."""
    body = [f"<h1>{html.escape(title)}</h1>"]
    for s in sections:
        body.append(f"<h2>{html.escape(s.title)}</h2>")
        body += [f"<p>{html.escape(p)}</p>" for p in s.text.split("\n\n") if p.strip()]
        for caption, table in s.captioned_tables():
            body += ([f"<h3>{html.escape(caption)}</h3>"] if caption else []) + [_html_table(table)]
        body += [_html_image(p) for p in s.images if p.exists()]
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>\n")


def _html_table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table[0])
    cells = ("".join(f"<td>{html.escape(str(c))}</td>" for c in r) for r in table[1:])
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
