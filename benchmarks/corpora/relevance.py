"""Which chunks of a chunked corpus answer a question, judged by word n-grams shared with the answer.

A question's answer section (from questions.jsonl) is the ground truth; whatever chunker a course user
picks, a chunk counts as relevant when it is mostly made of the answer's text:

    overlap = |ngrams(chunk) & ngrams(answer)| / min(|ngrams(chunk)|, |ngrams(answer)|)

with lower-cased word tokens and word 4-grams. Dividing by the smaller set makes a chunk that lies inside
the answer, and a chunk that holds a whole short answer, both score 1. A chunk must also share at least
`min_shared` n-grams, so that a phrase common to many sections ("the package management system") can
not make a tiny chunk relevant. Standard library only; `python benchmarks/corpora/relevance.py` runs a
toy example.
"""

from __future__ import annotations

import re

WORD = re.compile(r"\w+")
MIN_OVERLAP = 0.5  # at least half of the smaller n-gram set is shared: the chunk is mostly answer text
MIN_SHARED = 5  # five shared 4-grams = eight consecutive words in common, more than a stock phrase


def ngrams(text: str, n: int = 4) -> set[tuple[str, ...]]:
    """Return the set of lower-cased word n-grams of `text` (empty when it has fewer than n words)."""
    words = WORD.findall(text.lower())
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def overlap(answer: str, chunk: str, n: int = 4) -> tuple[float, int]:
    """Return (overlap ratio, number of shared n-grams) between an answer and a chunk."""
    a, c = ngrams(answer, n), ngrams(chunk, n)
    if not a or not c:
        return 0.0, 0
    shared = len(a & c)
    return shared / min(len(a), len(c)), shared


def relevant_chunk_ids(
    answer: str,
    chunks: dict[str, str],
    n: int = 4,
    min_overlap: float = MIN_OVERLAP,
    min_shared: int = MIN_SHARED,
) -> list[str]:
    """Return the ids of `chunks` (in their order) whose text is mostly the answer's text."""
    relevant = []
    for chunk_id, text in chunks.items():
        ratio, shared = overlap(answer, text, n)
        if ratio >= min_overlap and shared >= min_shared:
            relevant.append(chunk_id)
    return relevant


def _demo() -> None:
    """Print the overlap of a few toy chunks with a toy answer and which ones count as relevant."""
    answer = (
        "To keep your system current, run apt-get update to refresh the package lists and then apt-get "
        "upgrade to install the newest versions of the installed packages. Read the release notes first."
    )
    chunks = {
        "whole": "Staying current. " + answer + " The next section is about kernels.",
        "inside": "run apt-get update to refresh the package lists and then apt-get upgrade to install",
        "phrase": "Debian's package management system downloads the package lists and then stores them in "
        "/var/lib/apt/lists; it writes a log of every change, and dpkg -l lists what is installed.",
        "unrelated": "The kernel can be compiled with make-kpkg, which builds a Debian package of it.",
    }
    relevant = relevant_chunk_ids(answer, chunks)
    for chunk_id, text in chunks.items():
        ratio, shared = overlap(answer, text)
        mark = "relevant" if chunk_id in relevant else "-"
        print(f"{chunk_id:10s} overlap {ratio:.2f} shared 4-grams {shared:2d}  {mark}")
    assert relevant == ["whole", "inside"], relevant
    print("self-check passed: relevant =", relevant)


if __name__ == "__main__":
    _demo()
