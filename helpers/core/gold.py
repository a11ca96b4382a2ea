"""Hand-written gold questions for a corpus, and which chunks answer them.

The gold set (``data/sample/gold_questions.jsonl``) names its evidence as verbatim quotes from the
documents, never as chunk ids, so it survives re-chunking: :func:`relevant_chunk_ids` finds the chunks
that hold each quote, whatever splitter, chunk size or PDF cleaning produced them.

One JSON object per line::

    {"id": "g001", "question": "...", "type": "keyword", "answerable": true,
     "evidence": [{"document": "travel-and-expenses-policy.pdf", "quote": "..."}],
     "reference_answer": "..."}
"""

from __future__ import annotations

import json
import random
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from pathlib import Path

import ftfy

from helpers.core.config import SAMPLE_CORPUS_DIR
from helpers.core.schema import Chunk

GOLD_PATH = SAMPLE_CORPUS_DIR / "gold_questions.jsonl"
# faq: a question a person asked, an FAQ heading (the course corpus's gold questions)
QUESTION_TYPES = ("keyword", "paraphrase", "factoid", "multi_section", "unanswerable", "faq")
MIN_BLOCK_WORDS = 3  # word runs shorter than this are coincidences, not evidence
MAX_GAP_WORDS = 40  # a running header, footer or footnote may interrupt a quote by this much


class GoldFormatError(ValueError):
    """A gold question file that does not follow the schema."""


@dataclass(frozen=True)
class Evidence:
    document: str  # PDF file name
    quote: str  # verbatim passage from that document


@dataclass(frozen=True)
class GoldQuestion:
    id: str
    question: str
    type: str
    answerable: bool
    evidence: tuple[Evidence, ...] = field(default_factory=tuple)
    reference_answer: str | None = None


# ---------------------------------------------------------------------------------------- loading
RUN_GOLD_FILENAME = "gold_questions.jsonl"  # a run's own gold set (``helpers gold draft``)
CORPUS_GOLD_FILENAME = "corpus_gold_questions.jsonl"  # the gold set that came with the run's PDFs


def gold_path(run_root: Path | str | None = None) -> Path:
    """The gold set a run is evaluated on: ``<run>/gold_questions.jsonl`` when the user wrote one, else the
    one that came with its PDF folder (copied by the chunking stage), else the sample corpus's."""
    for name in (RUN_GOLD_FILENAME, CORPUS_GOLD_FILENAME) if run_root else ():
        if (Path(run_root) / name).is_file():
            return Path(run_root) / name
    return GOLD_PATH


def copy_corpus_gold(pdf_dir: Path | str, dest: Path) -> int:
    """Copy the gold questions a PDF folder carries (``<pdf_dir>/gold_questions.jsonl``) to ``dest`` and
    return how many there are; 0 (and ``dest`` removed) when the folder has none."""
    source = Path(pdf_dir) / RUN_GOLD_FILENAME
    if not source.is_file():
        dest.unlink(missing_ok=True)
        return 0
    questions = load_gold(source)
    dest.write_bytes(source.read_bytes())
    return len(questions)


def load_gold(path: Path | str | None = None, chunks: Iterable[ChunkLike] | None = None
              ) -> list[GoldQuestion]:
    """Read and validate a gold question file (default: the sample corpus's), all or nothing.

    Every bad line is named in one :class:`GoldFormatError` (one message per line: not JSON, empty
    question, missing field, duplicate id and, given ``chunks``, a quote found in no chunk)."""
    path = Path(path or GOLD_PATH)
    questions, problems = check_gold(path, chunks)
    if problems:
        raise GoldFormatError(f"{path}: {len(problems)} line(s) to fix, nothing was loaded:\n"
                              + "\n".join(problems))
    return questions


def check_gold(path: Path | str, chunks: Iterable[ChunkLike] | None = None
               ) -> tuple[list[GoldQuestion], list[str]]:
    """The questions of a gold file and one message per bad line (``file:line: what is wrong``)."""
    path = Path(path)
    questions: list[GoldQuestion] = []
    problems: list[tuple[int, str]] = []
    line_of: dict[str, int] = {}
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path.name}:{lineno}"
            try:
                q = parse_question(json.loads(line), where)
            except json.JSONDecodeError as e:
                problems.append((lineno, f"{where}: not valid JSON ({e.msg})"))
                continue
            except GoldFormatError as e:
                problems.append((lineno, str(e)))
                continue
            if q.id in line_of:
                problems.append((lineno, f"{where}: duplicate id {q.id!r} (first on line {line_of[q.id]})"))
                continue
            line_of[q.id] = lineno
            questions.append(q)
    if chunks is not None:
        for q, problem in unmatched_quotes(questions, chunks):
            problems.append((line_of[q.id], f"{path.name}:{line_of[q.id]}: {problem}"))
    return questions, [message for _, message in sorted(problems, key=lambda p: p[0])]


def unmatched_quotes(questions: list[GoldQuestion], chunks: Iterable[ChunkLike]
                     ) -> list[tuple[GoldQuestion, str]]:
    """(question, what is wrong) for every evidence quote that no chunk of its document holds."""
    by_evidence = {f"{q.id}#{i}": (q, ev) for q in questions for i, ev in enumerate(q.evidence)}
    probes = [GoldQuestion(key, q.question, q.type, True, (ev,)) for key, (q, ev) in by_evidence.items()]
    found = relevant_chunk_ids(probes, chunks)
    return [(q, f"quote not found in any chunk of {ev.document!r}: {ev.quote[:60]!r}")
            for key, (q, ev) in by_evidence.items() if not found[key]]


def parse_question(row: object, where: str = "gold question") -> GoldQuestion:
    """Validate one JSON object and turn it into a :class:`GoldQuestion`."""
    if not isinstance(row, dict):
        raise GoldFormatError(f"{where}: expected a JSON object")
    missing = {"id", "question", "type", "answerable", "evidence", "reference_answer"} - row.keys()
    if missing:
        raise GoldFormatError(f"{where}: missing field(s) {', '.join(sorted(missing))}")
    for key in ("id", "question"):
        if not isinstance(row[key], str) or not row[key].strip():
            what = "empty question: write one the passage answers, or delete the line" if key == "question" \
                else "'id' must be a non-empty string"
            raise GoldFormatError(f"{where}: {what}")
    if row["type"] not in QUESTION_TYPES:
        raise GoldFormatError(f"{where}: type {row['type']!r} is not one of {', '.join(QUESTION_TYPES)}")
    if not isinstance(row["answerable"], bool):
        raise GoldFormatError(f"{where}: 'answerable' must be true or false")
    evidence = tuple(_parse_evidence(e, where) for e in _as_list(row["evidence"], where))
    ref = row["reference_answer"]
    if row["answerable"]:
        if not evidence or not isinstance(ref, str) or not ref.strip():
            raise GoldFormatError(f"{where}: an answerable question needs evidence and a reference_answer")
    elif evidence or ref is not None:
        raise GoldFormatError(f"{where}: an unanswerable question has evidence [] and reference_answer null")
    if (row["type"] == "unanswerable") == row["answerable"]:
        raise GoldFormatError(f"{where}: type 'unanswerable' if and only if answerable is false")
    return GoldQuestion(row["id"], row["question"], row["type"], row["answerable"], evidence, ref)


def _as_list(value: object, where: str) -> list:
    if not isinstance(value, list):
        raise GoldFormatError(f"{where}: 'evidence' must be a list")
    return value


def _parse_evidence(item: object, where: str) -> Evidence:
    if not isinstance(item, dict) or not all(isinstance(item.get(k), str) and item[k].strip()
                                             for k in ("document", "quote")):
        raise GoldFormatError(f"{where}: each evidence entry needs a 'document' and a 'quote' string")
    return Evidence(item["document"], item["quote"])


# ------------------------------------------------------------------------------------- normalising
_LINE_BREAK_HYPHEN = re.compile(r"(\w)[-\u2010\u2011\u00ad][ \t]*\r?\n\s*(\w)")
_INNER_HYPHEN = re.compile(r"(?<=\w)[-\u2010\u2011](?=\w)")
_WORD = re.compile(r"[^\W_]+")


def normalize_for_matching(text: str) -> str:
    """Lowercase words separated by single spaces, immune to how a PDF happened to be extracted.

    Repairs mojibake and ligatures (ftfy, NFKC), straightens quotes, drops soft hyphens, rejoins words
    hyphenated at a line end ("pol-\\nicy" -> "policy") and closes hyphenated compounds ("follow-up" ->
    "followup", so a compound broken at a line end still matches), then keeps only letters and digits.
    """
    text = ftfy.fix_text(text).replace("\u00ad\n", "-\n").replace("\u00ad", "")
    text = _LINE_BREAK_HYPHEN.sub(r"\1\2", text)
    text = _INNER_HYPHEN.sub("", text)
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_WORD.findall(text))


# ---------------------------------------------------------------------------------------- matching
ChunkLike = Chunk | Mapping[str, object]


def relevant_chunk_ids(questions: Iterable[GoldQuestion], chunks: Iterable[ChunkLike],
                       min_coverage: float = 0.8, min_split_coverage: float = 0.4) -> dict[str, set[str]]:
    """Map each answerable question id to the ids of the chunks that hold its evidence.

    A chunk of the evidence's document is relevant when it holds at least ``min_coverage`` of the quote's
    words in order (small interruptions such as a running header are tolerated). When no chunk does, the
    quote is taken to be split across a chunk boundary, and each chunk that holds at least
    ``min_split_coverage`` of it at its start or end counts. A question whose quotes match nothing maps to
    an empty set, so a caller can report it rather than lose it.
    """
    by_doc: dict[str, list[tuple[str, list[str], set[str]]]] = {}
    for c in chunks:
        cid, text, source = _chunk_fields(c)
        words = normalize_for_matching(text).split()
        by_doc.setdefault(_doc_key(source), []).append((cid, words, set(words)))
    result: dict[str, set[str]] = {}
    for q in questions:
        if not q.answerable:
            continue
        result[q.id] = set()
        for ev in q.evidence:
            quote = normalize_for_matching(ev.quote).split()
            candidates = by_doc.get(_doc_key(ev.document), [])
            result[q.id] |= _chunks_holding(quote, candidates, min_coverage, min_split_coverage)
    return result


def _chunks_holding(quote: list[str], candidates: list[tuple[str, list[str], set[str]]],
                    min_coverage: float, min_split_coverage: float) -> set[str]:
    """Ids of the candidate chunks that hold ``quote`` whole, else those holding a part at an edge."""
    if not quote:
        return set()
    floor = min_split_coverage * len(quote)
    spans = {cid: _best_span(quote, words) for cid, words, vocab in candidates
             if sum(w in vocab for w in quote) >= floor}  # cheap filter before aligning
    full = {cid for cid, s in spans.items() if s.matched >= min_coverage * len(quote)}
    if full:
        return full
    return {cid for cid, s in spans.items()
            if s.matched >= min_split_coverage * len(quote) and s.at_edge}


@dataclass(frozen=True)
class _Span:
    matched: int  # quote words found, in order, in one region of the chunk
    at_edge: bool  # the region starts the chunk with the quote's end, or ends it with the quote's start


def _best_span(quote: list[str], words: list[str]) -> _Span:
    """The densest in-order run of quote words in ``words``, allowing short interruptions."""
    min_block = min(MIN_BLOCK_WORDS, len(quote))
    blocks = [b for b in SequenceMatcher(None, quote, words, autojunk=False).get_matching_blocks()
              if b.size >= min_block]
    best, best_group = _Span(0, False), []
    group: list = []
    for b in blocks:
        if group and b.b - (group[-1].b + group[-1].size) > MAX_GAP_WORDS:
            group = []
        group.append(b)
        matched = sum(g.size for g in group)
        if matched > best.matched:
            best, best_group = _Span(matched, False), list(group)
    if not best_group:
        return best
    first, last = best_group[0], best_group[-1]
    tail_of_quote_at_start = first.b <= 2 and last.a + last.size >= len(quote) - 1
    head_of_quote_at_end = first.a <= 1 and last.b + last.size >= len(words) - 2
    return _Span(best.matched, tail_of_quote_at_start or head_of_quote_at_end)


def _chunk_fields(chunk: ChunkLike) -> tuple[str, str, str]:
    if isinstance(chunk, Chunk):
        return chunk.id, chunk.text, chunk.source
    return str(chunk["id"]), str(chunk["text"]), str(chunk.get("source", ""))


def _doc_key(source: str) -> str:
    """Documents are compared by file name, so "data/sample/x.pdf" and "x.pdf" are the same."""
    return Path(str(source).replace("\\", "/")).name.casefold()


# ----------------------------------------------------------------------------------------- drafting
def draft_questions(chunks: Sequence[ChunkLike], n: int = 40, seed: int = 42, quote_words: int = 40
                    ) -> list[dict]:
    """Gold-format rows for ``n`` chunks spread across the documents, each with an empty question to write.

    Documents take turns (a seeded order of chunks within each), so a short document is not drowned by a
    long one. The evidence quote is the chunk's first ``quote_words`` words, verbatim; ``passage`` (ignored
    when loading) is the whole chunk to read, and the reference answer starts as the quote: shorten it.
    """
    by_doc: dict[str, list[tuple[str, str, str]]] = {}
    for c in chunks:
        cid, text, source = _chunk_fields(c)
        by_doc.setdefault(Path(source.replace("\\", "/")).name, []).append((cid, text, source))
    rng = random.Random(seed)
    for rows in by_doc.values():
        rng.shuffle(rows)
    picked: list[tuple[str, str, str]] = []
    while len(picked) < n and any(by_doc.values()):
        for document in sorted(by_doc):
            if by_doc[document] and len(picked) < n:
                picked.append(by_doc[document].pop())
    return [{"id": f"draft-{i:03d}", "question": "", "type": "factoid", "answerable": True,
             "evidence": [{"document": Path(source.replace("\\", "/")).name,
                           "quote": " ".join(text.split()[:quote_words])}],
             "reference_answer": " ".join(text.split()[:quote_words]), "passage": text, "chunk_id": cid}
            for i, (cid, text, source) in enumerate(picked, 1)]


def write_draft(rows: list[dict], path: Path | str) -> Path:
    """One JSON object per line, as ``load_gold`` reads them."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def load_run_gold(run_root: Path | str, chunks: Iterable[ChunkLike]) -> list[GoldQuestion]:
    """The gold set of a run (see :func:`gold_path`); the user's own file is checked against the chunks
    too, so a quote that matches nothing is an error rather than a silently dropped question."""
    path = gold_path(run_root)
    return load_gold(path, chunks if path.name == RUN_GOLD_FILENAME and path != GOLD_PATH else None)
