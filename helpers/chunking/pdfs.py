"""Load PDFs into cleaned :class:`~helpers.core.schema.Page` records, one switchable cleaning step at a time.

Each cleaning step is a small public function, so a notebook can show a page before and after it.
A file that cannot be read is reported as a :class:`Problem` with a one-line reason, and the rest of
the folder is still loaded.
"""

from __future__ import annotations

import logging
import math
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import ftfy
from tqdm.auto import tqdm

from helpers.core.schema import Page

logger = logging.getLogger(__name__)

NO_TEXT_LAYER = "no text layer (scanned?) — run OCR first, e.g. ocrmypdf"
LIGATURES = {chr(c): unicodedata.normalize("NFKC", chr(c)) for c in range(0xFB00, 0xFB07)}
STRAIGHT_QUOTES = {"‘": "'", "’": "'", "‚": "'", "“": '"', "”": '"', "„": '"'}
HYPHEN_BREAK = re.compile(r"(\w*[a-zß-öø-ÿ])-[ \t]*\n[ \t]*([a-zß-öø-ÿ]\w*)")
HYPHENATED_WORD = re.compile(r"\b\w+(?:-\w+)+\b")
SOFT_HYPHEN_BREAK = re.compile(r"\xad[ \t]*\n[ \t]*")
PAGE_NUMBER = re.compile(r"[-–—\s]*(page\s+)?\d{1,4}(\s*(of|/)\s*\d{1,4})?[-–—\s]*", re.IGNORECASE)
LIST_ITEM = re.compile(r"([•▪◦‣*·–-]|\d{1,3}[.)])\s")
PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n\s*")


@dataclass(frozen=True)
class CleanOptions:
    """Which cleaning steps :func:`load_pdfs` applies (all on by default)."""

    fix_mojibake: bool = True
    normalize_ligatures: bool = True
    remove_repeating_lines: bool = True
    join_hyphenated: bool = True
    normalize_whitespace: bool = True


@dataclass(frozen=True)
class Problem:
    """A file that could not be loaded, and why, in one line."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class LoadResult:
    """The pages that were loaded and the problems met on the way."""

    pages: list[Page] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def summary(self) -> str:
        """One line of counts, then one line per problem."""
        n_docs = len({p.source for p in self.pages})
        lines = [f"Loaded {len(self.pages)} pages from {n_docs} documents; {len(self.problems)} problems."]
        return "\n".join(lines + [f"  - {problem}" for problem in self.problems])


# --- cleaning steps -------------------------------------------------------------------------------


def fix_mojibake(text: str) -> str:
    """Repair text decoded with the wrong codec ("personâ€™s" -> "person’s"); quotes and ligatures stay."""
    return ftfy.fix_text(text, uncurl_quotes=False, fix_latin_ligatures=False)


def normalize_ligatures(text: str, straight_quotes: bool = False) -> str:
    """Replace ligatures (ﬁ ﬂ ﬀ ﬃ ﬄ) with letters; curly quotes stay unless ``straight_quotes``."""
    table = LIGATURES | STRAIGHT_QUOTES if straight_quotes else LIGATURES
    return unicodedata.normalize("NFC", text.translate(str.maketrans(table)))


def join_hyphenated(text: str, keep: Collection[str] = ()) -> str:
    """Join words broken across lines ("pol-\\nicy" -> "policy") when both sides are lowercase letters.

    A word in ``keep`` (lowercase, e.g. "high-risk") keeps its hyphen ("high-\\nrisk" -> "high-risk").
    """
    def join(m: re.Match) -> str:
        word = f"{m[1]}-{m[2]}"
        return word if word.lower() in keep else m[1] + m[2]

    return HYPHEN_BREAK.sub(join, SOFT_HYPHEN_BREAK.sub("", text)).replace("\xad", "")


def hyphenated_words(texts: Iterable[str]) -> set[str]:
    """Words written with a hyphen inside a line ("high-risk"), lowercased: real compounds to keep."""
    return {w.lower() for text in texts for w in HYPHENATED_WORD.findall(text)}


def normalize_whitespace(text: str) -> str:
    """Single spaces, paragraphs separated by one blank line, lines inside a paragraph reflowed.

    A line that starts a list item ("• ", "- ", "3. ") keeps its line break.
    """
    paragraphs = []
    for block in PARAGRAPH_BREAK.split(text):
        lines = [" ".join(line.split()) for line in block.splitlines()]
        lines = [line for line in lines if line]
        if lines:
            paragraphs.append("".join(_line_joiner(i, line) + line for i, line in enumerate(lines)))
    return "\n\n".join(paragraphs)


def _line_joiner(index: int, line: str) -> str:
    if index == 0:
        return ""
    return "\n" if LIST_ITEM.match(line) else " "


def is_page_number(line: str) -> bool:
    """A bare page number: "12", "- 12 -", "Page 3", "Page 3 of 10", "3/10"."""
    return bool(PAGE_NUMBER.fullmatch(line.strip()))


def remove_repeating_lines(pages: list[str], min_share: float = 0.5, edge_lines: int = 2) -> list[str]:
    """Drop running headers, footers and page numbers from one document's pages.

    A line among the first or last ``edge_lines`` lines of a page is dropped when it is a bare page number,
    or when (with digits ignored) it is at the edge of at least ``min_share`` of the pages (and of two).
    """
    edges = [_edge_indexes(text.splitlines(), edge_lines) for text in pages]
    counts = Counter(key for text, idx in zip(pages, edges, strict=True)
                     for key in {_line_key(text.splitlines()[i]) for i in idx})
    threshold = max(2, math.ceil(min_share * len(pages)))
    repeated = {key for key, n in counts.items() if n >= threshold}
    cleaned = []
    for text, idx in zip(pages, edges, strict=True):
        lines = text.splitlines()
        drop = {i for i in idx if _line_key(lines[i]) in repeated or is_page_number(lines[i])}
        cleaned.append("\n".join(line for i, line in enumerate(lines) if i not in drop).strip())
    return cleaned


def _edge_indexes(lines: list[str], n: int) -> list[int]:
    filled = [i for i, line in enumerate(lines) if line.strip()]
    return sorted(set(filled[:n] + filled[-n:]))


def _line_key(line: str) -> str:
    return re.sub(r"\d+", "#", " ".join(line.lower().split()))


def _dehyphenate(pages: list[str]) -> list[str]:
    keep = hyphenated_words(pages)  # compounds this document writes with a hyphen elsewhere
    return [join_hyphenated(t, keep) for t in pages]


CLEANING_STEPS: dict[str, Callable[[list[str]], list[str]]] = {
    "fix_mojibake": lambda pages: [fix_mojibake(t) for t in pages],
    "normalize_ligatures": lambda pages: [normalize_ligatures(t) for t in pages],
    "remove_repeating_lines": remove_repeating_lines,
    "join_hyphenated": _dehyphenate,
    "normalize_whitespace": lambda pages: [normalize_whitespace(t) for t in pages],
}


def cleaning_stages(pages: list[str], options: CleanOptions = CleanOptions()) -> dict[str, list[str]]:
    """One document's page texts before ("raw") and after each chosen cleaning step, in order."""
    stages = {"raw": pages}
    for name, step in CLEANING_STEPS.items():
        if getattr(options, name):
            pages = stages[name] = step(pages)
    return stages


def clean_document(pages: list[str], options: CleanOptions = CleanOptions()) -> list[str]:
    """One document's page texts after the chosen cleaning steps."""
    return list(cleaning_stages(pages, options).values())[-1]


def first_change(before: str, after: str, context: int = 80) -> tuple[str, str]:
    """Excerpts of ``before`` and ``after`` around their first difference (both empty if equal)."""
    if before == after:
        return "", ""
    start = len(os.path.commonprefix([before, after]))
    lo = max(0, start - context)
    return before[lo:start + context], after[lo:start + context]


# --- loading --------------------------------------------------------------------------------------


def find_pdfs(path: Path) -> list[Path]:
    """``path`` itself if it is a file, else every ``*.pdf`` under it (recursive, sorted)."""
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() == ".pdf")


def raw_page_texts(path: Path) -> tuple[list[str], str]:
    """Text of every page (its blocks separated by blank lines) and the document's title.

    Raises ``ValueError`` with a one-line reason when the file cannot be read as a PDF with text.
    """
    texts, title, _ = read_pdf(path)
    return texts, title


def read_pdf(path: Path) -> tuple[list[str], str, list[int]]:
    """``raw_page_texts`` and the page numbers the file declares but whose content could not be read (a
    truncated or damaged file that MuPDF repaired)."""
    import pymupdf

    _check_pdf_header(path)
    try:
        doc = pymupdf.open(path, filetype="pdf")
    except (RuntimeError, ValueError) as exc:  # pymupdf's FileDataError is a RuntimeError
        raise ValueError("corrupt or truncated PDF (MuPDF cannot open it)") from exc
    with doc:
        if doc.needs_pass:
            raise ValueError("encrypted (needs a password): decrypt it first, e.g. qpdf --decrypt")
        try:
            texts = [_page_text(page) for page in doc]
        except RuntimeError as exc:
            raise ValueError(f"damaged page content ({exc})") from exc
        if not any(t.strip() for t in texts):
            raise ValueError("corrupt or truncated PDF (repaired, but no text could be read)"
                             if doc.is_repaired else NO_TEXT_LAYER)
        return texts, _metadata_title(doc), lost_pages(doc)


def lost_pages(doc) -> list[int]:
    """Pages (1-based) of a repaired document whose content stream is missing or cannot be decoded, and
    pages the page tree declares (``/Count``) beyond those MuPDF found."""
    if not doc.is_repaired:
        return []
    lost = []
    for number, page in enumerate(doc, start=1):
        try:
            contents = page.get_contents()
            readable = all(doc.xref_is_stream(x) and doc.xref_stream(x) is not None for x in contents)
        except (RuntimeError, ValueError):
            readable = False
        if not readable:
            lost.append(number)
    return lost + list(range(doc.page_count + 1, declared_pages(doc) + 1))


def declared_pages(doc) -> int:
    """The page count the document's page tree declares (its found pages when the tree is unreadable)."""
    try:
        kind, ref = doc.xref_get_key(doc.pdf_catalog(), "Pages")
        kind_count, count = doc.xref_get_key(int(ref.split()[0]), "Count") if kind == "xref" else ("", "")
        return int(count) if kind_count == "int" else doc.page_count
    except (RuntimeError, ValueError):
        return doc.page_count


def short_read(lost: list[int], declared: int) -> str:
    """The problem line for a partly read file."""
    return (f"truncated or damaged: {declared - len(lost)} of {declared} declared pages read (pages "
            f"{_ranges(lost)} lost); the pages read are kept")


def _ranges(numbers: list[int]) -> str:
    """[6, 7, 8, 10] -> '6-8, 10'."""
    spans: list[list[int]] = []
    for n in numbers:
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in spans)


def _check_pdf_header(path: Path) -> None:
    with path.open("rb") as f:
        head = f.read(1024)
    if not head:
        raise ValueError("empty file")
    if b"%PDF-" not in head:
        raise ValueError(f"not a PDF (starts with {head[:16]!r})")


def _page_text(page) -> str:
    blocks = page.get_text("blocks")
    return "\n\n".join(b[4].strip() for b in blocks if b[6] == 0 and b[4].strip())


def _metadata_title(doc) -> str:
    title = " ".join((doc.metadata or {}).get("title", "").split())
    if title and not re.search(r"\.(docx?|pdf|tex|indd|pptx?)$|^Microsoft Word", title, re.IGNORECASE):
        return title
    toc = doc.get_toc()
    return toc[0][1].strip() if toc else ""


def document_title(metadata_title: str, first_page: str, stem: str) -> str:
    """The PDF's metadata title (or first outline entry), else a short first line, else the file stem."""
    first_line = first_page.strip().split("\n", 1)[0].strip()
    short = first_line if 0 < len(first_line.split()) <= 12 and not first_line.endswith(".") else ""
    return metadata_title or short or stem


def load_pdf(path: Path, source: str, options: CleanOptions = CleanOptions()) -> list[Page]:
    """Cleaned, non-empty pages of one PDF; raises ``ValueError`` with a one-line reason."""
    return load_pdf_checked(path, source, options)[0]


def load_pdf_checked(path: Path, source: str, options: CleanOptions = CleanOptions()
                     ) -> tuple[list[Page], str | None]:
    """``load_pdf`` and the problem of a file read only in part (None when every declared page was read)."""
    texts, title, lost = read_pdf(path)
    cleaned = clean_document(texts, options)
    pages = [Page(text=t, source=source, page=i) for i, t in enumerate(cleaned, start=1)
             if t.strip() and i not in lost]
    if not pages:
        raise ValueError("no text left after cleaning")
    title = document_title(title, pages[0].text, path.stem)
    for page in pages:
        page.title = title
    return pages, short_read(lost, max(len(texts), lost[-1])) if lost else None


def load_pdfs(path: Path | str, options: CleanOptions = CleanOptions(), progress: bool = True) -> LoadResult:
    """Load one PDF or a folder of PDFs (recursive, sorted) into cleaned pages; problems are collected.

    ``Page.source`` is the file name relative to the folder. A summary with every problem is printed
    (without ``progress``, only when there are problems).
    """
    path = Path(path).expanduser()
    result = LoadResult()
    if not path.exists():
        result.problems.append(Problem(str(path), "missing: no such file or folder"))
    files = find_pdfs(path) if path.exists() else []
    if path.is_dir() and not files:
        result.problems.append(Problem(str(path), "no *.pdf files in this folder"))
    for file in tqdm(files, desc="Loading PDFs", unit="pdf", disable=None if progress else True):
        source = file.relative_to(path).as_posix() if path.is_dir() else file.name
        try:
            pages, partial = load_pdf_checked(file, source, options)
        except (ValueError, OSError) as exc:
            result.problems.append(Problem(source, str(exc)))
            continue
        result.pages.extend(pages)
        if partial:
            result.problems.append(Problem(source, partial))
    if progress or result.problems:
        logger.info(result.summary())
    return result


def document_texts(pages: list[Page]) -> dict[str, str]:
    """Each document's cleaned text: its pages' texts joined with a blank line, in page order."""
    by_source: dict[str, list[Page]] = {}
    for page in pages:
        by_source.setdefault(page.source, []).append(page)
    return {source: "\n\n".join(p.text for p in sorted(group, key=lambda p: p.page))
            for source, group in by_source.items()}
