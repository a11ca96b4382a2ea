"""Questions without an LLM, from unsupervised-retrieval ideas; deterministic for a seed.

- ``offline:heading``: the chunk's section heading with one of its keyphrases, as a question;
- ``offline:ict``: inverse cloze as Lee et al. (2019) publish it: one sentence of the chunk is the query,
  and the positive is the chunk without that sentence most of the time (``ict_removal``, 0.9), so the
  model must find the passage from its context rather than from shared words; the chunk id still names
  the real chunk, which is what splits and evaluation use;
- ``offline:keyphrase``: the chunk's top TF-IDF phrases as a short question or a keyword query.

Keyword queries (no question mark) are intended: people type them into search boxes, and
``helpers.questions.pairs.validate`` accepts them from offline generators only.
"""

from __future__ import annotations

import random
import re
from dataclasses import replace

from helpers.core.schema import Chunk
from helpers.questions.pairs import GenerationResult, make_pair

WORD_PATTERN = r"(?u)\b[A-Za-z][A-Za-z0-9\-]+\b"
KEYPHRASE_TEMPLATES = ("What is {a}?", "How does {a} relate to {b}?", "{a} {b}",
                       "What are the details of {a}?")
SINGLE_PHRASE_TEMPLATES = ("What is {a}?", "What are the details of {a}?")
HEADING_TEMPLATES = ("What does {h} say about {a}?", "{h}: what about {a}?", "{a} {h}")
ICT_REMOVAL = 0.9  # share of inverse-cloze pairs whose positive lacks the query sentence (Lee et al.: 0.9)
ICT_WORDS = (6, 40)  # sentences of this many words (and at most MAX_QUERY_CHARS) make queries
MAX_QUERY_CHARS = 300  # what validation accepts


def generate_offline(chunks: list[Chunk], n_per_chunk: int, seed: int = 42, progress: bool = True,
                     ict_removal: float = ICT_REMOVAL) -> GenerationResult:
    """``n_per_chunk`` questions per chunk, rotating through the methods that apply to each chunk."""
    from tqdm.auto import tqdm

    phrases = keyphrases([c.text for c in chunks])
    running = running_headers(chunks)
    pairs = []
    for chunk, chunk_phrases in tqdm(list(zip(chunks, phrases, strict=True)), desc="Offline questions",
                                     unit="chunk", disable=None if progress else True):
        if chunk.heading in running:  # a title repeated on every page says nothing about this section
            chunk = replace(chunk, heading="")
        pairs += offline_questions(chunk, chunk_phrases, n_per_chunk, random.Random(f"{seed}:{chunk.id}"),
                                   ict_removal)
    return GenerationResult(pairs, "offline", requested=n_per_chunk * len(chunks))


def running_headers(chunks: list[Chunk]) -> set[str]:
    """Headings found in more than one document: series titles and page headers, not section names."""
    sources: dict[str, set[str]] = {}
    for chunk in chunks:
        sources.setdefault(chunk.heading, set()).add(chunk.source)
    return {heading for heading, docs in sources.items() if heading and len(docs) > 1}


def offline_questions(chunk: Chunk, phrases: list[str], n: int, rng: random.Random,
                      ict_removal: float = ICT_REMOVAL) -> list[dict]:
    """Up to ``n`` pairs for one chunk (fewer when it has too little text for a method)."""
    heading = clean_heading(chunk.heading)
    heading_words = set(heading.lower().split())
    # phrases the heading lacks, lowest-ranked first: the keyphrase questions take the top ones
    topics = [p for p in reversed(phrases) if not heading_words & set(p.lower().split())]
    sentences = ict_sentences(chunk.text)
    rng.shuffle(sentences)
    kinds = (["ict"] if len(sentences) > 1 else []) + (["keyphrase"] if phrases else []) + (
        ["heading"] if heading and topics else [])
    rng.shuffle(kinds)
    pairs = []
    for j in range(n if kinds else 0):
        kind, turn = kinds[j % len(kinds)], j // len(kinds)
        if kind == "ict":
            if turn < len(sentences) - 1:  # the positive keeps at least one sentence
                pairs.append(ict_pair(chunk, sentences[turn], rng.random() < ict_removal))
            continue
        if kind == "heading":
            question = rng.choice(HEADING_TEMPLATES).format(h=heading, a=topics[turn % len(topics)])
        else:
            question = keyphrase_question(phrases, turn, rng)
        if question:
            pairs.append(make_pair(question, chunk, f"offline:{kind}"))
    return pairs


def ict_pair(chunk: Chunk, sentence: str, remove: bool) -> dict:
    """An inverse-cloze pair: ``sentence`` is the query; ``remove`` cuts it from the positive."""
    positive = without_sentence(chunk.text, sentence) if remove else chunk.text
    return make_pair(sentence, chunk, "offline:ict", positive=positive)


def without_sentence(text: str, sentence: str) -> str:
    """``text`` (whitespace normalized) with ``sentence`` cut out once."""
    flat = " ".join(text.split())
    return " ".join(flat.replace(sentence, " ", 1).split())


def keyphrase_question(phrases: list[str], turn: int, rng: random.Random) -> str:
    """A question or keyword query from the chunk's phrases number ``2*turn`` and ``2*turn + 1``."""
    if not phrases:
        return ""
    a, b = phrases[(2 * turn) % len(phrases)], phrases[(2 * turn + 1) % len(phrases)]
    return rng.choice(KEYPHRASE_TEMPLATES if a != b else SINGLE_PHRASE_TEMPLATES).format(a=a, b=b)


def keyphrases(texts: list[str], top_k: int = 6) -> list[list[str]]:
    """Each text's best phrases: runs of up to 3 adjacent content words, scored by summed TF-IDF."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(token_pattern=WORD_PATTERN, stop_words="english", sublinear_tf=True)
    try:
        weights = vectorizer.fit_transform(texts).tocsr()
    except ValueError:  # no content words in any text
        return [[] for _ in texts]
    vocab = vectorizer.vocabulary_
    ranked = []
    for i, text in enumerate(texts):
        row = weights.getrow(i)
        weight = dict(zip(row.indices, row.data, strict=True))
        scores = {p: sum(weight.get(vocab[w.lower()], 0.0) for w in p.split())
                  for p in candidate_phrases(text, vocab.keys())}
        ranked.append(distinct(sorted(scores, key=lambda p: (-scores[p], p)), top_k))
    return ranked


def prose_lines(text: str, min_words: int = 8) -> str:
    """The lines of ``text`` that read as prose: long ones, or ones that end a sentence. Table rows and
    labels ("Version Date Summary of changes", "Policy owner Data Protection Officer") are left out: as
    questions ("What is Version Date Summary?") they teach nothing."""
    return "\n".join(line for line in text.splitlines()
                     if len(line.split()) >= min_words or line.rstrip().endswith((".", "!", "?")))


def candidate_phrases(text: str, vocabulary, max_words: int = 3) -> list[str]:
    """Runs of vocabulary words on one prose line (``prose_lines``), separated by spaces only, cut into
    pieces of ``max_words``."""
    text = prose_lines(text)
    runs: list[list[str]] = [[]]
    last_end = -1
    for match in re.finditer(WORD_PATTERN, text):
        word = match.group()
        adjacent = last_end >= 0 and re.fullmatch(r"[ \t]+", text[last_end:match.start()]) is not None
        if word.lower() not in vocabulary or not adjacent:
            runs.append([])
        if word.lower() in vocabulary:
            runs[-1].append(word)
        last_end = match.end()
    return [" ".join(r[i:i + max_words]) for r in runs for i in range(0, len(r), max_words)]


def distinct(phrases: list[str], top_k: int) -> list[str]:
    """The first ``top_k`` phrases that share no word with an earlier chosen phrase."""
    chosen: list[str] = []
    seen: set[str] = set()
    for phrase in phrases:
        words = set(phrase.lower().split())
        if not words & seen:
            chosen.append(phrase)
            seen |= words
        if len(chosen) == top_k:
            break
    return chosen


def clean_heading(heading: str, max_words: int = 8) -> str:
    """The last part of a heading path ("A > 2.1 B" -> "B") without numbering, at most ``max_words`` words."""
    numbering = r"^\s*(#+|(section|chapter|part)\s+\w+[:.\-]?|\d+(\.\d+)*[.)]?)\s+"
    text = re.sub(numbering, "", heading.split(">")[-1], flags=re.IGNORECASE)
    return " ".join(text.split()[:max_words]).strip(" :.-")


def ict_sentences(text: str, words: tuple[int, int] = ICT_WORDS) -> list[str]:
    """Sentences of ``text`` (whitespace normalized) with a number of words within ``words``."""
    sentences = re.split(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])", " ".join(text.split()))
    return [s for s in sentences if words[0] <= len(s.split()) <= words[1] and len(s) <= MAX_QUERY_CHARS]
