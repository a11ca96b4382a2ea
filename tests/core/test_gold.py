"""helpers.core.gold: loading the gold set, and finding the chunks that hold each evidence quote."""

from __future__ import annotations

import json

import pytest

from helpers.core.gold import (
    Evidence,
    GoldFormatError,
    GoldQuestion,
    load_gold,
    normalize_for_matching,
    relevant_chunk_ids,
)
from helpers.core.schema import Chunk

DOC = "travel-and-expenses-policy.pdf"
QUOTE = ("Expense claims must be submitted within 30 days of returning from the trip, "
         "with every receipt attached.")


def _q(quote: str = QUOTE, document: str = DOC, qid: str = "q1") -> GoldQuestion:
    evidence = (Evidence(document, quote),)
    return GoldQuestion(qid, "expense claim deadline", "keyword", True, evidence, "30 days")


def _chunk(cid: str, text: str, source: str = f"data/sample/{DOC}") -> dict:
    return {"id": cid, "text": text, "source": source}


# ----------------------------------------------------------------------------------- normalising
@pytest.mark.parametrize(("raw", "expected"), [
    ("Ex-\npense  claims\n\nmust be sub-\n  mitted", "expense claims must be submitted"),
    ("the con\ufb01dential \ufb01les are \ufb02agged", "the confidential files are flagged"),
    ("the Institute\u2019s \u201cpolicy\u201d", "the institute s policy"),
    ("the Institute\u00e2\u20ac\u2122s rules", "the institute s rules"),  # mojibake repaired by ftfy
    ("a follow-up call", "a followup call"),
    ("a follow-\nup call", "a followup call"),  # a compound broken at the line end matches too
    ("classi\u00adfi\u00adcation", "classification"),  # soft hyphens
    ("EUR 0.32 per kilometre; 121 \u00b0C", "eur 0 32 per kilometre 121 c"),
])
def test_normalize_for_matching(raw, expected):
    assert normalize_for_matching(raw) == expected


def test_normalisation_is_idempotent():
    text = "Pass-\nwords must be at least 14 characters long \u2014 \u201cﬁne\u201d."
    once = normalize_for_matching(text)
    assert normalize_for_matching(once) == once


# ------------------------------------------------------------------------------------ matching
def test_exact_and_messy_extractions_match():
    messy = ("Larkspur Research Institute\nEx-\npense claims must be sub-\nmitted within 30 days of re-\n"
             "turning from the trip, with every re\u00adceipt at\u00adtached.")
    chunks = [_chunk("exact", f"Some text. {QUOTE} More text."), _chunk("messy", messy),
              _chunk("other", "Hotels must be booked through the travel agency.")]
    assert relevant_chunk_ids([_q()], chunks) == {"q1": {"exact", "messy"}}


def test_ligatures_quotes_and_mojibake_match():
    quote = "The Institute's confidential files must be flagged in the register before they are shared."
    rest = "in the register before they are shared."
    text = f"The Institute\u00e2\u20ac\u2122s con\ufb01dential \ufb01les must be \ufb02agged {rest}"
    curly = f"The Institute\u2019s con\ufb01dential files must be flagged {rest}"
    chunks = [_chunk("mojibake", text), _chunk("curly", curly)]
    assert relevant_chunk_ids([_q(quote)], chunks)["q1"] == {"mojibake", "curly"}


def test_a_page_footer_inside_the_quote_is_tolerated():
    text = ("Expense claims must be submitted within 30 days of\n"
            "LRI-FIN-003 \u00b7 Version 2.3 \u00b7 Internal\n"
            "Page 5 of 7\nLarkspur Research Institute\nTravel and Expenses Policy\n"
            "returning from the trip, with every receipt attached.")
    assert relevant_chunk_ids([_q()], [_chunk("c", text)])["q1"] == {"c"}


def test_a_quote_split_across_two_chunks_marks_both():
    words = QUOTE.split()
    head, tail = " ".join(words[:9]), " ".join(words[9:])
    chunks = [_chunk("first", f"Approval rules and other matters come first. {head}"),
              _chunk("second", f"{tail} Approved claims are paid with the next payroll."),
              _chunk("unrelated", "Claims from visitors must be submitted by the host.")]
    assert relevant_chunk_ids([_q()], chunks)["q1"] == {"first", "second"}


def test_a_partial_copy_does_not_count_when_a_whole_copy_exists():
    words = QUOTE.split()
    chunks = [_chunk("whole", QUOTE), _chunk("part", " ".join(words[:8]) + " and then something else.")]
    assert relevant_chunk_ids([_q()], chunks)["q1"] == {"whole"}


def test_a_fragment_in_the_middle_of_a_chunk_is_not_a_split():
    words = QUOTE.split()
    fragment = " ".join(words[:7])
    chunks = [_chunk("middle", f"Before it there is text. {fragment}. After it there is other text too.")]
    assert relevant_chunk_ids([_q()], chunks)["q1"] == set()


def test_below_min_coverage_is_not_relevant():
    words = QUOTE.split()
    chunk = _chunk("c", " ".join(words[:12]) + " in all cases.")  # 12 of 17 words, not at a chunk edge
    chunk["text"] = "Intro words here. " + chunk["text"]
    assert relevant_chunk_ids([_q()], [chunk], min_coverage=0.8)["q1"] == set()
    assert relevant_chunk_ids([_q()], [chunk], min_coverage=0.6)["q1"] == {"c"}


def test_chunks_of_other_documents_are_ignored():
    chunks = [_chunk("elsewhere", QUOTE, source="leave-and-remote-work-policy.pdf"),
              _chunk("here", QUOTE, source=f"/abs/path/{DOC.upper()}")]
    assert relevant_chunk_ids([_q()], chunks)["q1"] == {"here"}


def test_chunk_objects_multiple_evidence_and_unanswerable():
    c1 = Chunk(text=f"Intro. {QUOTE}", source=DOC, pages=[5], start=0, end=10)
    c2 = Chunk(text="Hotels must be booked through Ardent Travel, the contracted travel agency, always.",
               source=DOC, pages=[3], start=10, end=20)
    two = GoldQuestion("m1", "q", "multi_section", True, (
        Evidence(DOC, QUOTE),
        Evidence(DOC, "Hotels must be booked through Ardent Travel, the contracted travel agency")), "a")
    none = GoldQuestion("u1", "parking fee?", "unanswerable", False)
    missing = _q("This sentence appears in no chunk at all, not even partly, anywhere.", qid="x1")
    result = relevant_chunk_ids([two, none, missing], [c1, c2])
    assert result == {"m1": {c1.id, c2.id}, "x1": set()}


# ------------------------------------------------------------------------------------- loading
def _row(**over) -> dict:
    row = {"id": "g1", "question": "expense deadline", "type": "keyword", "answerable": True,
           "evidence": [{"document": DOC, "quote": QUOTE}], "reference_answer": "30 days"}
    row.update(over)
    return row


def _write(tmp_path, rows) -> str:
    path = tmp_path / "gold.jsonl"
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def test_load_gold_reads_a_valid_file(tmp_path):
    rows = [_row(), _row(id="g2", type="unanswerable", answerable=False, evidence=[], reference_answer=None)]
    gold = load_gold(_write(tmp_path, rows))
    assert [q.id for q in gold] == ["g1", "g2"]
    assert gold[0].evidence == (Evidence(DOC, QUOTE),) and gold[1].reference_answer is None


@pytest.mark.parametrize(("row", "message"), [
    ("{not json", r"gold.jsonl:1: not valid JSON"),
    (_row(type="trivia"), "type 'trivia' is not one of"),
    ({"id": "g1", "question": "q"}, "missing field"),
    (_row(reference_answer=None), "needs evidence and a reference_answer"),
    (_row(evidence=[]), "needs evidence and a reference_answer"),
    (_row(type="unanswerable", answerable=False), "evidence \\[\\] and reference_answer null"),
    (_row(answerable="yes"), "must be true or false"),
    (_row(evidence=[{"document": DOC}]), "needs a 'document' and a 'quote'"),
    (_row(type="unanswerable"), "if and only if"),
])
def test_load_gold_rejects_bad_rows_with_a_clear_message(tmp_path, row, message):
    with pytest.raises(GoldFormatError, match=message):
        load_gold(_write(tmp_path, [row]))


def test_load_gold_rejects_duplicate_ids(tmp_path):
    with pytest.raises(GoldFormatError, match=r":2: duplicate id 'g1'"):
        load_gold(_write(tmp_path, [_row(), _row()]))


def test_default_path_is_the_sample_gold_set():
    gold = load_gold()
    assert len(gold) >= 150 and all(isinstance(q, GoldQuestion) for q in gold)


# ------------------------------------------------------------------------------------- your own gold
def _doc_chunks() -> list[dict]:
    texts = {"a.pdf": ["Alpha policy says badges are worn at all times inside the lab building.",
                       "Alpha visitors sign in at the front desk and get a paper badge for the day."],
             "b.pdf": ["Beta rules: backups run every night at two and are kept for ninety days."]}
    return [_chunk(f"{doc}-{i}", text, f"pdfs/{doc}")
            for doc, ts in texts.items() for i, text in enumerate(ts)]


def test_a_malformed_gold_file_names_every_bad_line_once_and_loads_nothing(tmp_path):
    from helpers.core.gold import draft_questions, write_draft

    rows = draft_questions(_doc_chunks(), n=3)
    rows[0]["question"] = "Who wears badges in the lab?"
    rows[2]["question"] = "How long are backups kept?"
    missing = {"document": "a.pdf", "quote": "visitors leave through the loading dock gate"}
    bad_quote = dict(rows[0], id="own-1", question="Where do visitors sign in?", evidence=[missing])
    duplicate = dict(rows[2], question="When do backups run?")
    path = write_draft([*rows, bad_quote, duplicate], tmp_path / "gold_questions.jsonl")

    with pytest.raises(GoldFormatError) as caught:
        load_gold(path, _doc_chunks())
    lines = str(caught.value).splitlines()
    assert "nothing was loaded" in lines[0] and len(lines) == 4
    assert lines[1].startswith("gold_questions.jsonl:2: empty question")
    assert lines[2].startswith("gold_questions.jsonl:4: quote not found in any chunk of 'a.pdf'")
    assert lines[3] == "gold_questions.jsonl:5: duplicate id 'draft-003' (first on line 3)"


def test_a_filled_draft_loads_and_spreads_over_the_documents(tmp_path):
    from helpers.core.gold import draft_questions, write_draft

    rows = draft_questions(_doc_chunks(), n=2)
    assert sorted(row["evidence"][0]["document"] for row in rows) == ["a.pdf", "b.pdf"]
    assert all(row["question"] == "" for row in rows)
    for row in rows:
        row["question"] = f"What does {row['evidence'][0]['document']} say?"
    questions = load_gold(write_draft(rows, tmp_path / "g.jsonl"), _doc_chunks())
    assert [q.id for q in questions] == ["draft-001", "draft-002"]
    assert relevant_chunk_ids(questions, _doc_chunks())["draft-002"] == {"b.pdf-0"}


def test_the_run_gold_file_replaces_the_sample_one(tmp_path):
    from helpers.core.gold import GOLD_PATH, gold_path

    assert gold_path(tmp_path) == GOLD_PATH
    (tmp_path / "gold_questions.jsonl").write_text("")
    assert gold_path(tmp_path) == tmp_path / "gold_questions.jsonl"
