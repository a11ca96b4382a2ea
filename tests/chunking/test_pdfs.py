"""PDF loading and cleaning: every cleaning step, every kind of bad file, a folder of good and bad files."""

from __future__ import annotations

from pathlib import Path

import pymupdf
import pytest

from helpers.chunking.pdfs import (
    NO_TEXT_LAYER,
    CleanOptions,
    cleaning_stages,
    document_texts,
    first_change,
    fix_mojibake,
    hyphenated_words,
    is_page_number,
    join_hyphenated,
    load_pdfs,
    normalize_ligatures,
    normalize_whitespace,
    remove_repeating_lines,
)
from helpers.core.schema import Page

HEADINGS = ["1 Receipts", "2 Booking travel", "3 Devices"]
BODY = [
    "Receipts must be kept for every claim. The finance team checks each one.",
    "Travel is booked through the approved agency. Economy class is the default.",
    "Laptops are encrypted. Lost devices are reported to the service desk at once.",
]


def make_pdf(path: Path, pages: list[str], title: str = "", header: str = "") -> Path:
    """A PDF with one HTML box of text per page, an optional running header and a page-number footer."""
    doc = pymupdf.open()
    for i, html in enumerate(pages, start=1):
        page = doc.new_page()
        if header:
            page.insert_text((72, 40), header, fontsize=9)
        page.insert_htmlbox(pymupdf.Rect(72, 72, 520, 700), html)
        page.insert_text((280, 800), f"Page {i} of {len(pages)}", fontsize=9)
    if title:
        doc.set_metadata({"title": title})
    doc.save(path)
    return path


def image_only_pdf(path: Path) -> Path:
    """A 'scanned' page: an image and no text layer."""
    doc = pymupdf.open()
    pix = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 40, 40), 0)
    pix.clear_with(180)
    doc.new_page().insert_image(pymupdf.Rect(72, 72, 400, 400), pixmap=pix)
    doc.save(path)
    return path


# --- cleaning steps -------------------------------------------------------------------------------


@pytest.mark.parametrize(("broken", "fixed"), [
    ("Willison‚Äôs weblog", "Willison’s weblog"),
    ("a personâ€™s risk", "a person’s risk"),
    ("Migraine TrainerÂ® resources", "Migraine Trainer® resources"),
])
def test_fix_mojibake_repairs_wrong_codecs(broken, fixed):
    assert fix_mojibake(broken) == fixed


def test_fix_mojibake_keeps_curly_quotes_and_ligatures():
    text = "“Quoted” ﬁnance"
    assert fix_mojibake(text) == text


def test_normalize_ligatures():
    assert normalize_ligatures("ﬁnance ﬂow oﬀer oﬃce baﬄe") == "finance flow offer office baffle"
    assert normalize_ligatures("“Quoted” it’s") == "“Quoted” it’s"
    assert normalize_ligatures("“Quoted” it’s", straight_quotes=True) == "\"Quoted\" it's"


def test_join_hyphenated_joins_lowercase_breaks_only():
    assert join_hyphenated("the pol-\nicy applies") == "the policy applies"
    assert join_hyphenated("soft\xad\nhyphen") == "softhyphen"
    assert join_hyphenated("see COVID-\n19 and Anglo-\nSaxon") == "see COVID-\n19 and Anglo-\nSaxon"
    assert join_hyphenated("a well-known rule") == "a well-known rule"


def test_join_hyphenated_keeps_compounds_the_document_writes_with_a_hyphen():
    pages = ["A high-risk country.", "Go to a high-\nrisk country with a travel lap-\ntop."]
    assert cleaning_stages(pages)["join_hyphenated"][1] == "Go to a high-risk country with a travel laptop."
    assert hyphenated_words(pages) == {"high-risk"}


def test_normalize_whitespace_reflows_lines_and_keeps_paragraphs():
    text = "First  line\nof a\tparagraph.\n \n\n\nSecond\xa0paragraph:\n• item one\n• item two\n"
    expected = "First line of a paragraph.\n\nSecond paragraph:\n• item one\n• item two"
    assert normalize_whitespace(text) == expected


@pytest.mark.parametrize("line", ["12", "- 12 -", "Page 3", "page 3 of 10", "3 / 10"])
def test_page_numbers(line):
    assert is_page_number(line)


@pytest.mark.parametrize("line", ["3.2 Receipts", "12 receipts were lost", "Page layout"])
def test_not_page_numbers(line):
    assert not is_page_number(line)


def test_remove_repeating_lines_drops_headers_footers_and_page_numbers():
    pages = [f"ACME Handbook — Travel\n\n{body}\n\nConfidential · rev {i}\n{i}" for i, body in
             enumerate(BODY, start=1)]
    assert remove_repeating_lines(pages) == BODY


def test_remove_repeating_lines_keeps_body_lines_and_single_pages():
    pages = [f"Intro {n}\nSame sentence in the middle.\nEnd {n}" for n in ("one", "two", "three")]
    assert remove_repeating_lines(pages, edge_lines=1) == pages
    assert remove_repeating_lines(["Header\nBody text"]) == ["Header\nBody text"]


# --- loading --------------------------------------------------------------------------------------


def test_load_pdf_cleans_and_numbers_pages(tmp_path):
    html = [f"<h2>{h}</h2><p>{body}</p>" for h, body in zip(HEADINGS, BODY, strict=True)]
    html[0] += "<p>The ﬁnance team’s pol-<br>icy and personâ€™s rights.</p>"
    make_pdf(tmp_path / "policy.pdf", html, title="Travel Policy", header="ACME Handbook — Travel")
    result = load_pdfs(tmp_path / "policy.pdf", progress=False)
    assert result.problems == []
    assert [(p.source, p.page, p.title) for p in result.pages] == [("policy.pdf", i, "Travel Policy")
                                                                    for i in (1, 2, 3)]
    first = result.pages[0].text
    assert first.startswith("1 Receipts\n\nReceipts must be kept")
    assert "The finance team’s policy and person’s rights." in first
    assert all("ACME" not in p.text and "Page " not in p.text for p in result.pages)


def test_each_cleaning_step_can_be_switched_off(tmp_path):
    make_pdf(tmp_path / "a.pdf", ["<p>The ﬁnance pol-<br>icy.</p>", f"<p>{BODY[0]}</p>"],
             header="Running header")
    raw = load_pdfs(tmp_path, CleanOptions(False, False, False, False, False), progress=False).pages[0].text
    assert "ﬁnance" in raw and "pol-\nicy" in raw and "Running header" in raw and "Page 1 of 2" in raw
    cleaned = load_pdfs(tmp_path, progress=False).pages[0].text
    assert cleaned == "The finance policy."


def test_title_falls_back_to_first_line_then_file_stem(tmp_path):
    make_pdf(tmp_path / "a.pdf", ["<h1>Remote Work Guide</h1><p>Work from home on Fridays.</p>"])
    make_pdf(tmp_path / "b_notes.pdf", ["<p>" + "A first line that is a sentence, no title. " * 3 + "</p>"])
    titles = {p.source: p.title for p in load_pdfs(tmp_path, progress=False).pages}
    assert titles == {"a.pdf": "Remote Work Guide", "b_notes.pdf": "b_notes"}


def test_cleaning_stages_and_first_change():
    pages = ["Header\nThe ﬁrst pol-\nicy.", "Header\nThe second one."]
    stages = cleaning_stages(pages, CleanOptions(fix_mojibake=False))
    assert list(stages) == ["raw", "normalize_ligatures", "remove_repeating_lines", "join_hyphenated",
                            "normalize_whitespace"]
    assert stages["normalize_whitespace"] == ["The first policy.", "The second one."]
    assert first_change(stages["raw"][0], stages["normalize_ligatures"][0], context=5) == ("\nThe ﬁrst ",
                                                                                           "\nThe first")
    assert first_change("same", "same") == ("", "")


def test_document_texts_join_pages_in_order():
    pages = [Page("two", "d.pdf", 2), Page("one", "d.pdf", 1), Page("x", "e.pdf", 1)]
    assert document_texts(pages) == {"d.pdf": "one\n\ntwo", "e.pdf": "x"}


# --- bad input ------------------------------------------------------------------------------------


def _encrypted(path: Path) -> None:
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "Secret text")
    doc.save(path, encryption=pymupdf.PDF_ENCRYPT_AES_256, owner_pw="owner", user_pw="user")


def _truncated(path: Path) -> None:
    make_pdf(path, ["<p>Soon to be cut in half.</p>"])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


BAD_FILES = {
    "encrypted.pdf": (_encrypted, "encrypted"),
    "truncated.pdf": (_truncated, "corrupt or truncated"),
    "webpage.pdf": (lambda p: p.write_text("<html><body>Not a PDF</body></html>"), "not a PDF"),
    "scanned.pdf": (image_only_pdf, NO_TEXT_LAYER),
    "empty.pdf": (lambda p: p.write_bytes(b""), "empty file"),
}


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_bad_file_gives_one_line_reason(tmp_path, name):
    make, reason = BAD_FILES[name]
    make(tmp_path / name)
    result = load_pdfs(tmp_path / name, progress=False)
    assert result.pages == []
    assert len(result.problems) == 1
    assert result.problems[0].path == name
    assert reason in result.problems[0].reason and "\n" not in result.problems[0].reason


def test_missing_path_is_a_problem(tmp_path):
    result = load_pdfs(tmp_path / "nowhere", progress=False)
    assert result.pages == [] and "missing" in result.problems[0].reason


def test_folder_with_good_and_bad_files_keeps_the_good_pages(tmp_path, capsys):
    for name, (make, _) in BAD_FILES.items():
        make(tmp_path / name)
    (tmp_path / "sub").mkdir()
    make_pdf(tmp_path / "sub" / "good.pdf", [f"<p>{b}</p>" for b in BODY])
    make_pdf(tmp_path / "zz_good.pdf", [f"<p>{BODY[0]}</p>"])
    (tmp_path / "notes.txt").write_text("not a pdf and not named like one")
    result = load_pdfs(tmp_path, progress=False)
    assert [(p.source, p.page) for p in result.pages] == [("sub/good.pdf", 1), ("sub/good.pdf", 2),
                                                          ("sub/good.pdf", 3), ("zz_good.pdf", 1)]
    assert sorted(p.path for p in result.problems) == sorted(BAD_FILES)
    out = capsys.readouterr().out
    assert "Loaded 4 pages from 2 documents; 5 problems." in out
    assert "scanned.pdf: no text layer (scanned?)" in out


def test_a_truncated_pdf_read_in_part_is_a_problem_named_in_the_report(tmp_path, capsys):
    from helpers.chunking.chunkers import build_chunks
    from helpers.core.config import SAMPLE_CORPUS_DIR, run_paths
    from helpers.pipeline.run_report import corpus_section

    data = (SAMPLE_CORPUS_DIR / "data-retention-and-privacy-policy.pdf").read_bytes()
    pdfs = tmp_path / "pdfs"
    pdfs.mkdir()
    (pdfs / "cut.pdf").write_bytes(data[:100_000])  # of 108,477 bytes: MuPDF repairs it, pages 7-9 are lost
    result = load_pdfs(pdfs, progress=False)
    assert {p.page for p in result.pages} == {1, 2, 3, 4, 5, 6}
    assert [str(p) for p in result.problems] == [
        "cut.pdf: truncated or damaged: 6 of 9 declared pages read (pages 7-9 lost); the pages read are kept"]
    assert "Loaded 6 pages from 1 documents; 1 problems." in capsys.readouterr().out

    paths = run_paths("r", tmp_path / "runs")
    build_chunks(pdfs, paths.chunks)
    assert "cut.pdf: truncated or damaged: 6 of 9 declared pages read" in corpus_section(paths).text


def test_an_intact_pdf_has_no_lost_pages(tmp_path):
    make_pdf(tmp_path / "whole.pdf", [f"<p>{b}</p>" for b in BODY])
    assert load_pdfs(tmp_path / "whole.pdf", progress=False).problems == []
