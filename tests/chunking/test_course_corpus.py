"""The course corpus (the Debian FAQ) and its gold questions: the FAQ's own, checked against every chunker."""

from __future__ import annotations

import json

import pytest

from helpers.chunking.chunkers import CHUNKERS, build_chunks, chunk_documents, filter_chunks
from helpers.chunking.pdfs import load_pdfs
from helpers.core.config import COURSE_CORPUS_DIR, RunPaths
from helpers.core.gold import (
    CORPUS_GOLD_FILENAME,
    check_gold,
    copy_corpus_gold,
    gold_path,
    load_gold,
    load_run_gold,
)

GOLD = COURSE_CORPUS_DIR / "gold_questions.jsonl"


def test_the_course_corpus_ships_its_pdfs_questions_and_licence_notice():
    pdfs = sorted(COURSE_CORPUS_DIR.glob("*.pdf"))
    manifest = json.loads((COURSE_CORPUS_DIR / "manifest.json").read_text())
    assert [p.name for p in pdfs] == [f["file"] for f in manifest["files"]] and len(pdfs) == 16
    assert manifest["heading_leaks"] == 0
    notice = (COURSE_CORPUS_DIR / "COPYRIGHT").read_text()
    assert "Software in the Public Interest" in notice and "Permission is granted" in notice
    questions = load_gold(GOLD)
    people = [q for q in questions if q.type == "faq"]
    assert len(people) == manifest["questions"] == 119 and all(q.answerable and q.evidence for q in people)
    refused = [q for q in questions if q.type != "faq"]
    assert refused and all(not q.answerable and not q.evidence for q in refused), "the kit's own: refusals"
    assert {e.document for q in questions for e in q.evidence} <= {p.name for p in pdfs}


@pytest.fixture(scope="module")
def pages():
    return load_pdfs(COURSE_CORPUS_DIR, progress=False).pages


@pytest.mark.parametrize("strategy", CHUNKERS)
def test_every_gold_quote_is_found_whatever_the_chunker(pages, strategy):
    chunks, _ = filter_chunks(chunk_documents(pages, strategy, progress=False))
    questions, problems = check_gold(GOLD, chunks)
    assert len(questions) == 125 and problems == []


def test_the_chunking_stage_brings_the_folder_s_gold_questions_into_the_run(tmp_path):
    paths = RunPaths(tmp_path / "run")
    paths.root.mkdir()
    summary = build_chunks(COURSE_CORPUS_DIR, paths.chunks)
    assert summary["gold_questions"] == 125
    assert gold_path(paths.root) == paths.root / CORPUS_GOLD_FILENAME
    chunks = [json.loads(line) for line in paths.chunks.read_text().splitlines()]
    assert [q.id for q in load_run_gold(paths.root, chunks)] == [q.id for q in load_gold(GOLD)]
    own = paths.root / "gold_questions.jsonl"
    own.write_text(GOLD.read_text().splitlines()[0] + "\n")
    assert gold_path(paths.root) == own, "questions the user wrote for the run come first"


def test_a_folder_without_gold_questions_leaves_no_stale_copy_behind(tmp_path):
    stale = tmp_path / CORPUS_GOLD_FILENAME
    stale.write_text(GOLD.read_text())
    assert copy_corpus_gold(tmp_path / "pdfs", stale) == 0 and not stale.exists()
