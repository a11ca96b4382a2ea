"""Render the sample corpus: ``data/sample/src/*.md`` -> ``data/sample/*.pdf``.

    pip install "reportlab>=4"        # or: pip install -e ".[corpus]"
    python data/sample/render.py      # rebuilds every PDF; --check only reports what would change

The PDFs are committed, so learners never need this script. It exists so the corpus can be edited and
rebuilt the same way every time: reportlab's invariant mode fixes the creation date and the document
id, and the metadata come from each source's front matter, so re-rendering an unchanged source gives a
byte-identical file.

The layout deliberately stresses a PDF-to-text pipeline the way real handbooks do: running headers and
footers ("Page N of M"), numbered headings, bulleted lists, tables, two-column pages, footnotes at the
foot of the page, words hyphenated at line ends (soft hyphens), typographic ligatures (U+FB01, U+FB02)
and curly quotes.

Source format (a small Markdown subset): a front matter block (``key: value`` lines between ``---``;
``revision: 1.0 | date | summary`` may repeat), ``## 1 Section`` and ``### 1.1 Subsection`` headings,
paragraphs, ``- `` bullets, ``1. `` numbered items, ``| a | b |`` tables (first row is the header),
``> `` note boxes, footnotes (``[^1]`` in the text, ``[^1]: text`` on its own line), ``**bold**``,
``*italic*`` and the directives ``<!-- columns: 2 -->``, ``<!-- columns: 1 -->``, ``<!-- pagebreak -->``.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from reportlab.lib import colors
from reportlab.lib.enums import TA_JUSTIFY, TA_LEFT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    CondPageBreak,
    Flowable,
    Frame,
    KeepTogether,
    NextPageTemplate,
    PageBreak,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)

HERE = Path(__file__).resolve().parent
SRC = HERE / "src"
ORG = "Larkspur Research Institute"

PAGE_W, PAGE_H = A4
MARGIN_X, MARGIN_TOP, MARGIN_BOTTOM = 62.0, 74.0, 96.0
GUTTER = 18.0
BODY_W = PAGE_W - 2 * MARGIN_X
COL_W = (BODY_W - GUTTER) / 2
FOOTER_Y, FOOTNOTE_TOP = 34.0, MARGIN_BOTTOM - 8
ACCENT = colors.HexColor("#2f5d50")
GREY = colors.HexColor("#555555")

FONT_FILES = {
    "Serif": "DejaVuSerif.ttf",
    "Serif-Bold": "DejaVuSerif-Bold.ttf",
    "Serif-Italic": "DejaVuSerif-Italic.ttf",
    "Serif-BoldItalic": "DejaVuSerif-BoldItalic.ttf",
    "Sans": "DejaVuSans.ttf",
    "Sans-Bold": "DejaVuSans-Bold.ttf",
}


# ----------------------------------------------------------------------------------------------- fonts
def _font_dirs() -> list[Path]:
    """DejaVu ships with matplotlib (a dependency of the kit); system copies are a fallback."""
    dirs = []
    try:
        import matplotlib

        dirs.append(Path(matplotlib.get_data_path()) / "fonts" / "ttf")
    except ImportError:
        pass
    return dirs + [Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu")]


def register_fonts() -> None:
    """Register DejaVu Serif/Sans: they carry the fi/fl ligature glyphs and curly quotes."""
    for name, file in FONT_FILES.items():
        path = next((d / file for d in _font_dirs() if (d / file).exists()), None)
        if path is None:
            sys.exit(f"render.py: font {file} not found (install matplotlib or the DejaVu fonts)")
        pdfmetrics.registerFont(TTFont(name, str(path)))
    pdfmetrics.registerFontFamily("Serif", normal="Serif", bold="Serif-Bold", italic="Serif-Italic",
                                  boldItalic="Serif-BoldItalic")
    pdfmetrics.registerFontFamily("Sans", normal="Sans", bold="Sans-Bold", italic="Sans",
                                  boldItalic="Sans-Bold")


def make_styles() -> dict[str, ParagraphStyle]:
    body = ParagraphStyle("body", fontName="Serif", fontSize=10, leading=14, alignment=TA_JUSTIFY,
                          spaceAfter=6, embeddedHyphenation=1, uriWasteReduce=0.3)
    return {
        "body": body,
        "bullet": ParagraphStyle("bullet", parent=body, alignment=TA_LEFT, leftIndent=16, bulletIndent=4,
                                 spaceAfter=3),
        "h1": ParagraphStyle("h1", fontName="Sans-Bold", fontSize=13, leading=17, textColor=ACCENT,
                             spaceBefore=12, spaceAfter=6),
        "h2": ParagraphStyle("h2", fontName="Sans-Bold", fontSize=10.5, leading=14, spaceBefore=8,
                             spaceAfter=4),
        "cell": ParagraphStyle("cell", fontName="Serif", fontSize=8.5, leading=11, alignment=TA_LEFT),
        "cellhead": ParagraphStyle("cellhead", fontName="Sans-Bold", fontSize=8.5, leading=11),
        "note": ParagraphStyle("note", parent=body, fontSize=9.5, leading=13, spaceAfter=0),
        "footnote": ParagraphStyle("footnote", fontName="Serif", fontSize=7, leading=8.5, alignment=TA_LEFT),
        "title": ParagraphStyle("title", fontName="Sans-Bold", fontSize=24, leading=30, textColor=ACCENT,
                                spaceAfter=6),
        "subtitle": ParagraphStyle("subtitle", fontName="Sans", fontSize=12, leading=16, textColor=GREY,
                                   spaceAfter=24),
        "label": ParagraphStyle("label", fontName="Sans-Bold", fontSize=11, leading=15, spaceBefore=16,
                                spaceAfter=6, textColor=ACCENT),
        "toc": ParagraphStyle("toc", fontName="Sans", fontSize=9.5, leading=14, leftIndent=8),
    }


# ---------------------------------------------------------------------------------------- typography
_VOWELS = set("aeiouy")
_DIGRAPHS = {"ch", "sh", "th", "ph", "wh", "gh", "ck", "ng", "qu"}
_SUFFIXES = ("tion", "sion", "ment", "ness", "ance", "ence", "ible", "able", "ity", "ing")
_SHY = "\u00ad"


def hyphenation_points(word: str) -> list[int]:
    """Cut positions for a long alphabetic word (VC|CV splits and common suffixes, >= 3 letters a side)."""
    low = word.lower()
    cuts = {i for i in range(3, len(low) - 2)
            if low[i - 2] in _VOWELS and low[i - 1] not in _VOWELS and low[i] not in _VOWELS
            and low[i + 1] in _VOWELS and low[i - 1:i + 1] not in _DIGRAPHS}
    for suffix in _SUFFIXES:
        if low.endswith(suffix) and len(low) - len(suffix) >= 4:
            cuts.add(len(low) - len(suffix))
    kept: list[int] = []
    for c in sorted(cuts):
        if not kept or c - kept[-1] >= 2:
            kept.append(c)
    return kept


def hyphenate(text: str) -> str:
    """Insert soft hyphens into words of 9+ letters; reportlab breaks there and draws a hyphen."""
    def one(m: re.Match) -> str:
        w = m.group(0)
        for c in reversed(hyphenation_points(w)):
            w = w[:c] + _SHY + w[c:]
        return w

    return re.sub(r"(?<![\w@/.])[A-Za-z]{9,}(?![\w@/]|\.\w)", one, text)


def smarten(text: str) -> str:
    """Straight quotes and apostrophes to curly ones."""
    text = re.sub(r'(^|[\s(\[\u2014\u2013/])"', "\\1\u201c", text).replace('"', "\u201d")
    text = re.sub(r"(^|[\s(\[\u2014\u2013/])'", "\\1\u2018", text)
    return text.replace("'", "\u2019")


def ligate(text: str) -> str:
    """fi -> U+FB01 and fl -> U+FB02, as a typesetter would (the extracted text then carries them)."""
    return text.replace("fi", "\ufb01").replace("fl", "\ufb02")


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def inline(text: str, *, body: bool = True) -> str:
    """Source text to reportlab paragraph markup; body text is hyphenated and ligated."""
    text = smarten(text)
    if body:
        text = ligate(hyphenate(text))
    text = escape(text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
    text = re.sub(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])", r"<i>\1</i>", text)
    return re.sub(r"\[\^(\d+)\]", r"<super>\1</super>", text)


# ------------------------------------------------------------------------------------------- parsing
@dataclass
class Source:
    meta: dict[str, str]
    revisions: list[list[str]]
    body: list[str]
    footnotes: dict[str, str] = field(default_factory=dict)


def parse_source(path: Path) -> Source:
    """Split a source file into front matter, revision rows, body lines and footnote definitions."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or lines[0].strip() != "---":
        raise ValueError(f"{path}: missing front matter")
    end = lines.index("---", 1)
    meta: dict[str, str] = {}
    revisions: list[list[str]] = []
    for line in lines[1:end]:
        key, _, value = line.partition(":")
        if key.strip() == "revision":
            revisions.append([c.strip() for c in value.split("|")])
        elif key.strip():
            meta[key.strip()] = value.strip()
    body, notes = [], {}
    for line in lines[end + 1:]:
        m = re.match(r"\[\^(\d+)\]:\s*(.+)", line)
        if m:
            notes[m.group(1)] = m.group(2)
        else:
            body.append(line)
    return Source(meta, revisions, body, notes)


def blocks(lines: list[str]) -> list[list[str]]:
    """Group lines into blocks separated by blank lines; headings and directives stand alone."""
    out: list[list[str]] = []
    cur: list[str] = []
    for line in lines + [""]:
        stand_alone = line.startswith(("#", "<!--"))
        if not line.strip() or stand_alone:
            if cur:
                out.append(cur)
            cur = []
            if stand_alone:
                out.append([line])
        else:
            cur.append(line)
    return out


# ------------------------------------------------------------------------------------------ flowables
class FootnoteAnchor(Flowable):
    """Zero-size marker after a paragraph: registers its footnotes for the page it lands on."""

    def __init__(self, registry: dict[int, list[tuple[str, str]]], notes: list[tuple[str, str]]):
        super().__init__()
        self.registry, self.notes = registry, notes
        self.width = self.height = 0

    def wrap(self, *_):
        return 0, 0

    def draw(self) -> None:
        self.registry.setdefault(self.canv.getPageNumber(), []).extend(self.notes)


def make_table(rows: list[list[str]], width: float, st: dict[str, ParagraphStyle]) -> Table:
    """A grid table with a shaded header row; column widths follow the longest cell of each column."""
    ncol = max(len(r) for r in rows)
    rows = [r + [""] * (ncol - len(r)) for r in rows]
    # each column gets room for its longest word, the rest is shared by the longest cell lengths
    floor = [8 + max(pdfmetrics.stringWidth(w, "Sans-Bold", 8.5) for r in rows for w in r[i].split() or [""])
             for i in range(ncol)]
    longest = [max(min(len(r[i]), 60) for r in rows) + 4 for i in range(ncol)]
    spare = max(width - sum(floor), 0)
    widths = [f + spare * n / sum(longest) for f, n in zip(floor, longest, strict=True)]
    data = [[Paragraph(inline(c, body=False), st["cellhead" if i == 0 else "cell"]) for c in r]
            for i, r in enumerate(rows)]
    table = Table(data, colWidths=widths, repeatRows=1, hAlign="LEFT")
    table.setStyle(TableStyle([
        ("GRID", (0, 0), (-1, -1), 0.5, colors.HexColor("#9aa7a3")),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#dfe8e5")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("TOPPADDING", (0, 0), (-1, -1), 3), ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
    ]))
    return table


def note_box(text: str, width: float, st: dict[str, ParagraphStyle]) -> Table:
    box = Table([[Paragraph(inline(text), st["note"])]], colWidths=[width])
    box.setStyle(TableStyle([
        ("BACKGROUND", (0, 0), (-1, -1), colors.HexColor("#eef3f1")),
        ("LINEBEFORE", (0, 0), (0, -1), 2.5, ACCENT),
        ("LEFTPADDING", (0, 0), (-1, -1), 8), ("RIGHTPADDING", (0, 0), (-1, -1), 8),
        ("TOPPADDING", (0, 0), (-1, -1), 6), ("BOTTOMPADDING", (0, 0), (-1, -1), 6),
    ]))
    return box


def cover(src: Source, st: dict[str, ParagraphStyle]) -> list[Flowable]:
    """Title page: document control table, revision history and contents."""
    m = src.meta
    story: list[Flowable] = [Spacer(1, 40), Paragraph(escape(m["title"]), st["title"]),
                             Paragraph(f"{ORG} \u2014 Staff Handbook Series", st["subtitle"])]
    control = [["Document number", m["doc_id"]], ["Version", m["version"]],
               ["Effective date", m["effective"]],
               ["Next review", m["next_review"]], ["Policy owner", m["owner"]],
               ["Approved by", m["approved"]], ["Applies to", m["applies_to"]],
               ["Classification", m.get("classification", "Internal")]]
    story += [Paragraph("Document control", st["label"]),
              make_table([["Field", "Value"], *control], BODY_W, st)]
    story += [Paragraph("Revision history", st["label"]),
              make_table([["Version", "Date", "Summary of changes"], *src.revisions], BODY_W, st)]
    heads = [Paragraph(escape(ln[3:].strip()), st["toc"]) for ln in src.body if ln.startswith("## ")]
    half = (len(heads) + 1) // 2 if len(heads) > 12 else len(heads)  # long contents: two columns
    rows = [[heads[i], heads[i + half] if i + half < len(heads) else ""] for i in range(half)]
    contents = Table(rows, colWidths=[BODY_W / 2] * 2, hAlign="LEFT")
    contents.setStyle(TableStyle([("LEFTPADDING", (0, 0), (-1, -1), 0), ("TOPPADDING", (0, 0), (-1, -1), 0),
                                  ("BOTTOMPADDING", (0, 0), (-1, -1), 0)]))
    return story + [Paragraph("Contents", st["label"]), contents]


def build_story(src: Source, st: dict[str, ParagraphStyle], registry: dict) -> list[Flowable]:
    """The document's flowables: cover page, then the body in one or two columns."""
    columns = src.meta.get("columns", "1")
    story = cover(src, st) + [NextPageTemplate("two" if columns == "2" else "one"), PageBreak()]
    width = COL_W if columns == "2" else BODY_W
    for block in blocks(src.body):
        first = block[0]
        if first.startswith("<!--"):
            directive = first.strip("<!-> ").strip()
            if directive.startswith("columns:"):
                columns = directive.split(":")[1].strip()
                width = COL_W if columns == "2" else BODY_W
                story += [NextPageTemplate("two" if columns == "2" else "one"), PageBreak()]
            elif directive == "pagebreak":
                story.append(PageBreak())
        elif first.startswith("### "):
            story += [CondPageBreak(60), Paragraph(inline(first[4:], body=False), st["h2"])]
        elif first.startswith("## "):
            story += [CondPageBreak(90), Paragraph(inline(first[3:], body=False), st["h1"])]
        elif first.startswith("|"):
            rows = [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in block
                    if not re.match(r"^\|[\s:|-]+\|$", ln.strip())]
            story += [make_table(rows, width, st), Spacer(1, 8)]
        elif first.startswith("> "):
            story += [note_box(" ".join(ln[2:] for ln in block), width, st), Spacer(1, 8)]
        elif re.match(r"^(- |\d+\. )", first):
            story += list_items(block, st)
        else:
            story.append(Paragraph(inline(" ".join(block)), st["body"]))
        refs = re.findall(r"\[\^(\d+)\]", " ".join(block))
        if refs:
            story.append(FootnoteAnchor(registry, [(r, src.footnotes[r]) for r in refs]))
    return story


def list_items(block: list[str], st: dict[str, ParagraphStyle]) -> list[Flowable]:
    """Bulleted (``- ``) or numbered (``1. ``) items; indented lines continue the previous item."""
    items: list[list[str]] = []
    for line in block:
        m = re.match(r"^(- |(\d+)\. )(.*)", line)
        if m:
            items.append(["\u2022" if m.group(1) == "- " else f"{m.group(2)}.", m.group(3)])
        else:
            items[-1][1] += " " + line.strip()
    paras = [Paragraph(inline(text), st["bullet"], bulletText=mark) for mark, text in items]
    return [KeepTogether(paras)] if len(paras) <= 3 else paras


# ------------------------------------------------------------------------------------------- pages
def canvas_class(meta: dict[str, str]) -> type[Canvas]:
    """A canvas that knows the page count at save time, so each footer can say "Page N of M"."""

    class NumberedCanvas(Canvas):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._pages: list[dict] = []
            # creation/modification date: the effective date, fixed (invariant mode would say 2000-01-01)
            stamp = datetime.strptime(meta["effective"], "%d %B %Y").strftime("D:%Y%m%d090000+00'00'")
            self.setDateFormatter(lambda *_: stamp)

        def showPage(self):  # noqa: N802 (reportlab's API)
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self):
            total = len(self._pages)
            for state in self._pages:
                self.__dict__.update(state)
                footer(self, meta, total)
                Canvas.showPage(self)
            super().save()

    return NumberedCanvas


def footer(c: Canvas, meta: dict[str, str], total: int) -> None:
    c.saveState()
    c.setStrokeColor(GREY)
    c.setLineWidth(0.4)
    c.line(MARGIN_X, FOOTER_Y + 12, PAGE_W - MARGIN_X, FOOTER_Y + 12)
    c.setFont("Sans", 7.5)
    c.setFillColor(GREY)
    c.drawString(MARGIN_X, FOOTER_Y, f"{meta['doc_id']} \u00b7 Version {meta['version']} \u00b7 "
                                     f"{meta.get('classification', 'Internal')}")
    c.drawRightString(PAGE_W - MARGIN_X, FOOTER_Y, f"Page {c.getPageNumber()} of {total}")
    c.restoreState()


def header(c: Canvas, meta: dict[str, str]) -> None:
    c.saveState()
    c.setFont("Sans", 7.5)
    c.setFillColor(GREY)
    y = PAGE_H - 42
    c.drawString(MARGIN_X, y, ORG)
    c.drawRightString(PAGE_W - MARGIN_X, y, meta["title"])
    c.setStrokeColor(ACCENT)
    c.setLineWidth(0.6)
    c.line(MARGIN_X, y - 6, PAGE_W - MARGIN_X, y - 6)
    c.restoreState()


def draw_footnotes(c: Canvas, notes: list[tuple[str, str]], st: dict[str, ParagraphStyle]) -> None:
    """Footnotes of this page, under a short rule at the top of the bottom margin."""
    if not notes:
        return
    c.saveState()
    c.setLineWidth(0.4)
    c.line(MARGIN_X, FOOTNOTE_TOP, MARGIN_X + 120, FOOTNOTE_TOP)
    y = FOOTNOTE_TOP - 3
    for num, text in notes:
        p = Paragraph(f"<super>{num}</super> {inline(text)}", st["footnote"])
        _, h = p.wrap(BODY_W, 100)
        y -= h
        p.drawOn(c, MARGIN_X, y)
    c.restoreState()


def page_templates(meta: dict[str, str], st: dict[str, ParagraphStyle], registry: dict) -> list[PageTemplate]:
    height = PAGE_H - MARGIN_TOP - MARGIN_BOTTOM

    def on_body_page(c: Canvas, _doc) -> None:
        header(c, meta)

    def on_page_end(c: Canvas, _doc) -> None:
        draw_footnotes(c, registry.pop(c.getPageNumber(), []), st)

    one = [Frame(MARGIN_X, MARGIN_BOTTOM, BODY_W, height, id="body", leftPadding=0, rightPadding=0)]
    two = [Frame(MARGIN_X + i * (COL_W + GUTTER), MARGIN_BOTTOM, COL_W, height, id=f"col{i}",
                 leftPadding=0, rightPadding=0) for i in range(2)]
    return [PageTemplate("cover", frames=[Frame(MARGIN_X, MARGIN_BOTTOM, BODY_W, height, id="cover")],
                         onPageEnd=on_page_end),
            PageTemplate("one", frames=one, onPage=on_body_page, onPageEnd=on_page_end),
            PageTemplate("two", frames=two, onPage=on_body_page, onPageEnd=on_page_end)]


def render(src_path: Path, out_path: Path) -> None:
    """Render one source file to a PDF."""
    src = parse_source(src_path)
    st = make_styles()
    registry: dict[int, list[tuple[str, str]]] = {}
    m = src.meta
    doc = BaseDocTemplate(str(out_path), pagesize=A4, invariant=1, title=m["title"], author=ORG,
                          subject=f"{m['doc_id']} version {m['version']}, effective {m['effective']}",
                          creator="data/sample/render.py", keywords="Larkspur, staff handbook, sample corpus",
                          leftMargin=MARGIN_X, rightMargin=MARGIN_X, topMargin=MARGIN_TOP,
                          bottomMargin=MARGIN_BOTTOM)
    doc.addPageTemplates(page_templates(m, st, registry))
    doc.build(build_story(src, st, registry), canvasmaker=canvas_class(m))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="render to a temporary folder and compare")
    args = parser.parse_args(argv)
    register_fonts()
    changed = 0
    for src_path in sorted(SRC.glob("*.md")):
        out = HERE / f"{src_path.stem}.pdf"
        target = out.with_suffix(".pdf.check") if args.check else out
        render(src_path, target)
        if args.check:
            same = out.exists() and _digest(out) == _digest(target)
            target.unlink()
            changed += not same
            print(f"{'same   ' if same else 'CHANGED'} {out.name}")
        else:
            print(f"wrote {out.relative_to(HERE.parent.parent)} ({out.stat().st_size // 1024} KiB)")
    return 1 if changed else 0


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


if __name__ == "__main__":
    raise SystemExit(main())
