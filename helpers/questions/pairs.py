"""Question/passage pairs: the record, validation with a reason per rejection, a split by chunk id that
cannot leak, a leakage check, and the on-disk dataset (a Hugging Face ``DatasetDict`` + ``report.json``).

Validation rules (first failing rule wins, its name is the rejection reason):

- ``empty``; ``template_residue``: prompt or chat debris such as "QUESTION #1", "Q1:", leading numbering,
  "Here are the questions", literal ``\\n``, unfilled ``{placeholders}`` or stringified chat messages
  ("{'role': 'user'", "content='...'", "additional_kwargs");
- ``about_document``: questions about the document instead of its content ("What is this passage
  about?", "According to the text, ...");
- ``too_short`` / ``too_long``: fewer than 3 words, or more than 40 words or 300 characters;
- ``not_a_question``: an LLM's output must end with "?" or start with a question word. Offline generators
  may also produce keyword queries (what people type into search boxes), so theirs are exempt;
- ``copies_passage``: 8 or more consecutive words copied from the passage, or a copied run of 5 or more
  words that makes up 75% of the question (not for inverse cloze, whose query is a sentence by design);
- ``duplicate`` (same normalized text as an earlier question) and ``near_duplicate`` (cosine >= 0.95
  with an earlier question under the embedding model given to ``validate``).
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import shutil
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from itertools import combinations
from pathlib import Path

from helpers.core.io import write_json
from helpers.core.schema import Chunk

COLUMNS = ("id", "anchor", "positive", "chunk_id", "generator")
SPLITS = ("train", "validation", "test")
UNSEEN = "unseen"  # questions on documents held out from training (a split by document, see split_pairs)
DUPLICATE_COSINE = 0.95
# Inverse cloze copies a sentence of the chunk on purpose (and mostly removes it from the positive).
COPIES_ALLOWED = {"offline:ict"}

QUESTION_WORDS = {"what", "which", "who", "whom", "whose", "when", "where", "why", "how", "is", "are", "was",
                  "were", "do", "does", "did", "can", "could", "should", "would", "will", "may", "might",
                  "must", "has", "have", "had", "shall"}
TEMPLATE_RESIDUE = re.compile(
    r"question\s*#\s*\d|^\s*(q|question)\s*\d+\s*[:.)\-]|^\s*\(?\d+\s*[.):]\s|^\s*[-*\u2022]\s"
    r"|here (are|is) (the|some|your|a few|\d+)\b|^\s*(sure|certainly|okay)\b[,!.]"
    r"|^\s*(context|passage|answer|question)\s*:|\\[nt]|\{\{|\}\}|\{[a-z_]+\}"
    r"|['\"]role['\"]\s*:|\bcontent\s*=\s*['\"]|additional_kwargs|response_metadata"
    r"|\b(Human|AI|System)Message\b",
    re.IGNORECASE,
)
ABOUT_DOCUMENT = re.compile(
    r"\b(this|the|that|above|given|provided)\s+(given\s+|provided\s+|above\s+)?"
    r"(text|passage|context|document|excerpt|article|paragraph|snippet|author)s?\b"
    r"|\baccording to (it|them)\b",
    re.IGNORECASE,
)


@dataclass
class GenerationResult:
    """Pairs made from chunks, and what it took: failures with reasons, requests and token usage."""

    pairs: list[dict]
    generator: str  # "llm:<model>" or "offline"
    requested: int  # questions asked for
    failures: list[dict] = field(default_factory=list)  # {"chunk_id", "reason", "example"}
    usage: dict = field(default_factory=dict)


def make_pair(question: str, chunk: Chunk, generator: str, positive: str | None = None) -> dict:
    """One pair; its id is a hash of the chunk id and the question. ``positive`` is the passage the model
    learns to find for ``question`` (default: the chunk's text; inverse cloze removes the query from it),
    ``chunk_id`` is what splits, leakage checks and evaluation key on."""
    pair_id = hashlib.sha256(f"{chunk.id}\x00{question}".encode()).hexdigest()[:16]
    return {"id": pair_id, "anchor": question, "positive": chunk.text if positive is None else positive,
            "chunk_id": chunk.id, "generator": generator}


def normalize(text: str) -> str:
    """Lowercase words only: the key for exact duplicates."""
    return " ".join(re.findall(r"\w+", text.lower()))


# ------------------------------------------------------------------------------------------- validation


def rejection_reason(pair: dict, min_words: int = 3, max_words: int = 40, max_chars: int = 300,
                     max_copied_words: int = 8) -> str | None:
    """The first rule ``pair`` breaks (see the module docstring), or None."""
    question = pair["anchor"].strip()
    words = normalize(question).split()
    if not words:
        return "empty"
    if TEMPLATE_RESIDUE.search(question):
        return "template_residue"
    if ABOUT_DOCUMENT.search(question):
        return "about_document"
    if len(words) < min_words:
        return "too_short"
    if len(words) > max_words or len(question) > max_chars:
        return "too_long"
    keyword_query_allowed = pair["generator"].startswith("offline:")
    if not (question.endswith("?") or words[0] in QUESTION_WORDS or keyword_query_allowed):
        return "not_a_question"
    if pair["generator"] in COPIES_ALLOWED:
        return None
    copied = longest_copied_run(words, normalize(pair["positive"]).split())
    if copied >= max_copied_words or (copied >= 5 and copied >= 0.75 * len(words)):
        return "copies_passage"
    return None


def longest_copied_run(question_words: list[str], passage_words: list[str]) -> int:
    """Length of the longest run of consecutive words shared by the question and the passage."""
    matcher = SequenceMatcher(None, question_words, passage_words, autojunk=False)
    return matcher.find_longest_match(0, len(question_words), 0, len(passage_words)).size


def validate(pairs: list[dict], model=None, threshold: float = DUPLICATE_COSINE,
             **rules) -> tuple[list[dict], list[dict]]:
    """Split ``pairs`` into kept and rejected; each rejected pair gets a ``reason`` (and ``duplicate_of``).

    ``model`` (a SentenceTransformer, ``LoadedModel`` or ``QuestionEncoder``) enables near-duplicate
    detection; without it only exact duplicates (same normalized text) are caught. ``rules`` go to
    ``rejection_reason``.
    """
    kept, rejected, seen = [], [], {}
    for pair in pairs:
        reason = rejection_reason(pair, **rules)
        key = normalize(pair["anchor"])
        if reason is None and key in seen:
            rejected.append(pair | {"reason": "duplicate", "duplicate_of": seen[key]})
        elif reason:
            rejected.append(pair | {"reason": reason})
        else:
            seen[key] = pair["anchor"]
            kept.append(pair)
    if model is not None and kept:
        earlier = near_duplicate_of(question_encoder(model)([p["anchor"] for p in kept]), threshold)
        rejected += [kept[i] | {"reason": "near_duplicate", "duplicate_of": kept[j]["anchor"]}
                     for i, j in earlier.items()]
        kept = [p for i, p in enumerate(kept) if i not in earlier]
    return kept, rejected


def rejection_summary(rejected: list[dict], examples: int = 3) -> dict:
    """``{reason: {"count": n, "examples": [...]}}``, the most frequent reason first."""
    by_reason: dict[str, list[dict]] = defaultdict(list)
    for pair in rejected:
        by_reason[pair["reason"]].append(pair)
    return {reason: {"count": len(items), "examples": [_example(p) for p in items[:examples]]}
            for reason, items in sorted(by_reason.items(), key=lambda kv: (-len(kv[1]), kv[0]))}


def _example(pair: dict) -> dict:
    example = {"anchor": pair["anchor"], "chunk_id": pair["chunk_id"], "generator": pair["generator"]}
    return example | ({"duplicate_of": pair["duplicate_of"]} if "duplicate_of" in pair else {})


# --------------------------------------------------------------------------------------------- embeddings


class QuestionEncoder:
    """Normalized question embeddings under a model, with its query prompt; each text is encoded once
    however often validation and the leakage check ask for it."""

    def __init__(self, model) -> None:
        from helpers.core.models import LoadedModel

        self.model = model.model if isinstance(model, LoadedModel) else model
        self.vectors: dict = {}

    def __call__(self, texts: list[str]):
        import numpy as np

        new = [text for text in dict.fromkeys(texts) if text not in self.vectors]
        if new:
            prompt_name = "query" if "query" in (getattr(self.model, "prompts", None) or {}) else None
            encoded = self.model.encode(new, prompt_name=prompt_name, normalize_embeddings=True,
                                        convert_to_numpy=True, show_progress_bar=False, batch_size=64)
            self.vectors.update(zip(new, encoded, strict=True))
        return np.stack([self.vectors[text] for text in texts])


def question_encoder(model) -> QuestionEncoder:
    """``model`` (a SentenceTransformer, ``LoadedModel`` or ``QuestionEncoder``) as a ``QuestionEncoder``."""
    return model if isinstance(model, QuestionEncoder) else QuestionEncoder(model)


def near_duplicate_of(embeddings, threshold: float, block: int = 1024) -> dict[int, int]:
    """``{i: j}`` for each row ``i`` with an earlier row ``j`` at cosine >= ``threshold`` (the closest)."""
    found = {}
    for start in range(0, len(embeddings), block):
        sims = embeddings[start:start + block] @ embeddings[:start + block].T
        for row in range(sims.shape[0]):
            i = start + row
            if i and sims[row, :i].max() >= threshold:
                found[i] = int(sims[row, :i].argmax())
    return found


# ------------------------------------------------------------------------------------ split and leakage


class LeakageError(ValueError):
    """An evaluation split shares chunks, passages or (near-)identical questions with another split."""


@dataclass(frozen=True)
class SplitBudget:
    """Questions per split to aim for (None: no cap). Whole chunks are taken: train and validation stop
    at the first chunk that reaches their cap; the train chunks left over then fill the test split up to
    its target, so no chunk that training skips is wasted."""

    train: int | None = None
    validation: int | None = None
    test: int | None = None


def split_pairs(pairs: list[dict], ratios: tuple[float, float, float] = (0.8, 0.1, 0.1), seed: int = 42,
                test_only: set[str] = frozenset(), chunk_texts: dict[str, str] | None = None,
                budget: SplitBudget = SplitBudget(), unseen: set[str] = frozenset()):
    """A ``DatasetDict`` (train, validation, test) split BY CHUNK: all questions of a chunk (keyed by its
    id), and of any chunk with the same text in ``chunk_texts`` (chunk id -> text), land in one split.
    Split sizes follow ``ratios`` in chunks, then ``budget``; the questions on chunks in ``test_only``
    (held out from training) go to the test split on top. The questions on chunks in ``unseen`` (the
    chunks of documents held out from training) make a fourth split, ``UNSEEN``, capped like the test."""
    if len(ratios) != 3 or min(ratios) < 0 or abs(sum(ratios) - 1) > 1e-6:
        raise ValueError(f"ratios must be three non-negative numbers that sum to 1, got {ratios}")
    texts = chunk_texts or {}
    groups: dict[str, list[dict]] = defaultdict(list)
    for pair in pairs:
        cid = pair["chunk_id"]
        groups[normalize(texts[cid]) if cid in texts else cid].append(pair)

    def keys_with(ids: set[str]) -> list[str]:
        return sorted(k for k, group in groups.items() if any(p["chunk_id"] in ids for p in group))

    held_docs = keys_with(unseen)
    held_out = sorted(set(keys_with(test_only)) - set(held_docs))
    keys = sorted(set(groups) - set(held_out) - set(held_docs))
    if len(keys) < 3:
        raise ValueError(f"Need questions on at least 3 different chunks to split, got {len(keys)}.")
    random.Random(seed).shuffle(keys)
    random.Random(seed).shuffle(held_docs)
    n_val, n_test = (max(1 if r > 0 else 0, round(len(keys) * r)) for r in ratios[1:])
    assigned = _within_budget({"validation": keys[:n_val], "test": keys[n_val:n_val + n_test] + held_out,
                               "train": keys[n_val + n_test:], UNSEEN: held_docs}, groups, budget)
    order = {pair["id"]: i for i, pair in enumerate(pairs)}
    rows = {name: sorted((p for k in ks for p in groups[k]), key=lambda p: order[p["id"]])
            for name, ks in assigned.items() if ks or name in SPLITS}
    return to_dataset_dict(rows)


def _within_budget(assigned: dict[str, list[str]], groups: dict[str, list[dict]], budget: SplitBudget
                   ) -> dict[str, list[str]]:
    """``assigned`` (split -> chunk keys) cut to ``budget``; spare train chunks top up the test split."""

    def take(keys: list[str], cap: int | None) -> tuple[list[str], list[str]]:
        taken, count = [], 0
        for i, key in enumerate(keys):
            if cap is not None and count >= cap:
                return taken, keys[i:]
            taken.append(key)
            count += len(groups[key])
        return taken, []

    train, spare = take(assigned["train"], budget.train)
    validation, _ = take(assigned["validation"], budget.validation)
    room = (budget.test or 0) - sum(len(groups[k]) for k in assigned["test"])
    extra = take(spare, room)[0] if room > 0 else []
    unseen, _ = take(assigned[UNSEEN], budget.test)
    return {"validation": validation, "test": assigned["test"] + extra, "train": train, UNSEEN: unseen}


def to_dataset_dict(rows: dict[str, list[dict]]):
    """Rows per split -> ``DatasetDict`` with string columns ``COLUMNS``: train, validation and test (empty
    ones keep the columns), and ``UNSEEN`` when ``rows`` has it."""
    from datasets import Dataset, DatasetDict, Features, Value

    features = Features({c: Value("string") for c in COLUMNS})
    names = [*SPLITS, *([UNSEEN] if UNSEEN in rows else [])]
    return DatasetDict({name: Dataset.from_list([{c: r[c] for c in COLUMNS} for r in rows.get(name, [])],
                                                features=features) for name in names})


def check_leakage(dataset_dict, model=None, threshold: float = DUPLICATE_COSINE,
                  chunk_texts: dict[str, str] | None = None) -> dict:
    """Raise ``LeakageError`` if two splits share a chunk id, a chunk text (``chunk_texts``: chunk id ->
    text; without it, the positives' texts) or a question (same normalized text, or cosine >=
    ``threshold`` under ``model``, as in ``validate``); else return what was checked."""
    problems = []
    names = [name for name in (*SPLITS, UNSEEN) if name in dataset_dict]
    encode = question_encoder(model) if model is not None else None
    embeddings = {name: encode(dataset_dict[name]["anchor"]) for name in names
                  if encode is not None and len(dataset_dict[name])}

    def texts(split) -> list[str]:
        if chunk_texts is None:
            return split["positive"]
        return [chunk_texts.get(cid, cid) for cid in split["chunk_id"]]

    for a, b in combinations(names, 2):
        da, db = dataset_dict[a], dataset_dict[b]
        for what, values, key in (("chunk id", lambda d: d["chunk_id"], str),
                                  ("chunk text", texts, normalize),
                                  ("question", lambda d: d["anchor"], normalize)):
            shared = {key(x) for x in values(da)} & {key(x) for x in values(db)}
            if shared:
                problems.append(f"{a}/{b} share {len(shared)} {what}(s), e.g. {sorted(shared)[0][:80]!r}")
        if a in embeddings and b in embeddings:
            close = cross_duplicates(embeddings[a], embeddings[b], threshold)
            if close:
                i, j, sim = close[0]
                problems.append(f"{a}/{b} have {len(close)} near-duplicate question(s), e.g. "
                                f"{da[i]['anchor']!r} ~ {db[j]['anchor']!r} (cosine {sim:.3f})")
    if problems:
        raise LeakageError("Leakage between splits: " + "; ".join(problems))
    checks = "chunk ids, chunk texts, normalized questions" + (
        f", question embeddings (cosine >= {threshold})" if model is not None else "")
    return {"ok": True, "checked": checks, "split_pairs": [f"{a}/{b}" for a, b in combinations(names, 2)]}


def cross_duplicates(a, b, threshold: float, block: int = 1024) -> list[tuple[int, int, float]]:
    """``(i, j, cosine)`` for rows of ``a`` whose closest row ``j`` in ``b`` is at cosine >= ``threshold``."""
    found = []
    for start in range(0, len(a), block):
        sims = a[start:start + block] @ b.T
        for row, j in enumerate(sims.argmax(axis=1)):
            if sims[row, j] >= threshold:
                found.append((start + row, int(j), float(sims[row, j])))
    return found


# ------------------------------------------------------------------------------------------------ disk


def save_pairs(dataset_dict, out_dir: Path | str, report: dict) -> Path:
    """Write the dataset and ``report.json`` to ``out_dir``, replacing it only once both are complete."""
    out_dir = Path(out_dir)
    tmp, old = out_dir.with_name(f".{out_dir.name}.tmp"), out_dir.with_name(f".{out_dir.name}.old")
    for path in (tmp, old):
        shutil.rmtree(path, ignore_errors=True)
    dataset_dict.save_to_disk(str(tmp))
    write_json(tmp / "report.json", report)
    if out_dir.exists():
        out_dir.rename(old)
    tmp.rename(out_dir)
    shutil.rmtree(old, ignore_errors=True)
    return out_dir


def load_pairs(path: Path | str):
    """The ``DatasetDict`` saved by ``save_pairs``."""
    from datasets import load_from_disk

    if not (Path(path) / "dataset_dict.json").exists():
        raise FileNotFoundError(f"No pairs at {path}: run the questions stage first (notebook 02 or "
                                "`python -m helpers questions`).")
    return load_from_disk(str(path))


def held_out_documents(pairs_dir: Path | str) -> list[str]:
    """The documents the pairs at ``pairs_dir`` keep out of training (none for a split by chunk)."""
    report = Path(pairs_dir) / "report.json"
    return json.loads(report.read_text()).get("held_out_documents", []) if report.is_file() else []


def generator_counts(pairs: list[dict]) -> dict[str, int]:
    return dict(Counter(p["generator"] for p in pairs).most_common())
