"""Chunking: each strategy's invariants (token limit, spans, ids, pages, headings), filters, artifacts."""

from __future__ import annotations

import json

import pymupdf
import pytest

from helpers.chunking.chunkers import (
    CHUNKERS,
    STRATEGIES,
    TokenBudget,
    boilerplate_reason,
    build_chunks,
    chunk_documents,
    filter_chunks,
    fit_spans,
    is_heading,
    load_chunks,
    plot_chunk_lengths,
    save_chunks,
    sections,
    token_budget,
)
from helpers.chunking.pdfs import document_texts, fix_mojibake, normalize_whitespace
from helpers.core.schema import Chunk, Page, chunk_id

MAX_TOKENS = 64  # a small model limit, so that every strategy has to split

# Navigation boilerplate scraped from a web page, as found in a published fine-tuning dataset (seed 003):
# a government-site banner, menus and a site-feedback form; items ("|") were separated by blank lines.
SEED_NAVIGATION = ["\n\n\n".join(items.split("|")) for items in [
    "Amyotrophic Lateral Sclerosis (ALS) | National Institute of Neurological Disorders and Stroke"
    "|      Skip to main content\n    |An official website of the United States government"
    "|            Hereâ€™s how you know|Official websites use .gov \n                A\n     .gov"
    "\n                website belongs to an official government organization in the United States."
    "|Secure .gov websites use HTTPS|                  A lock\n                  (|)\n   or\n   https://"
    "\n  means youâ€™ve safely connected to the .gov website. Share sensitive information only on "
    "official, secure websites.|Search|Menu|Search NINDS|Search NINDS|Main navigation",
    "Migraine TrainerÂ® Shareable Resources|Mind Your RisksÂ®|NINDS Brain Educational Resources|Stroke"
    "|Stroke Overview|Prevention|Signs and Symptoms|Assess and Treat|NIH Stroke Scale|Recovery|Research"
    "|Outreach|Did you find the content you were looking for?|Yes, I did find the content I was looking for"
    "|No, I did not find the content I was looking for|Please rate how easy it was to navigate the NINDS "
    "website|Very easy to navigate|Easy to navigate|Neutral|Difficult to navigate|Very difficult to navigate"
    "|Thank you for letting us know! Any other feedback?|Submit|This site is protected by reCAPTCHA and the "
    "GoogleÂ\xa0Privacy Policyand Terms of Serviceapply.|                Last reviewed on July 19, 2024\n    "
    "|Contact Us",
    "Motor Neuron DiseasesÂ\xa0|Order publications from the NINDS Catalog\nThe NINDS Publication Catalog "
    "offers printed materials on neurological disorders for patients, health professionals, and the general "
    "public. All materials are free of charge, and a downloadable PDF version is also available for most "
    "publications.\nOrder NINDS Publications|Â\xa0|Health Information|Disorders|Glossary of Neurological "
    "Terms|Order Publications|Clinical Trials|Clinical Trials in the Spotlight|Find NINDS Clinical Trials"
    "|Patient & Caregiver Education|Brain Attack Coalition|Brain Donation|Public Education|Brain Basics"
    "|Know Your Brain|Understanding Sleep|Preventing Stroke|The Life and Death of a Neuron"
    "|Genes and the Brain|Migraine TrainerÂ®|Migraine TrainerÂ® Shareable Resources",
]]
TABLE_OF_CONTENTS = ("Contents\n\nIntroduction .......... 3\n1 Scope and purpose .......... 4\n"
                     "2 Roles and responsibilities .......... 6\n3 Receipts . . . . . . . . 9\n"
                     "4 Travel .......... 12")
COOKIE_BANNER = ("We use cookies to improve your experience. By continuing you agree to our cookie policy. "
                 "Accept all cookies or manage your cookie settings.")
CONTENT = [
    "Muscle twitches in the arm, leg, shoulder, or tongue\nMuscle cramps\nTight and stiff muscles "
    "(spasticity)\nMuscle weakness affecting an arm, a leg, or the neck\nSlurred and nasal speech",
    "Receipts must be kept for every claim over ten euros. Claims without receipts are refused, unless the "
    "line manager confirms the expense in writing within thirty days.",
    "Contact us at the service desk if you lose a laptop. If you have questions about this privacy policy, "
    "write to the data protection officer, who answers within five working days.",
]

SENTENCES = ("Receipts must be kept for every claim over ten euros and uploaded within thirty days. "
             "The finance team checks each claim against the policy before it is paid. ")
NUMBERS = ["one", "two", "three", "four", "five", "six"]


def sentences(n: int, thing: str = "claim") -> str:
    """``n`` distinct sentences about ``thing``."""
    return "".join(f"Rule {NUMBERS[i]}: every {thing} over {10 * (i + 1)} euros needs a receipt uploaded "
                   f"within {i + 2} weeks, and the finance team checks it before paying. " for i in range(n))


def policy_pages() -> list[Page]:
    """Two documents; doc a has numbered sections, a long section, stacked headings and a preamble."""
    page1 = ("This handbook explains how staff claim expenses.\n\n1 Purpose\n\n" + SENTENCES + "alpha\n\n"
             "2 Receipts\n\n" + sentences(6) + "alpha")
    page2 = "Chapter 3\n\n3.1 Travel Booking\n\n" + sentences(3, "ticket") + "bravo"
    page3 = "Section 4\n\nLaptops are encrypted and lost devices are reported at once. charlie"
    other = " ".join(f"Remote work is allowed {n} days a week when the line manager agrees." for n in NUMBERS)
    return [Page(page1, "a.pdf", 1, "Expenses Handbook"), Page(page2, "a.pdf", 2, "Expenses Handbook"),
            Page(page3, "a.pdf", 4, "Expenses Handbook"), Page(other, "b/remote.pdf", 1, "Remote Work")]


def body_of(chunk: Chunk) -> str:
    return chunk.text[len(chunk.heading) + 1:] if chunk.heading else chunk.text


@pytest.fixture(scope="module")
def budget():
    return token_budget(max_tokens=MAX_TOKENS)


@pytest.fixture(scope="module")
def chunked(budget) -> dict[str, list[Chunk]]:
    size = {"recursive": (200, 40)}  # characters; the others count tokens
    return {s: chunk_documents(policy_pages(), s, *size.get(s, (48, 8)), max_tokens=MAX_TOKENS,
                               progress=False)
            for s in STRATEGIES}


@pytest.mark.parametrize("strategy", list(CHUNKERS))
def test_every_registered_chunker_runs_on_a_small_text(strategy):
    """An entry of the registry, at its default sizes, chunks a short document into spans of its text."""
    text = "Why bees dance\n\n" + sentences(4) + "\n\nHow hives keep warm\n\n" + sentences(3)
    pages = [Page(text=text, source="small.pdf", page=1, title="Bees")]
    chunks = chunk_documents(pages, strategy, max_tokens=MAX_TOKENS, progress=False)
    assert chunks and all(c.source == "small.pdf" and c.pages == [1] for c in chunks)
    assert all(body_of(c) == document_texts(pages)["small.pdf"][c.start:c.end] for c in chunks)
    assert tuple(CHUNKERS) == STRATEGIES


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_spans_map_back_to_the_document_text(chunked, strategy):
    texts = document_texts(policy_pages())
    assert chunked[strategy]
    for chunk in chunked[strategy]:
        assert texts[chunk.source][chunk.start:chunk.end] == body_of(chunk)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_token_counts_are_the_tokenizers(chunked, budget, strategy):
    chunks = chunked[strategy]
    assert [c.n_tokens for c in chunks] == budget.count([c.text for c in chunks])


@pytest.mark.parametrize("strategy", ["token", "structure"])
def test_no_chunk_exceeds_the_model_limit(chunked, budget, strategy):
    assert budget.passage_limit == MAX_TOKENS - 2  # [CLS] and [SEP]
    assert max(c.n_tokens for c in chunked[strategy]) <= budget.passage_limit


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_ids_are_stable_across_runs(chunked, strategy):
    again = chunk_documents(policy_pages(), strategy, *( (200, 40) if strategy == "recursive" else (48, 8)),
                            max_tokens=MAX_TOKENS, progress=False)
    assert [c.id for c in again] == [c.id for c in chunked[strategy]]
    assert all(c.id == chunk_id(c.source, c.text) for c in again)
    assert len({c.id for c in again}) == len(again)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_pages_are_the_pages_the_span_touches(chunked, strategy):
    markers = {"alpha": 1, "bravo": 2, "charlie": 4}
    for chunk in chunked[strategy]:
        if chunk.source == "a.pdf":
            assert {p for word, p in markers.items() if word in body_of(chunk)} <= set(chunk.pages)
            assert chunk.pages == sorted(chunk.pages) and set(chunk.pages) <= {1, 2, 4}
        else:
            assert chunk.pages == [1]


def test_a_chunk_across_page_breaks_lists_every_page():
    chunks = chunk_documents(policy_pages(), "recursive", 4000, 0, progress=False)
    assert [c.pages for c in chunks] == [[1, 2, 4], [1]]  # a.pdf has no text on page 3


def test_structure_chunks_carry_their_heading(chunked):
    chunks = [c for c in chunked["structure"] if c.source == "a.pdf"]
    headings = [c.heading for c in chunks]
    assert headings[0] == "Expenses Handbook"  # the preamble takes the document title
    assert {"1 Purpose", "2 Receipts", "Chapter 3 > 3.1 Travel Booking", "Section 4"} <= set(headings)
    assert headings.count("2 Receipts") > 1  # an oversize section is split, each part keeps the heading
    assert all(c.text.startswith(c.heading + "\n") for c in chunks)
    assert not any(c.text.endswith(h) for c in chunks for h in ("1 Purpose", "2 Receipts"))


def test_fit_spans_resplits_pieces_whose_joined_text_has_more_tokens(budget):
    class Inflated(TokenBudget):  # a tokenizer whose counts are not additive, as with some BPE vocabularies
        def count(self, texts):
            return [n + 5 for n in super().count(texts)]

    inflated = Inflated(budget.tokenizer, budget.max_tokens)
    text = sentences(6)
    spans = fit_spans(text, 100, inflated, 40, 0)
    assert max(inflated.count([text[s - 100:e - 100] for s, e in spans])) <= 40
    assert all(text[s - 100:e - 100].strip() for s, e in spans) and spans == sorted(spans)


def test_recursive_chunks_over_the_limit_are_reported_not_truncated(capsys):
    chunks = chunk_documents(policy_pages(), "recursive", 2000, 0, max_tokens=MAX_TOKENS, progress=False)
    assert max(c.n_tokens for c in chunks) > MAX_TOKENS
    assert "exceed the model's 62 tokens" in capsys.readouterr().out


def test_stacked_headings_longer_than_a_passage_keep_their_innermost_levels(budget):
    rows = [f"Option {w.title()} {n.title()}" for w in ("alpha", "bravo", "charlie", "delta", "echo")
            for n in NUMBERS]  # 30 one-line rows that look like headings: about 150 tokens stacked
    page = Page("\n\n".join(rows) + "\n\n" + sentences(4), "ref.pdf", 1, "Reference")
    chunks = chunk_documents([page], "structure", 48, 8, max_tokens=MAX_TOKENS, progress=False)
    assert chunks and all(c.n_tokens <= MAX_TOKENS for c in chunks)
    assert {c.heading for c in chunks} == {chunks[0].heading}
    assert " > ".join(rows).endswith(chunks[0].heading) and chunks[0].heading.endswith("Option Echo Six")
    assert budget.count([chunks[0].heading + "\n"])[0] <= MAX_TOKENS // 2
    assert "Rule one" in body_of(chunks[0])


@pytest.mark.parametrize(("line", "expected"), [
    ("3.2 Receipts", True), ("Section 4", True), ("Chapter 12 Travel", True), ("Travel and Expenses", True),
    ("INTRODUCTION", True), ("What Is Covered?", True),
    ("The finance team checks each claim.", False), ("12 receipts were lost in transit", False),
    ("Muscle cramps", False), ("Field: value", False), ("2024", False),
])
def test_is_heading(line, expected):
    assert is_heading(line) is expected


def test_sections_join_stacked_headings_and_skip_empty_bodies():
    text = "Intro text here.\n\nChapter 1\n\n1.1 Scope\n\nBody one.\n\n1.2 Empty\n\n1.3 Last\n\nBody two."
    found = [(s.heading, text[s.start:s.end]) for s in sections(text, "Title")]
    assert found == [("Title", "Intro text here."), ("Chapter 1 > 1.1 Scope", "Body one."),
                     ("1.2 Empty > 1.3 Last", "Body two.")]


def test_bad_settings_raise_clear_errors():
    with pytest.raises(ValueError, match="Unknown chunking strategy 'semantic'"):
        chunk_documents(policy_pages(), "semantic")
    with pytest.raises(ValueError, match="chunk_overlap must be"):
        chunk_documents(policy_pages(), "token", chunk_size=32, chunk_overlap=32)
    with pytest.raises(TypeError, match="tokenizer must be"):
        token_budget("bert-base-uncased")


# --- filters --------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", SEED_NAVIGATION)
def test_seed_navigation_boilerplate_is_detected(raw):
    assert boilerplate_reason(raw) == "navigation"
    assert boilerplate_reason(normalize_whitespace(fix_mojibake(raw))) == "navigation"


def test_toc_and_cookie_banner_are_detected():
    assert boilerplate_reason(TABLE_OF_CONTENTS) == "table_of_contents"
    assert boilerplate_reason(COOKIE_BANNER) == "cookie_banner"


@pytest.mark.parametrize("text", CONTENT)
def test_content_is_not_boilerplate(text):
    assert boilerplate_reason(text) is None


def test_filter_chunks_drops_and_counts(chunked):
    def chunk(text: str, source: str = "x.pdf") -> Chunk:
        return Chunk(text=text, source=source, pages=[1], start=0, end=len(text))

    long = CONTENT[1] + " " + sentences(6)
    near = long.replace("ten euros", "twelve euros")
    chunks = ([chunk(t) for t in CONTENT] + [chunk(long, "y.pdf"), chunk(near)]
              + [chunk(CONTENT[1].upper().replace(" ", "  "), "z.pdf"), chunk("Page 3"), chunk(COOKIE_BANNER)]
              + [chunk(TABLE_OF_CONTENTS)] + [chunk(t) for t in SEED_NAVIGATION])
    kept, dropped = filter_chunks(chunks)
    assert [c.text for c in kept] == CONTENT + [long]
    assert dropped == {"near_duplicate": 1, "duplicate": 1, "too_short": 1, "cookie_banner": 1,
                       "table_of_contents": 1, "navigation": 3}
    assert filter_chunks(chunked["token"])[1] == {}  # real content loses nothing


# --- artifacts ------------------------------------------------------------------------------------


def test_save_and_load_round_trip(chunked, tmp_path):
    path = tmp_path / "chunks.jsonl"
    assert save_chunks(chunked["structure"], path) == len(chunked["structure"])
    assert load_chunks(path) == chunked["structure"]
    with pytest.raises(FileNotFoundError, match="run the chunking stage first"):
        load_chunks(tmp_path / "missing.jsonl")


def test_build_chunks_writes_chunks_and_report(tmp_path):
    pdfs = tmp_path / "pdfs"
    pdfs.mkdir()
    doc = pymupdf.open()
    for page in policy_pages()[:3]:
        html = "".join(f"<p>{p}</p>" for p in page.text.split("\n\n"))
        doc.new_page().insert_htmlbox(pymupdf.Rect(50, 50, 550, 800), html)
    doc.save(pdfs / "handbook.pdf")
    (pdfs / "broken.pdf").write_bytes(b"%PDF-1.7 nothing else")
    out = tmp_path / "run" / "chunks.jsonl"
    summary = build_chunks(pdfs, out)
    chunks = load_chunks(out)
    report = json.loads((tmp_path / "run" / "chunks.report.json").read_text())
    assert report == summary
    assert (tmp_path / "run" / summary["plot"]).stat().st_size > 0
    assert summary["documents"] == 1 and summary["pages"] == 3 and summary["chunks"] == len(chunks) > 0
    assert [p.split(":")[0] for p in summary["problems"]] == ["broken.pdf"]
    assert "corrupt or truncated PDF" in summary["problems"][0]
    assert summary["strategy"] == "structure" and summary["settings"]["unit"] == "tokens"
    assert summary["tokens"]["over_limit"] == 0 and summary["tokens"]["limit"] == 254
    assert chunks[0].heading == "handbook"  # the preamble and the short section 1 are merged under the title
    assert "\n1 Purpose\n" in chunks[0].text and "2 Receipts" in {c.heading for c in chunks}


def test_build_chunks_without_text_says_why(tmp_path):
    (tmp_path / "empty.pdf").write_bytes(b"")
    with pytest.raises(ValueError, match="No text could be loaded"):
        build_chunks(tmp_path, tmp_path / "chunks.jsonl")


def test_plot_chunk_lengths_saves_a_figure(chunked, tmp_path):
    fig = plot_chunk_lengths(chunked, MAX_TOKENS - 2, tmp_path / "plots" / "lengths.png")
    assert len(fig.axes) == len(STRATEGIES)
    assert (tmp_path / "plots" / "lengths.png").stat().st_size > 0
