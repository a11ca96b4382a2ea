"""Offline question generation, validation, the split by chunk, the leakage check and the stage's artifact."""

from __future__ import annotations

import pytest

from helpers.chunking.chunkers import save_chunks
from helpers.questions.generate import build_pairs, parse_questions, select_chunks
from helpers.questions.offline import clean_heading, generate_offline, keyphrases
from helpers.questions.pairs import (
    COLUMNS,
    LeakageError,
    check_leakage,
    load_pairs,
    make_pair,
    normalize,
    rejection_summary,
    split_pairs,
    to_dataset_dict,
    validate,
)
from helpers.testing.chunks import sample_chunks

CHUNK = sample_chunks()[0]  # "Staff travelling on Institute business may book hotels up to 180 pounds ..."


def pair(question: str, generator: str = "llm:test", chunk=CHUNK) -> dict:
    return make_pair(question, chunk, generator)


def test_offline_generator_is_deterministic_labelled_and_uses_every_method():
    chunks = sample_chunks()
    first = generate_offline(chunks, 3, seed=1, progress=False)
    assert first.pairs == generate_offline(chunks, 3, seed=1, progress=False).pairs
    assert first.pairs != generate_offline(chunks, 3, seed=2, progress=False).pairs
    assert first.generator == "offline" and len(first.pairs) == 3 * len(chunks)
    assert {p["generator"] for p in first.pairs} == {"offline:heading", "offline:ict", "offline:keyphrase"}
    kept, rejected = validate(first.pairs)
    assert len(kept) >= 0.9 * len(first.pairs), rejection_summary(rejected)


def test_offline_queries_are_about_their_chunk_without_copying_it():
    chunks = sample_chunks()
    text = {c.id: " ".join(c.text.split()) for c in chunks}
    kept, _ = validate(generate_offline(chunks, 3, progress=False, ict_removal=1.0).pairs)
    for p in kept:
        words = set(normalize(p["anchor"]).split())
        assert words & set(normalize(text[p["chunk_id"]]).split()), p  # lexical anchor in its own chunk
        assert p["anchor"] not in p["positive"] or len(words) < 5, p  # never a verbatim copy of the positive
    phrases = keyphrases([c.text for c in chunks])[5]  # chemical storage
    assert any("solvents" in p.lower() or "cabinets" in p.lower() for p in phrases), phrases
    assert clean_heading("Roles > 2.1 Chief Information Security") == "Chief Information Security"


def test_an_ict_pair_is_a_sentence_of_its_chunk_whose_positive_lacks_it_when_removal_is_on():
    chunks = sample_chunks()
    text = {c.id: " ".join(c.text.split()) for c in chunks}

    def ict(removal: float) -> list[dict]:
        pairs = generate_offline(chunks, 4, seed=3, progress=False, ict_removal=removal).pairs
        return [p for p in pairs if p["generator"] == "offline:ict"]

    removed, kept = ict(1.0), ict(0.0)
    assert removed and [p["anchor"] for p in removed] == [p["anchor"] for p in kept]
    for p in removed:
        assert p["anchor"] in text[p["chunk_id"]] and p["anchor"] not in p["positive"], p
        assert p["positive"] == " ".join(text[p["chunk_id"]].replace(p["anchor"], " ", 1).split())
    assert all(p["positive"] == c.text for p in kept for c in chunks if c.id == p["chunk_id"])
    mixed = ict(0.5)
    assert 0 < sum(p["anchor"] in p["positive"] for p in mixed) < len(mixed)  # the setting is a share
    kept_pairs, rejected = validate(kept)
    assert len(kept_pairs) == len(kept), rejection_summary(rejected)  # a kept sentence is ICT, not a copy


SEED_001_STYLE = [
    ("QUESTION #1\n", "template_residue"),
    ("QUESTION #2\n...\n\nContext:\nStaff travelling on Institute business", "template_residue"),
    ("QUESTION #1\\n", "template_residue"),
    ("[HumanMessage(content='What is the cap?', additional_kwargs={}, response_metadata={})]",
     "template_residue"),
    ("{'role': 'user', 'content': 'What is the hotel cap?'}", "template_residue"),
    ("Q1: What is the hotel cap in London?", "template_residue"),
    ("1. What is the hotel cap in London?", "template_residue"),
    ("Here are the questions about hotel caps?", "template_residue"),
    ("What is the hotel cap in {city}?", "template_residue"),
    ("What is this document about?", "about_document"),
    ("According to the passage, what is the hotel cap?", "about_document"),
    ("Why?", "too_short"),
    ("What " + "very " * 45 + "long question is this?", "too_long"),
    ("The hotel cap in London is generous.", "not_a_question"),
    ("Staff travelling on Institute business may book hotels up to 180 pounds?", "copies_passage"),
]


@pytest.mark.parametrize(("question", "reason"), SEED_001_STYLE)
def test_validation_rejects_bad_questions_with_a_reason(question, reason):
    kept, rejected = validate([pair(question)])
    assert not kept and [r["reason"] for r in rejected] == [reason]


def test_validation_keeps_good_questions_and_offline_keyword_queries():
    good = [pair("What is the nightly hotel limit in London?"), pair("Is breakfast part of the allowance?"),
            pair("hotel cap London approval", "offline:keyphrase")]
    kept, rejected = validate(good)
    assert kept == good and not rejected
    assert validate([pair("hotel cap London approval")])[1][0]["reason"] == "not_a_question"


def test_duplicates_and_near_duplicates_are_rejected(fallback_model):
    pairs = [pair("What is the nightly hotel limit in London?"),
             pair("what is the nightly hotel limit in london"),
             pair("What's the nightly hotel limit in London?"),
             pair("Who approves bookings above the cap?")]
    kept, rejected = validate(pairs)
    assert [r["reason"] for r in rejected] == ["duplicate"]
    kept, rejected = validate(pairs, model=fallback_model)
    assert [r["reason"] for r in rejected] == ["duplicate", "near_duplicate"]
    assert [p["anchor"] for p in kept] == [pairs[0]["anchor"], pairs[3]["anchor"]]
    summary = rejection_summary(rejected)
    assert summary["near_duplicate"]["examples"][0]["duplicate_of"] == pairs[0]["anchor"]


def test_parse_questions_is_strict():
    assert parse_questions('{"questions": [" Who approves? "]}') == ["Who approves?"]
    for bad in ("QUESTION #1\n", '["Who?"]', '{"questions": [1, 2]}', '{"question": ["Who?"]}'):
        with pytest.raises(ValueError, match="malformed_output"):
            parse_questions(bad)


def _pairs_on(chunks, per_chunk: int = 2) -> list[dict]:
    return [pair(f"Question {j} on {c.heading} {c.id}?", chunk=c) for c in chunks for j in range(per_chunk)]


def test_split_keeps_each_chunk_in_one_split_and_is_seeded():
    chunks = sample_chunks(20)
    twin = sample_chunks(1, source="copy.pdf")[0]  # same text as chunks[0], another document
    pairs = _pairs_on(chunks) + _pairs_on([twin])
    texts = {c.id: c.text for c in [*chunks, twin]}
    dataset = split_pairs(pairs, ratios=(0.6, 0.2, 0.2), seed=3, chunk_texts=texts)
    passages = {name: len({texts[c] for c in ds["chunk_id"]}) for name, ds in dataset.items()}
    assert passages == {"train": 12, "validation": 4, "test": 4} and sum(map(len, dataset.values())) == 42
    assert list(dataset["train"].column_names) == list(COLUMNS)
    split_of = {}
    for name, ds in dataset.items():
        for row in ds:
            assert split_of.setdefault(row["chunk_id"], name) == name
    assert split_of[twin.id] == split_of[chunks[0].id], "identical passages must share a split"
    again = split_pairs(pairs, (0.6, 0.2, 0.2), seed=3, chunk_texts=texts)
    assert again["test"]["id"] == dataset["test"]["id"]
    assert check_leakage(dataset, chunk_texts=texts)["ok"]
    with pytest.raises(ValueError, match="sum to 1"):
        split_pairs(pairs, ratios=(0.5, 0.2, 0.2))
    with pytest.raises(ValueError, match="at least 3"):
        split_pairs(_pairs_on(chunks[:2]))


def test_the_split_keys_on_chunk_ids_when_positives_differ():
    chunks = sample_chunks(12)
    pairs = [make_pair(f"Question {j} on {c.id}?", c, "offline:ict", positive=f"{c.text} variant {j}")
             for c in chunks for j in range(3)]
    dataset = split_pairs(pairs, seed=1, chunk_texts={c.id: c.text for c in chunks})
    ids = {name: set(ds["chunk_id"]) for name, ds in dataset.items()}
    assert all(not ids[a] & ids[b] for a in ids for b in ids if a < b), ids
    assert sum(map(len, ids.values())) == 12


def test_the_budget_caps_training_by_whole_chunks_and_spare_chunks_top_up_the_test_split():
    from helpers.questions.pairs import SplitBudget

    chunks = sample_chunks(40)
    pairs = _pairs_on(chunks)  # 2 per chunk
    dataset = split_pairs(pairs, seed=0, budget=SplitBudget(train=21, validation=3, test=20))
    per_chunk = {name: len(set(ds["chunk_id"])) for name, ds in dataset.items()}
    assert len(dataset["train"]) == 22 and len(dataset["validation"]) == 4  # whole chunks, just past the cap
    assert len(dataset["test"]) == 20 and per_chunk["test"] == 10  # 4 split chunks + 6 spare training ones
    assert check_leakage(dataset)["ok"]
    unbounded = split_pairs(pairs, seed=0)
    assert sum(map(len, unbounded.values())) == 80 and len(unbounded["train"]) == 64


def test_leakage_check_fails_loudly_on_a_crafted_leak(fallback_model):
    chunks = {c.id: c for c in sample_chunks(10)}
    rows = {name: ds.to_list() for name, ds in split_pairs(_pairs_on(chunks.values()), seed=0).items()}
    test_row = rows["test"][0]
    train_chunk, test_chunk = chunks[rows["train"][0]["chunk_id"]], chunks[test_row["chunk_id"]]

    def leak(train_extra: list[dict], test_extra: list[dict] = ()):
        return to_dataset_dict(rows | {"train": rows["train"] + train_extra,
                                       "test": rows["test"] + list(test_extra)})

    with pytest.raises(LeakageError, match="train/test share 1 chunk id"):
        check_leakage(leak([test_row]))
    with pytest.raises(LeakageError, match="train/test share 1 question"):
        check_leakage(leak([pair(test_row["anchor"].upper(), chunk=train_chunk)]))
    near = [pair("What nightly hotel limit applies in London?", chunk=train_chunk)]
    reworded = [pair("Which nightly hotel limit applies in London?", chunk=test_chunk)]
    assert check_leakage(leak(near, reworded))["ok"]  # other words: only embeddings see it
    with pytest.raises(LeakageError, match="near-duplicate question"):
        check_leakage(leak(near, reworded), model=fallback_model)


def test_build_pairs_offline_writes_the_contracted_dataset_and_report(tmp_path, monkeypatch):
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "KIT_LLM_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    chunks = sample_chunks(30)
    save_chunks(chunks, tmp_path / "chunks.jsonl")
    report = build_pairs(tmp_path / "chunks.jsonl", tmp_path / "pairs", profile="smoke", progress=False)
    dataset = load_pairs(tmp_path / "pairs")
    assert set(dataset) == {"train", "validation", "test"}
    assert all(list(ds.column_names) == list(COLUMNS) for ds in dataset.values())
    assert report["generator"] == "offline" and set(report["generators"]) <= {
        "offline:heading", "offline:ict", "offline:keyphrase"}
    counts = report["counts"]
    assert counts["kept"] - counts["beyond_budget"] == sum(report["splits"].values()) == \
        sum(len(d) for d in dataset.values())
    assert counts["requested"] == 2 * 30 and report["leakage"]["ok"]
    assert (tmp_path / "pairs" / "report.json").exists()
    anchors = [a for ds in dataset.values() for a in ds["anchor"]]
    assert not any(a.startswith("Represent this sentence") for a in anchors)
    again = build_pairs(tmp_path / "chunks.jsonl", tmp_path / "pairs", profile="smoke", progress=False)
    assert again["splits"] == report["splits"] and load_pairs(tmp_path / "pairs")["test"]["id"] == \
        dataset["test"]["id"]
    with pytest.raises(ValueError, match="no LLM is configured"):
        build_pairs(tmp_path / "chunks.jsonl", tmp_path / "pairs", generator="llm")


def test_build_pairs_encodes_each_question_once_for_validation_and_the_leakage_check(
        tmp_path, monkeypatch, fallback_model):
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "KIT_LLM_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    save_chunks(sample_chunks(30), tmp_path / "chunks.jsonl")
    encoded: list[str] = []
    encode = fallback_model.encode
    monkeypatch.setattr(fallback_model, "encode",
                        lambda texts, **kw: encoded.extend(texts) or encode(texts, **kw))
    report = build_pairs(tmp_path / "chunks.jsonl", tmp_path / "pairs", profile="smoke", progress=False,
                         model=fallback_model)
    assert "question embeddings" in report["leakage"]["checked"]
    used = [a for ds in load_pairs(tmp_path / "pairs").values() for a in ds["anchor"]]
    assert set(used) <= set(encoded) and len(encoded) == len(set(encoded))


def test_offline_questions_cover_every_chunk_and_evaluation_searches_the_real_chunks(tmp_path, monkeypatch):
    from helpers.evaluation.metrics import ir_from_split
    from helpers.rag.queries import synthetic_questions

    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "KIT_LLM_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    chunks = sample_chunks(150)  # more than smoke's max_chunks (120), which caps LLM calls only
    save_chunks(chunks, tmp_path / "chunks.jsonl")
    report = build_pairs(tmp_path / "chunks.jsonl", tmp_path / "pairs", profile="smoke", progress=False)
    dataset = load_pairs(tmp_path / "pairs")
    assert report["counts"]["requested"] == 2 * 150 and report["chunks"]["used"] == 150
    text = {c.id: c.text for c in chunks}
    shortened = [r for ds in dataset.values() for r in ds if r["positive"] != text[r["chunk_id"]]]
    assert shortened and all(r["generator"] == "offline:ict" for r in shortened)
    test = ir_from_split(tmp_path / "pairs", "test", chunks)
    assert test.corpus == text
    assert all(q.reference_contexts == [text[q.reference_ids[0]]]
               for q in synthetic_questions(tmp_path / "pairs", chunks))


def documents(names: str = "abcde", per_document: int = 12) -> list:
    """Chunks of several documents, each text its own (the sample sections, numbered per document)."""
    from helpers.core.schema import Chunk

    return [Chunk(text=f"{c.text} Document {name} keeps this as clause {i}.", source=f"{name}.pdf",
                  pages=c.pages, start=0, end=0, heading=c.heading)
            for name in names for i, c in enumerate(sample_chunks(per_document))]


def test_a_split_by_document_keeps_held_out_documents_out_of_train_and_validation(tmp_path, monkeypatch):
    from helpers.questions.pairs import UNSEEN, held_out_documents

    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "KIT_LLM_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    chunks = documents()
    save_chunks(chunks, tmp_path / "chunks.jsonl")
    report = build_pairs(tmp_path / "chunks.jsonl", tmp_path / "pairs", profile="smoke", progress=False,
                         split="documents")
    dataset = load_pairs(tmp_path / "pairs")
    held = held_out_documents(tmp_path / "pairs")
    assert held == report["held_out_documents"] and len(held) == 1  # a fifth of five documents
    source = {c.id: c.source for c in chunks}
    for name in ("train", "validation"):
        assert not {source[cid] for cid in dataset[name]["chunk_id"]} & set(held), name
    assert {source[cid] for cid in dataset[UNSEEN]["chunk_id"]} == set(held)
    assert len(set(dataset[UNSEEN]["chunk_id"])) == 12 and report["leakage"]["ok"]
    assert "unseen" in report["leakage"]["split_pairs"][-1]
    by_chunk = build_pairs(tmp_path / "chunks.jsonl", tmp_path / "by_chunk", profile="smoke", progress=False)
    assert UNSEEN not in load_pairs(tmp_path / "by_chunk") and by_chunk["held_out_documents"] == []


def test_a_split_by_document_needs_three_documents(tmp_path):
    save_chunks(documents("ab"), tmp_path / "chunks.jsonl")
    with pytest.raises(ValueError, match="needs at least 3 documents.*from 2: a.pdf, b.pdf"):
        build_pairs(tmp_path / "chunks.jsonl", tmp_path / "pairs", generator="offline", split="documents")


def test_select_chunks_samples_with_a_seed_and_keeps_order():
    chunks = sample_chunks(40)
    chosen = select_chunks(chunks, 10, seed=5)
    assert len(chosen) == 10 and chosen == select_chunks(chunks, 10, seed=5)
    assert [chunks.index(c) for c in chosen] == sorted(chunks.index(c) for c in chosen)
    assert select_chunks(chunks, None) == chunks


def test_held_out_chunks_grow_the_test_split_only():
    from helpers.questions.generate import held_out_test_chunks

    chunks = sample_chunks(40)
    chosen = select_chunks(chunks, 20, seed=1)
    held = held_out_test_chunks(chunks, chosen, test_questions=30, questions_per_chunk=2)
    assert len(held) == 15 - 2 and not {c.id for c in held} & {c.id for c in chosen}
    assert held_out_test_chunks(chunks, chosen, None, 2) == []
    assert len(held_out_test_chunks(chunks, chosen, 1000, 2)) == 20  # as many as the corpus allows
    pairs = _pairs_on(chosen + held)
    dataset = split_pairs(pairs, seed=0, test_only={c.id for c in held})
    assert {c.id for c in held} <= set(dataset["test"]["chunk_id"])
    trained_on = set(dataset["train"]["chunk_id"]) | set(dataset["validation"]["chunk_id"])
    assert not {c.id for c in held} & trained_on
