"""Split cleaned pages into retrievable chunks, three ways (``CHUNKERS``); drop what nobody should retrieve.

* ``recursive``: LangChain's RecursiveCharacterTextSplitter measured in characters (the classic 750/100);
* ``token``: the same splitter measured with the embedding model's own tokenizer, so no chunk is longer
  than the model reads (nothing is silently truncated);
* ``structure``: one section (a heading and its body) per chunk, oversize sections split by tokens,
  the heading written at the top of every chunk of its section.

Every chunk records its document, pages and character span in :func:`helpers.chunking.pdfs.document_texts`.
"""

from __future__ import annotations

import logging
import re
import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from tqdm.auto import tqdm

from helpers.chunking.pdfs import document_texts, load_pdfs
from helpers.core.config import RunPaths, shown
from helpers.core.gold import CORPUS_GOLD_FILENAME, copy_corpus_gold
from helpers.core.io import read_jsonl, save_figure, write_json, write_jsonl
from helpers.core.schema import Chunk, Page
from helpers.core.settings import RunSettings

logger = logging.getLogger(__name__)

MIN_WORDS = 5
NEAR_DUPLICATE_JACCARD = 0.9
SHINGLE_WORDS = 5

NUMBERED_HEADING = re.compile(r"(\d+(\.\d+)*\.?|[IVXLC]+\.|[A-Z]\.)\s+[A-Z].*")
NAMED_HEADING = re.compile(r"(section|chapter|part|appendix|article|annex|schedule)\s+[\dIVXLC]+[\w.]*\b.*",
                           re.IGNORECASE)
SMALL_WORDS = {"a", "an", "and", "as", "at", "by", "for", "from", "in", "of", "on", "or", "the", "to", "with"}
DOTTED_LEADER = re.compile(r"(\.\s?){4,}\s*\d+")
COOKIE_PHRASES = ("accept cookies", "accept all cookies", "we use cookies", "cookie settings",
                  "cookie policy", "this site uses cookies", "this website uses cookies")
NAV_PHRASES = ("skip to main content", "skip navigation", "main navigation", "toggle navigation",
               "back to top", "share this page", "breadcrumb", "you are here", "was this page helpful",
               "did you find the content", "easy it was to navigate", "protected by recaptcha",
               "official website of the united states", "here's how you know", "here’s how you know",
               "search menu")


# --- tokenizer ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenBudget:
    """A tokenizer, the model's sequence limit and the tokens a passage may use (limit - special tokens)."""

    tokenizer: object  # transformers.PreTrainedTokenizerBase
    max_tokens: int

    @property
    def passage_limit(self) -> int:
        return self.max_tokens - self.tokenizer.num_special_tokens_to_add()

    def count(self, texts: list[str]) -> list[int]:
        """Tokens of each text, special tokens not included."""
        if not texts:
            return []
        ids = self.tokenizer(texts, add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
        return [len(x) for x in ids]


@lru_cache(maxsize=1)
def _fallback_budget() -> TokenBudget:
    import json

    from transformers import AutoTokenizer

    from helpers.core.hf import fallback_model_path

    path = fallback_model_path()
    max_tokens = json.loads((path / "sentence_bert_config.json").read_text())["max_seq_length"]
    return TokenBudget(AutoTokenizer.from_pretrained(path), max_tokens)


def token_budget(tokenizer=None, max_tokens: int | None = None) -> TokenBudget:
    """The token budget of a SentenceTransformer, a tokenizer, a budget, or None (the fallback model's).

    A SentenceTransformer gives its tokenizer and ``max_seq_length``; a bare tokenizer its
    ``model_max_length``, at most 512. ``max_tokens`` overrides the limit.
    """
    if tokenizer is None:
        budget = _fallback_budget()
    elif isinstance(tokenizer, TokenBudget):
        budget = tokenizer
    elif hasattr(tokenizer, "max_seq_length") and hasattr(tokenizer, "tokenizer"):  # a SentenceTransformer
        budget = TokenBudget(tokenizer.tokenizer, tokenizer.max_seq_length)
    elif hasattr(tokenizer, "num_special_tokens_to_add"):
        budget = TokenBudget(tokenizer, min(tokenizer.model_max_length, 512))
    else:
        raise TypeError(f"tokenizer must be a Hugging Face tokenizer or a SentenceTransformer, not "
                        f"{type(tokenizer).__name__}")
    return TokenBudget(budget.tokenizer, max_tokens) if max_tokens else budget


# --- splitting ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Span:
    """A stretch ``[start, end)`` of one document's text, with the heading to write above it."""

    start: int
    end: int
    heading: str = ""


def _splitter(budget: TokenBudget | None, size: int, overlap: int):
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    if budget is None:
        return RecursiveCharacterTextSplitter(chunk_size=size, chunk_overlap=overlap)
    return RecursiveCharacterTextSplitter.from_huggingface_tokenizer(
        budget.tokenizer, chunk_size=size, chunk_overlap=min(overlap, size // 2))


def split_spans(text: str, offset: int, splitter) -> list[tuple[int, int]]:
    """Split ``text`` and locate every piece in it (pieces are substrings, in order).

    The splitter's own ``add_start_index`` guesses wrong when length is measured in tokens, so pieces are
    found by searching forward from the previous piece's start.
    """
    spans, pos = [], 0
    for piece in splitter.split_text(text):
        start = text.find(piece, pos)
        if start < 0:
            raise RuntimeError(f"splitter returned text that is not in the document: {piece[:60]!r}")
        spans.append((offset + start, offset + start + len(piece)))
        pos = start + 1
    return spans


def fit_spans(text: str, offset: int, budget: TokenBudget, size: int, overlap: int,
              limit: int | None = None) -> list[tuple[int, int]]:
    """Token-measured split of ``text`` in which no piece has more than ``limit`` (default ``size``) tokens.

    Token counts are not always additive (a merged piece can have more tokens than its parts), so a piece
    over the limit is split again, smaller by its overshoot: the limit holds for any tokenizer.
    """
    limit = limit or size
    spans = split_spans(text, offset, _splitter(budget, size, overlap))
    counts = budget.count([text[s - offset:e - offset] for s, e in spans])
    fitted = []
    for (s, e), n in zip(spans, counts, strict=True):
        piece = text[s - offset:e - offset]
        if n <= limit:
            fitted.append((s, e))
            continue
        smaller = min(size - 1, size - (n - limit))
        if smaller < 1:
            raise RuntimeError(f"cannot split {piece[:60]!r} into pieces of at most {limit} tokens")
        fitted += fit_spans(piece, s, budget, smaller, overlap, limit)
    return fitted


def is_heading(paragraph: str) -> bool:
    """A one-line paragraph that looks like a heading: "3.2 Receipts", "Section 4", "Travel Expenses"."""
    line = paragraph.strip()
    words = line.split()
    if "\n" in line or not 0 < len(words) <= 12 or line[-1] in ".,;:" or not re.search(r"[A-Za-z]", line):
        return False
    if NUMBERED_HEADING.fullmatch(line) or NAMED_HEADING.fullmatch(line):
        return len(words) <= 10
    content = [w for w in words if w.lower() not in SMALL_WORDS and w[0].isalpha()]
    titled = sum(w[0].isupper() for w in content)
    return len(words) <= 8 and words[0][0].isupper() and bool(content) and titled / len(content) >= 0.75


def paragraphs(text: str) -> list[tuple[int, int]]:
    """``[start, end)`` of every paragraph (separated by blank lines)."""
    return [(m.start(), m.end()) for m in re.finditer(r"[^\n]+(?:\n[^\n]+)*", text)]


def sections(text: str, title: str = "") -> list[Span]:
    """Spans of the bodies between heading paragraphs; consecutive headings are joined with " > ".

    Text before the first heading takes the document ``title`` as its heading.
    """
    found, heading, body_start, pending = [], title, 0, []
    for start, end in paragraphs(text) + [(len(text), len(text))]:
        para = text[start:end]
        if start < len(text) and is_heading(para):
            if not pending and text[body_start:start].strip():
                found.append(Span(body_start, start, heading))
            pending.append(para.strip())
            continue
        if pending:
            heading, body_start, pending = " > ".join(pending), start, []
    if text[body_start:].strip():
        found.append(Span(body_start, len(text), heading))
    return [Span(s.start, s.start + len(text[s.start:s.end].rstrip()), s.heading) for s in found]


def merge_short_sections(text: str, secs: list[Span], budget: TokenBudget, min_tokens: int,
                         max_tokens: int) -> list[Span]:
    """Join runs of sections shorter than ``min_tokens`` into one, up to ``max_tokens``.

    Table rows and cover pages look like runs of headings; merged, they make one useful chunk instead of
    several tiny ones. The first heading stays on top; later headings become part of the body.
    """
    merged: list[Span] = []
    size = 0
    for sec, n in zip(secs, budget.count([text[s.start:s.end] for s in secs]), strict=True):
        if merged and size < min_tokens and n < min_tokens:
            joined = Span(merged[-1].start, sec.end, merged[-1].heading)
            joined_size = budget.count([text[joined.start:joined.end]])[0]
            if joined_size <= max_tokens:
                merged[-1], size = joined, joined_size
                continue
        merged.append(sec)
        size = n
    return merged


def structure_spans(text: str, title: str, budget: TokenBudget, size: int, overlap: int) -> list[Span]:
    """Sections (short ones merged), each split by tokens when too long, each part under its heading."""
    size, spans = min(size, budget.passage_limit), []
    for sec in merge_short_sections(text, sections(text, title), budget, size // 4, size):
        heading = fitting_heading(sec.heading, budget, budget.passage_limit // 2)
        heading_tokens = budget.count([heading + "\n"])[0] if heading else 0
        room = min(size, budget.passage_limit - heading_tokens)
        body = text[sec.start:sec.end]
        spans += [Span(s, e, heading) for s, e in fit_spans(body, sec.start, budget, room, overlap)]
    return spans


def fitting_heading(heading: str, budget: TokenBudget, max_tokens: int) -> str:
    """``heading``, or its innermost levels (the last of its " > "-joined parts) that fit in
    ``max_tokens`` tokens; "" when not even the last fits. A run of stacked headings (a reference page's
    table rows each taken for one) can be longer than a passage, which would leave no room for the body."""
    parts = heading.split(" > ") if heading else []
    for first in range(len(parts)):
        inner = " > ".join(parts[first:])
        if budget.count([inner + "\n"])[0] <= max_tokens:
            return inner
    return ""


def recursive_spans(text: str, title: str, budget: TokenBudget, size: int, overlap: int) -> list[Span]:
    """LangChain's recursive splitter, ``size`` characters at most."""
    return [Span(s, e) for s, e in split_spans(text, 0, _splitter(None, size, overlap))]


def token_spans(text: str, title: str, budget: TokenBudget, size: int, overlap: int) -> list[Span]:
    """Windows of ``size`` tokens at most (never more than the model reads)."""
    return [Span(s, e) for s, e in fit_spans(text, 0, budget, min(size, budget.passage_limit), overlap)]


@dataclass(frozen=True)
class Chunker:
    """A chunking strategy: ``spans(text, title, budget, size, overlap)`` and its default sizes."""

    spans: Callable[[str, str, TokenBudget, int, int], list[Span]]
    size: int
    overlap: int
    unit: str = "tokens"  # what size and overlap count


# The one list of chunking strategies: adding one is an entry here (and the test that runs every entry).
CHUNKERS: dict[str, Chunker] = {
    "recursive": Chunker(recursive_spans, 750, 100, unit="characters"),
    "token": Chunker(token_spans, 256, 32),
    "structure": Chunker(structure_spans, 256, 32),
}
STRATEGIES = tuple(CHUNKERS)


def document_spans(text: str, title: str, strategy: str, budget: TokenBudget, size: int,
                   overlap: int) -> list[Span]:
    """The chunk spans of one document for ``strategy``."""
    return CHUNKERS[strategy].spans(text, title, budget, size, overlap)


def pages_of(page_starts: list[tuple[int, int]], start: int, end: int) -> list[int]:
    """Page numbers whose text overlaps ``[start, end)``; ``page_starts`` is (offset, page) in order."""
    bounds = page_starts[1:] + [(float("inf"), 0)]
    return [page for (s, page), (next_s, _) in zip(page_starts, bounds, strict=True)
            if s < end and start < next_s]


def page_offsets(pages: list[Page]) -> dict[str, list[tuple[int, int]]]:
    """Per document, where each page's text starts in :func:`document_texts` (pages joined by blank lines)."""
    offsets: dict[str, list[tuple[int, int]]] = {}
    ends: dict[str, int] = {}
    for page in sorted(pages, key=lambda p: (p.source, p.page)):
        start = ends.get(page.source, -2) + 2
        offsets.setdefault(page.source, []).append((start, page.page))
        ends[page.source] = start + len(page.text)
    return offsets


def resolve_sizes(strategy: str, chunk_size: int | None, chunk_overlap: int | None) -> tuple[int, int]:
    """``(chunk_size, chunk_overlap)`` for ``strategy``, defaults filled in; bad values raise ValueError."""
    if strategy not in CHUNKERS:
        raise ValueError(f"Unknown chunking strategy {strategy!r}: choose one of {', '.join(STRATEGIES)}.")
    size = chunk_size or CHUNKERS[strategy].size
    overlap = CHUNKERS[strategy].overlap if chunk_overlap is None else chunk_overlap
    if not 0 <= overlap < size:
        raise ValueError(f"chunk_overlap must be >= 0 and smaller than chunk_size ({overlap} vs {size}).")
    return size, overlap


def chunk_documents(pages: list[Page], strategy: str = "recursive", chunk_size: int | None = None,
                    chunk_overlap: int | None = None, tokenizer=None, max_tokens: int | None = None,
                    progress: bool = True) -> list[Chunk]:
    """Chunk every document of ``pages`` with ``strategy`` (a name in ``CHUNKERS``).

    Sizes are in the chunker's unit, characters for "recursive" and tokens otherwise (defaults in
    ``CHUNKERS``); token chunks never exceed the model's limit. ``tokenizer`` (see :func:`token_budget`;
    default: the fallback model's) counts ``Chunk.n_tokens`` for every strategy; ``max_tokens`` overrides
    the model's limit.
    """
    size, overlap = resolve_sizes(strategy, chunk_size, chunk_overlap)
    budget = token_budget(tokenizer, max_tokens)
    texts, offsets = document_texts(pages), page_offsets(pages)
    titles = {p.source: p.title for p in pages}
    chunks = []
    bar = tqdm(texts.items(), desc=f"Chunking ({strategy})", unit="doc", disable=None if progress else True)
    for source, text in bar:  # disable=None: no bar when the output is not a terminal
        spans = document_spans(text, titles[source], strategy, budget, size, overlap)
        bodies = [text[s.start:s.end] for s in spans]
        full = [f"{s.heading}\n{b}" if s.heading else b for s, b in zip(spans, bodies, strict=True)]
        chunks += [Chunk(text=t, source=source, pages=pages_of(offsets[source], s.start, s.end),
                         start=s.start, end=s.end, n_tokens=n, heading=s.heading)
                   for s, t, n in zip(spans, full, budget.count(full), strict=True)]
    _warn_over_limit(chunks, budget.passage_limit)
    return chunks


def _warn_over_limit(chunks: list[Chunk], limit: int) -> None:
    over = sum(c.n_tokens > limit for c in chunks)
    if over:
        logger.warning(f"Warning: {over} of {len(chunks)} chunks exceed the model's {limit} tokens and would "
                       "be truncated when embedded; use strategy='token' or 'structure', or a smaller "
                       "chunk_size.")


# --- filtering ------------------------------------------------------------------------------------


def boilerplate_reason(text: str) -> str | None:
    """Why ``text`` is boilerplate (table of contents, cookie banner, navigation), or None."""
    lower = " ".join(text.lower().split())
    words = lower.split()
    if len(DOTTED_LEADER.findall(text)) >= 3 and len(DOTTED_LEADER.findall(text)) * 15 >= len(words):
        return "table_of_contents"
    if any(p in lower for p in COOKIE_PHRASES) and len(words) < 120:
        return "cookie_banner"
    hits = sum(p in lower for p in NAV_PHRASES)
    if hits >= 2 or (hits and len(words) < 40) or _menu_like(text):
        return "navigation"
    return None


def _menu_like(text: str) -> bool:
    """Many short Title Case lines holding much of the words: a menu, not a list of facts or sections."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    menu = [line for line in lines if len(line.split()) <= 5 and is_heading(line)]
    return len(menu) >= 5 and sum(len(m.split()) for m in menu) >= 0.4 * len(text.split())


def _normalized(text: str) -> str:
    return " ".join(re.sub(r"[^\w]+", " ", text.lower()).split())


def _shingles(normalized: str) -> set[str]:
    words = normalized.split()
    if len(words) <= SHINGLE_WORDS:
        return {normalized}
    return {" ".join(words[i:i + SHINGLE_WORDS]) for i in range(len(words) - SHINGLE_WORDS + 1)}


def filter_chunks(chunks: list[Chunk], min_words: int = MIN_WORDS,
                  jaccard: float = NEAR_DUPLICATE_JACCARD) -> tuple[list[Chunk], dict[str, int]]:
    """Drop boilerplate, too-short chunks, exact and near duplicates (word-shingle Jaccard >= ``jaccard``).

    The first of a group of duplicates is kept. Returns the kept chunks and the count per reason.
    """
    kept, dropped = [], Counter()
    seen: set[str] = set()
    index: dict[str, list[int]] = {}  # shingle -> positions in kept_shingles
    kept_shingles: list[set[str]] = []
    for chunk in chunks:
        norm = _normalized(chunk.text)
        reason = boilerplate_reason(chunk.text)
        if reason is None and len(norm.split()) < min_words:
            reason = "too_short"
        if reason is None and norm in seen:
            reason = "duplicate"
        shingles = _shingles(norm)
        if reason is None and _has_near_duplicate(shingles, index, kept_shingles, jaccard):
            reason = "near_duplicate"
        if reason:
            dropped[reason] += 1
            continue
        kept.append(chunk)
        seen.add(norm)
        for s in shingles:
            index.setdefault(s, []).append(len(kept_shingles))
        kept_shingles.append(shingles)
    return kept, dict(dropped)


def _has_near_duplicate(shingles: set[str], index: dict[str, list[int]], kept: list[set[str]],
                        jaccard: float) -> bool:
    shared = Counter(i for s in shingles for i in index.get(s, ()))
    return any(n / (len(shingles) + len(kept[i]) - n) >= jaccard for i, n in shared.items())


# --- artifacts ------------------------------------------------------------------------------------


def save_chunks(chunks: list[Chunk], path: Path | str) -> int:
    """Write chunks as JSON lines, atomically; return how many."""
    return write_jsonl(path, (c.to_dict() for c in chunks))


def load_chunks(path: Path | str) -> list[Chunk]:
    """Read chunks written by :func:`save_chunks`."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No chunks at {path}: run the chunking stage first (notebook 01).")
    return [Chunk.from_dict(row) for row in read_jsonl(path)]


def token_stats(chunks: list[Chunk], limit: int) -> dict:
    """Min, median, mean and max tokens per chunk, and how many exceed ``limit``."""
    n = [c.n_tokens for c in chunks] or [0]
    return {"min": min(n), "median": statistics.median(n), "mean": round(statistics.fmean(n), 1),
            "max": max(n), "limit": limit, "over_limit": sum(x > limit for x in n)}


def build_chunks(pdf_dir: Path, out_path: Path, strategy: str = "structure", tokenizer=None,
                 chunk_size: int | None = None, chunk_overlap: int | None = None) -> dict:
    """The chunking stage: load and clean the PDFs, chunk, filter, save; return (and save) a summary.

    Beside the chunks it writes the summary as ``<out_path stem>.report.json``, a histogram of
    tokens per chunk as ``<out_path stem>.lengths.png`` and, when the folder carries gold questions
    (``gold_questions.jsonl``, people's questions on these PDFs), a copy the evaluation reads.
    """
    import matplotlib.pyplot as plt

    out_path = Path(out_path)
    loaded = load_pdfs(pdf_dir)
    if not loaded.pages:
        raise ValueError(f"No text could be loaded from {pdf_dir}: see the problems listed above.")
    budget = token_budget(tokenizer)
    kept, dropped = filter_chunks(chunk_documents(loaded.pages, strategy, chunk_size, chunk_overlap, budget))
    save_chunks(kept, out_path)
    size, overlap = resolve_sizes(strategy, chunk_size, chunk_overlap)
    plot = out_path.with_name(f"{out_path.stem}.lengths.png")
    gold = copy_corpus_gold(pdf_dir, out_path.with_name(CORPUS_GOLD_FILENAME))
    summary = {
        "documents": len({p.source for p in loaded.pages}), "pages": len(loaded.pages),
        "problems": [str(p) for p in loaded.problems], "chunks": len(kept), "dropped": dropped,
        "tokens": token_stats(kept, budget.passage_limit), "strategy": strategy,
        "settings": {"chunk_size": size, "chunk_overlap": overlap,
                     "unit": CHUNKERS[strategy].unit,
                     "max_tokens": budget.max_tokens, "tokenizer": budget.tokenizer.name_or_path},
        "plot": plot.name, "gold_questions": gold,
    }
    write_json(out_path.with_name(f"{out_path.stem}.report.json"), summary)
    plt.close(plot_chunk_lengths({strategy: kept}, budget.passage_limit, plot))
    logger.info(f"{len(kept)} chunks ({strategy}) -> {shown(out_path)}; dropped {dropped or 'none'}"
                + (f"; {gold} gold questions came with the PDFs" if gold else ""))
    return summary


# --- plots ----------------------------------------------------------------------------------------


def plot_chunk_lengths(chunks_by_strategy: dict[str, list[Chunk]], max_tokens: int,
                       path: Path | str | None = None):
    """One histogram of tokens per chunk for each strategy, with the model's limit as a red line."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(len(chunks_by_strategy), 1, sharex=True, squeeze=False,
                             figsize=(8, 2.2 * len(chunks_by_strategy)))
    for ax, (name, chunks) in zip(axes[:, 0], chunks_by_strategy.items(), strict=True):
        ax.hist([c.n_tokens for c in chunks], bins=40, color="tab:blue", alpha=0.8)
        ax.axvline(max_tokens, color="tab:red", linestyle="--", label=f"model limit ({max_tokens})")
        ax.set_ylabel("chunks")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"{name}: {len(chunks)} chunks", fontsize=10)
        ax.legend(loc="upper left", fontsize=8)
    axes[-1, 0].set_xlabel("tokens per chunk")
    fig.tight_layout()
    save_figure(fig, path)
    return fig


def run(paths: RunPaths, settings: RunSettings) -> dict:
    """The pipeline's chunking stage: ``settings.pdf_dir`` into ``paths.chunks``, lengths measured with the
    base model's own tokenizer so that nothing is truncated later."""
    from helpers.core.models import load_embedding_model

    tokenizer = load_embedding_model(settings.model_id).model
    return build_chunks(settings.pdf_dir, paths.chunks, tokenizer=tokenizer)
