"""Build a human-question retrieval benchmark from the Debian FAQ (Debian package debian-faq).

Each FAQ section's heading is a question a person asked ("How can I keep my Debian system current?") and
its text is the answer. This script prints one PDF per FAQ chapter with every section heading removed
(and the tables of contents, navigation and title page, which repeat the questions, left out; cross
references keep "Section 9.1" but lose the quoted heading), and writes questions.jsonl with one record per
question: {"id", "query", "file", "answer"}. It then extracts the PDFs' text with pdftotext and fails
unless no question heading survives in it.

Headings without a "?" and answers shorter than --min-words words are skipped (counted in the manifest).
A section whose subsections are themselves questions answers with its own text only; subsections that are
not questions (8.1.1 "dpkg", ...) are part of their parent's answer.

Missing Debian packages (chromium, poppler-utils, debian-faq) are installed with `apt-get install -y`
when run as root; otherwise the script exits with the command to run. A rerun whose manifest.json
matches the same settings does nothing unless --force is given.

    python benchmarks/corpora/build_debian_faq.py
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import docbook_pdf as dp

PACKAGE = "debian-faq"
HTML_DIR = Path("/usr/share/doc/debian/FAQ")
INDEX = "index.en.html"
HEADINGS = {dp.X + f"h{level}" for level in range(2, 7)}
BLOCK_TAGS = [
    "p",
    "div",
    "li",
    "dt",
    "dd",
    "pre",
    "table",
    "tr",
    "td",
    "th",
    "ul",
    "ol",
    "dl",
    "blockquote",
    "br",
]
BLOCKS = {dp.X + tag for tag in BLOCK_TAGS} | HEADINGS
SECTION_NUMBER = re.compile(r"^\d+(\.\d+)*\.?\s+")
XREF_TITLE = re.compile(r"^(.*?),\s*“.*”$")


@dataclass
class Question:
    """One FAQ section: its heading as a query and its answer text."""

    id: str
    query: str
    file: str
    answer: str


def chapter_files(html_dir: Path) -> list[str]:
    """Return the chapter files in reading order, following rel="next" from the index (not included)."""
    order, name = [], INDEX
    while name and name not in order:
        order.append(name)
        head = dp.load(html_dir / name).find(dp.X + "head")
        nexts = [link.get("href") for link in head if link.tag == dp.X + "link" and link.get("rel") == "next"]
        name = nexts[0] if nexts else None
    return order[1:]


def plain_text(elem: ET.Element) -> str:
    """Return the element's text, with a space between block elements so words never run together."""
    parts: list[str] = []

    def walk(e: ET.Element) -> None:
        parts.append(e.text or "")
        for child in e:
            block = child.tag in BLOCKS
            parts.append(" " if block else "")
            walk(child)
            parts.append(" " if block else "")
            parts.append(child.tail or "")

    walk(elem)
    return " ".join("".join(parts).split())


def is_section(elem: ET.Element) -> bool:
    """True for a DocBook section division (the unit of one question and its answer)."""
    return elem.tag == dp.X + "div" and dp.has_class(elem, "section")


def is_titlepage(elem: ET.Element) -> bool:
    """True for the div that holds a section's numbered heading."""
    return elem.tag == dp.X + "div" and dp.has_class(elem, "titlepage")


def heading_of(section: ET.Element) -> tuple[str, str]:
    """Return (query, anchor id) of a section: its heading without the section number, and its id."""
    titlepage = next(child for child in section if is_titlepage(child))
    heading = next(e for e in titlepage.iter() if e.tag in HEADINGS)
    anchor = next((e.get("id") for e in heading.iter(dp.X + "a") if e.get("id")), "")
    return SECTION_NUMBER.sub("", plain_text(heading)), anchor


def is_question_section(elem: ET.Element) -> bool:
    """True for a section whose heading asks a question."""
    return is_section(elem) and "?" in heading_of(elem)[0]


def answer_of(section: ET.Element) -> str:
    """Return a section's answer: its text without headings and without nested question sections."""
    body = copy.deepcopy(section)
    dp.remove_where(body, lambda e: is_titlepage(e) or is_question_section(e))
    return plain_text(body)


def shorten_xrefs(root: ET.Element) -> None:
    """Turn 'Section 12.1, “What other documentation exists…?”' into 'Section 12.1' in cross references."""
    for link in root.iter(dp.X + "a"):
        if not dp.has_class(link, "xref"):
            continue
        match = XREF_TITLE.match(plain_text(link))
        if match:
            for child in list(link):
                link.remove(child)
            link.text = match.group(1)


def read_chapter(path: Path, pdf_name: str) -> tuple[ET.Element, list[Question]]:
    """Load one chapter; return its printable root (section headings removed) and all its sections."""
    root = dp.load(path)
    dp.strip_navigation(root)
    shorten_xrefs(root)
    sections = [e for e in root.iter() if is_section(e)]
    questions = []
    for section in sections:
        query, anchor = heading_of(section)
        questions.append(Question(id=anchor, query=query, file=pdf_name, answer=answer_of(section)))
    for section in sections:
        for child in list(section):
            if is_titlepage(child):
                section.remove(child)
    return root, questions


def skip_reason(question: Question, min_words: int) -> str | None:
    """Return why a section is not a benchmark question ("not_question", "short"), or None to keep it."""
    if "?" not in question.query:
        return "not_question"
    if len(question.answer.split()) < min_words:
        return "short"
    return None


def leaked_headings(queries: list[str], texts: dict[str, str]) -> list[str]:
    """Return the queries found in any PDF's text (case-insensitive, whitespace collapsed)."""
    corpus = " ".join(texts.values()).lower()
    return [q for q in queries if " ".join(q.split()).lower() in corpus]


def answers_found(questions: list[Question], texts: dict[str, str], words: int = 8) -> int:
    """Count answers whose first `words` words appear in their own PDF's text (a positive control)."""
    return sum(" ".join(q.answer.lower().split()[:words]) in texts[q.file].lower() for q in questions)


def build(out_dir: Path, min_words: int, force: bool) -> None:
    """Print the FAQ chapters, write questions.jsonl and the manifest, and run the heading leak check."""
    dp.ensure_packages([*dp.TOOL_PACKAGES, PACKAGE])
    settings = dp.build_settings(PACKAGE, min_words=min_words)
    if not force and dp.manifest_matches(out_dir, settings) and (out_dir / "questions.jsonl").exists():
        print(f"{out_dir} is up to date ({settings['version']}); nothing to do")
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    dp.clear_pdfs(out_dir)
    start = time.monotonic()
    files, questions, skipped, asked, texts = [], [], {"not_question": 0, "short": 0}, [], {}
    for index, html in enumerate(chapter_files(HTML_DIR), start=1):
        pdf_name = f"{index:02d}-{html.removesuffix('.en.html')}.pdf"
        root, sections = read_chapter(HTML_DIR / html, pdf_name)
        title = dp.text_of(root.find(f"{dp.X}head/{dp.X}title"))
        doc = dp.new_document(title, HTML_DIR, ["debian.css"], dp.content_of(root))
        dp.print_pdf(doc, out_dir / pdf_name)
        texts[pdf_name] = dp.pdf_text(out_dir / pdf_name)
        kept = 0
        for question in sections:
            asked += [question.query] if "?" in question.query else []
            reason = skip_reason(question, min_words)
            if reason:
                skipped[reason] += 1
            else:
                questions.append(question)
                kept += 1
        pages = dp.pdf_pages(out_dir / pdf_name)
        files.append({"file": pdf_name, "title": title, "html": [html], "pages": pages, "questions": kept})
        print(f"{pdf_name:32s} {pages:3d} pages {kept:3d} questions", flush=True)
    check_unique_ids(questions)
    leaks = leaked_headings(asked, texts)
    print(
        f"heading leak check: {len(leaks)} of {len(asked)} question headings found in the PDFs' pdftotext "
        "text (case-insensitive, whitespace collapsed)"
    )
    for leak in leaks:
        print("  LEAK:", leak)
    found = answers_found(questions, texts)
    print(f"answer text check: {found} of {len(questions)} answers' first 8 words found in their PDF's text")
    write_questions(out_dir / "questions.jsonl", questions)
    counts = {
        "pdfs": len(files),
        "total_pages": sum(f["pages"] for f in files),
        "sections": len(questions) + sum(skipped.values()),
        "questions": len(questions),
        "skipped_not_question": skipped["not_question"],
        "skipped_short_answer": skipped["short"],
        "heading_leaks": len(leaks),
        "answers_found_in_pdf": found,
    }
    dp.write_manifest(out_dir, {"settings": settings, "files": files, **counts})
    print(", ".join(f"{k} {v}" for k, v in counts.items()), f"({time.monotonic() - start:.0f} s)")
    if leaks:
        raise SystemExit("question headings survive in the PDF text; see LEAK lines above")


def check_unique_ids(questions: list[Question]) -> None:
    """Fail when two questions share an id (the ids are the FAQ's section anchors)."""
    ids = [q.id for q in questions]
    duplicates = sorted({i for i in ids if ids.count(i) > 1 or not i})
    if duplicates:
        raise SystemExit(f"duplicate or empty question ids: {duplicates}")


def write_questions(path: Path, questions: list[Question]) -> None:
    """Write one JSON object per line: id, query, file, answer."""
    with path.open("w") as f:
        for q in questions:
            record = {"id": q.id, "query": q.query, "file": q.file, "answer": q.answer}
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and build the benchmark."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=dp.BENCH_DIR / "debian-faq", help="output folder")
    parser.add_argument("--min-words", type=int, default=15, help="skip answers shorter than this")
    parser.add_argument("--force", action="store_true", help="rebuild even when the manifest is up to date")
    args = parser.parse_args(argv)
    build(args.out, args.min_words, args.force)


if __name__ == "__main__":
    main()
