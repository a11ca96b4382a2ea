"""Behaviour of relevance.relevant_chunk_ids (pytest, no other dependencies)."""

from relevance import relevant_chunk_ids

ANSWER = (
    "Packages can be upgraded in place, even in running systems. Debian has a start-stop-daemon program "
    "that is invoked to stop, then restart running processes if necessary during a package upgrade."
)


def test_chunk_containing_the_answer_is_relevant() -> None:
    chunks = {"c1": "Chapter 9. Keeping your system up to date. " + ANSWER + " More text follows here."}
    assert relevant_chunk_ids(ANSWER, chunks) == ["c1"]


def test_chunk_inside_the_answer_is_relevant() -> None:
    chunks = {"c1": "Debian has a start-stop-daemon program that is invoked to stop, then restart running"}
    assert relevant_chunk_ids(ANSWER, chunks) == ["c1"]


def test_unrelated_chunk_is_not_relevant() -> None:
    chunks = {"c1": "The Debian FAQ was written in DocBook XML and is available as HTML, text and PDF files."}
    assert relevant_chunk_ids(ANSWER, chunks) == []


def test_chunk_sharing_one_common_phrase_is_not_relevant() -> None:
    chunks = {
        "short": "during a package upgrade",
        "long": "Configuration files are kept during a package upgrade unless you answer the dpkg prompt "
        "and choose the maintainer's version, which replaces the file you edited by hand.",
    }
    assert relevant_chunk_ids(ANSWER, chunks) == []


def test_empty_input_gives_no_chunks() -> None:
    assert relevant_chunk_ids("", {"c1": ANSWER}) == []
    assert relevant_chunk_ids(ANSWER, {}) == []
    assert relevant_chunk_ids(ANSWER, {"c1": ""}) == []
