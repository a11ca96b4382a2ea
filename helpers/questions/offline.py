"""Questions without an LLM, from unsupervised-retrieval ideas; deterministic for a seed.

- ``offline:heading``: the chunk's section heading with one of its keyphrases, as a question;
- ``offline:ict``: inverse cloze (Lee et al., 2019): one sentence of the chunk as the query, reduced to
  its content words (the passage keeps the sentence, so the query must not be a verbatim copy of it);
- ``offline:keyphrase``: the chunk's top TF-IDF phrases as a short question or a keyword query.

Keyword queries (no question mark) are intended: people type them into search boxes, and
``helpers.questions.pairs.validate`` accepts them from offline generators only.
"""

from __future__ import annotations

import random
import re

from helpers.core.schema import Chunk
from helpers.questions.pairs import GenerationResult, make_pair

WORD_PATTERN = r"(?u)\b[A-Za-z][A-Za-z0-9\-]+\b"
KEYPHRASE_TEMPLATES = ("What is {a}?", "How does {a} relate to {b}?", "{a} {b}",
                       "What are the details of {a}?")
SINGLE_PHRASE_TEMPLATES = ("What is {a}?", "What are the details of {a}?")
HEADING_TEMPLATES = ("What does {h} say about {a}?", "{h}: what about {a}?", "{a} {h}")
ICT_MAX_WORDS = 8


def generate_offline(chunks: list[Chunk], n_per_chunk: int, seed: int = 42,
                     progress: bool = True) -> GenerationResult:
    """``n_per_chunk`` questions per chunk, rotating through the methods that apply to each chunk."""
    from tqdm.auto import tqdm

    phrases = keyphrases([c.text for c in chunks])
    pairs = []
    for chunk, chunk_phrases in tqdm(list(zip(chunks, phrases, strict=True)), desc="Offline questions",
                                     unit="chunk", disable=None if progress else True):
        pairs += offline_questions(chunk, chunk_phrases, n_per_chunk, random.Random(f"{seed}:{chunk.id}"))
    return GenerationResult(pairs, "offline", requested=n_per_chunk * len(chunks))


def offline_questions(chunk: Chunk, phrases: list[str], n: int, rng: random.Random) -> list[dict]:
    """Up to ``n`` pairs for one chunk (fewer when it has too little text for a method)."""
    heading = clean_heading(chunk.heading)
    heading_words = set(heading.lower().split())
    # phrases the heading lacks, lowest-ranked first: the keyphrase questions take the top ones
    topics = [p for p in reversed(phrases) if not heading_words & set(p.lower().split())]
    kinds = ["keyphrase", "ict"] + (["heading"] if heading and topics else [])
    rng.shuffle(kinds)
    sentences = ict_sentences(chunk.text)
    rng.shuffle(sentences)
    pairs = []
    for j in range(n):
        kind, turn = kinds[j % len(kinds)], j // len(kinds)
        if kind == "ict":
            question = content_words(sentences[turn]) if turn < len(sentences) else ""
        elif kind == "heading":
            question = rng.choice(HEADING_TEMPLATES).format(h=heading, a=topics[turn % len(topics)])
        else:
            question = keyphrase_question(phrases, turn, rng)
        if question:
            pairs.append(make_pair(question, chunk, f"offline:{kind}"))
    return pairs


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


def candidate_phrases(text: str, vocabulary, max_words: int = 3) -> list[str]:
    """Runs of vocabulary words on one line, separated by spaces only, cut into pieces of ``max_words``."""
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


def ict_sentences(text: str, min_words: int = 6) -> list[str]:
    """Sentences of ``text`` with at least ``min_words`` words."""
    sentences = re.split(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])", " ".join(text.split()))
    return [s for s in sentences if len(s.split()) >= min_words]


def content_words(sentence: str, max_words: int = ICT_MAX_WORDS) -> str:
    """The sentence's first ``max_words`` words that are not stopwords: an inverse-cloze pseudo-query."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    words = [w for w in re.findall(WORD_PATTERN, sentence) if w.lower() not in ENGLISH_STOP_WORDS]
    return " ".join(words[:max_words])
