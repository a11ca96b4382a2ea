"""The bundled sample corpus and its gold questions: sizes, PDF stress features, evidence that exists.

Uses pymupdf directly (not helpers.chunking.pdfs), so it checks the data, not the loader.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from functools import cache
from pathlib import Path

import pymupdf
import pytest

from helpers.core.config import SAMPLE_CORPUS_DIR
from helpers.core.gold import load_gold, normalize_for_matching, relevant_chunk_ids

PDFS = sorted(SAMPLE_CORPUS_DIR.glob("*.pdf"))
GOLD = load_gold()


@cache
def raw_text(name: str) -> str:
    with pymupdf.open(SAMPLE_CORPUS_DIR / name) as doc:
        return "\n".join(page.get_text() for page in doc)


@cache
def normalized_text(name: str) -> str:
    return normalize_for_matching(raw_text(name))


def test_corpus_size():
    assert 4 <= len(PDFS) <= 6
    pages = [pymupdf.open(p).page_count for p in PDFS]
    assert 30 <= sum(pages) <= 60 and min(pages) >= 5
    assert sum(p.stat().st_size for p in PDFS) < 2 * 1024 * 1024


def test_every_pdf_has_sources_and_metadata():
    for pdf in PDFS:
        assert (SAMPLE_CORPUS_DIR / "src" / f"{pdf.stem}.md").exists()
        meta = pymupdf.open(pdf).metadata
        assert meta["title"] and meta["author"] == "Larkspur Research Institute"
        assert meta["creationDate"].startswith("D:20"), "a fixed date from the source, not the render time"


@pytest.mark.parametrize("pdf", PDFS, ids=lambda p: p.name)
def test_extracted_text_shows_the_stress_features(pdf):
    text = raw_text(pdf.name)
    n_pages = pymupdf.open(pdf).page_count
    assert "\ufb01" in text or "\ufb02" in text, "ligature characters"
    assert re.search(r"[a-z]-\n[a-z]", text), "words hyphenated at a line end"
    assert "\u2019" in text, "curly apostrophes"
    footers = re.findall(r"Page (\d+) of (\d+)", text)
    assert [int(n) for n, _ in footers] == list(range(1, n_pages + 1))
    assert {int(m) for _, m in footers} == {n_pages}
    title = pymupdf.open(pdf).metadata["title"]
    assert text.count(title) >= n_pages - 1, "running header with the title on every body page"
    assert re.search(r"^\d+\.\d+ \w", text, re.M), "numbered subsections"


def test_corpus_has_a_table_a_two_column_page_and_footnotes():
    tables = two_column = footnotes = 0
    for pdf in PDFS:
        for page in pymupdf.open(pdf):
            tables += page.number > 0 and len(page.get_drawings()) >= 10  # table grid lines, cover excluded
            lefts = {round(b[0]) for b in page.get_text("blocks") if 100 < b[1] < 700}
            two_column += any(x > page.rect.width / 2 - 20 for x in lefts) and min(lefts, default=999) < 100
            footnotes += bool(re.search(r"^\d [A-Z]", page.get_text(), re.M))
    assert tables >= 5 and two_column >= 3 and footnotes >= 5


def test_gold_set_shape():
    ids = [q.id for q in GOLD]
    assert len(ids) == len(set(ids)) >= 150
    types = Counter(q.type for q in GOLD)
    assert types["unanswerable"] >= 8 and types["multi_section"] >= 15
    assert types["keyword"] >= 25 and types["paraphrase"] >= 25
    for q in GOLD:
        if q.answerable:
            assert q.evidence and q.reference_answer
        else:
            assert q.evidence == () and q.reference_answer is None
        if q.type == "multi_section":
            assert len(q.evidence) == 2


def test_every_evidence_quote_is_in_its_pdf():
    names = {p.name for p in PDFS}
    missing = []
    for q in GOLD:
        for ev in q.evidence:
            assert ev.document in names, f"{q.id}: unknown document {ev.document}"
            n_words = len(normalize_for_matching(ev.quote).split())
            assert 8 <= n_words <= 40, f"{q.id}: quote of {n_words} words"
            if normalize_for_matching(ev.quote) not in normalized_text(ev.document):
                missing.append(f"{q.id}: {ev.quote[:60]}")
    assert not missing, "quotes not found in the extracted text:\n" + "\n".join(missing)


def test_every_evidence_quote_is_verbatim_in_the_sources():
    sources = {p.stem + ".pdf": " ".join(p.read_text(encoding="utf-8").replace("**", "").split())
               for p in (SAMPLE_CORPUS_DIR / "src").glob("*.md")}
    for q in GOLD:
        for ev in q.evidence:
            assert ev.quote in sources[ev.document], f"{q.id}: not verbatim in the source"


def _naive_chunks(size: int, step: int) -> list[dict]:
    """Character windows over the raw extracted text: headers, footers and hyphens left in."""
    chunks = []
    for pdf in PDFS:
        text = raw_text(pdf.name)
        chunks += [{"id": f"{pdf.name}@{i}", "text": text[i:i + size], "source": str(pdf)}
                   for i in range(0, len(text), step)]
    return chunks


@pytest.mark.parametrize(("size", "step"), [(900, 700), (600, 600)], ids=["overlap", "no-overlap"])
def test_every_answerable_question_has_relevant_chunks(size, step):
    chunks = _naive_chunks(size, step)
    relevant = relevant_chunk_ids(GOLD, chunks)
    assert set(relevant) == {q.id for q in GOLD if q.answerable}
    assert not [qid for qid, ids in relevant.items() if not ids]
    for q in GOLD:
        for cid in relevant.get(q.id, ()):
            assert any(cid.startswith(ev.document) for ev in q.evidence)


@pytest.mark.skipif(not os.environ.get("KIT_CHECK_RENDER"), reason="set KIT_CHECK_RENDER=1 (needs reportlab)")
def test_render_is_reproducible():
    import subprocess
    import sys

    script = Path(SAMPLE_CORPUS_DIR) / "render.py"
    assert subprocess.run([sys.executable, str(script), "--check"], check=False).returncode == 0
