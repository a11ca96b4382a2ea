"""Build the course corpus, data/debian-faq/: the Debian FAQ as PDFs, and its own questions as gold questions.

    python scripts/build_course_corpus.py [--force]

The PDFs come from ``benchmarks/corpora/build_debian_faq.py`` (one per FAQ chapter, every question heading
removed). Each FAQ question becomes a gold question in the kit's format (``helpers/core/gold.py``): the
question is the heading a person asked, its evidence the answer's text, quoted in blocks of
``QUOTE_WORDS`` words so that every chunk holding a part of a long answer counts as relevant. A block that
the kit's gold matching does not find in the chunks of every chunking strategy (at its default size) is
left out (a list or a code block extracted in another order, a block cut by a chunk boundary and a
heading), so the gold file passes ``python -m helpers gold check`` whichever strategy a learner picks. The
Debian FAQ's copyright notice is copied beside the PDFs, as its licence asks.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks" / "corpora"))

import build_debian_faq  # noqa: E402

from helpers.chunking.chunkers import CHUNKERS, chunk_documents, filter_chunks  # noqa: E402
from helpers.chunking.pdfs import load_pdfs  # noqa: E402
from helpers.core.gold import Evidence, GoldQuestion, relevant_chunk_ids  # noqa: E402

OUT = REPO / "data" / "debian-faq"
# Questions the FAQ does not answer, written by the kit, not by FAQ readers: the RAG chain should refuse
# them. The retrieval verdict leaves unanswerable questions out, so they never count as people's questions.
UNANSWERABLE = {
    "u-hotline": "What is the phone number of Debian's customer support hotline?",
    "u-iphone": "How do I install Debian on an iPhone?",
    "u-debconf": "How many people attended DebConf in 2019?",
    "u-swap": "What swap size does Debian recommend for a laptop with 16 GB of RAM?",
    "u-gaming": "Which graphics card gives the best gaming performance on Debian?",
    "u-salary": "What salary do Debian developers get paid?",
}
NOTICE = Path("/usr/share/doc/debian-faq/copyright")
QUOTE_WORDS = 40


def quote_blocks(answer: str, words: int = QUOTE_WORDS) -> list[str]:
    """The answer in consecutive blocks of ``words`` words; a short last block joins the one before."""
    tokens = answer.split()
    blocks = [tokens[i:i + words] for i in range(0, len(tokens), words)]
    if len(blocks) > 1 and len(blocks[-1]) < words // 2:
        last = blocks.pop()
        blocks[-1] += last
    return [" ".join(block) for block in blocks]


def unanswerable_rows() -> list[dict]:
    """The kit's own unanswerable questions, in the gold format (no evidence, no reference answer)."""
    return [{"id": qid, "question": q, "type": "unanswerable", "answerable": False, "evidence": [],
             "reference_answer": None} for qid, q in UNANSWERABLE.items()]


def found_quotes(document: str, quotes: list[str], chunkings: list[list]) -> list[str]:
    """The quotes the kit's gold matching finds in a chunk of ``document`` in every one of ``chunkings``."""
    probes = [GoldQuestion(str(i), "", "faq", True, (Evidence(document, q),))
              for i, q in enumerate(quotes)]
    found = [relevant_chunk_ids(probes, chunks) for chunks in chunkings]
    return [quote for i, quote in enumerate(quotes) if all(f[str(i)] for f in found)]


def gold_row(faq: dict, chunkings: list[list]) -> dict:
    """One FAQ question as a kit gold question, its evidence the answer's blocks every chunking holds."""
    quotes = found_quotes(faq["file"], quote_blocks(faq["answer"]), chunkings)
    return {"id": faq["id"], "question": faq["query"], "type": "faq", "answerable": True,
            "evidence": [{"document": faq["file"], "quote": q} for q in quotes],
            "reference_answer": faq["answer"]}


def chunkings(folder: Path) -> list[list]:
    """The kit's chunks of ``folder`` with every strategy at its default size, filtered as the stage does."""
    pages = load_pdfs(folder, progress=False).pages
    return [filter_chunks(chunk_documents(pages, strategy, progress=False))[0] for strategy in CHUNKERS]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--force", action="store_true", help="rebuild even when the manifest is up to date")
    args = parser.parse_args()
    build_debian_faq.build(OUT, min_words=15, force=args.force)
    faq = OUT / "questions.jsonl"
    chunked = chunkings(OUT)
    rows = [gold_row(json.loads(line), chunked) for line in faq.read_text(encoding="utf-8").splitlines()]
    rows += unanswerable_rows()
    kept = sum(len(row["evidence"]) for row in rows)
    blocks = sum(len(quote_blocks(row["reference_answer"])) for row in rows)
    print(f"evidence: {kept} of {blocks} answer blocks found in the chunks of every strategy")
    (OUT / "gold_questions.jsonl").write_text(
        "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    faq.unlink()
    shutil.copyfile(NOTICE, OUT / "COPYRIGHT")
    print(f"{len(rows)} gold questions in {OUT / 'gold_questions.jsonl'}; its licence in {OUT / 'COPYRIGHT'}")


if __name__ == "__main__":
    main()
