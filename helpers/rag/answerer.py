"""The answering end of the RAG chain: an LLM when one is configured, else an extractive answerer.

The extractive answerer quotes the retrieved sentences that best support the question. Support is the
cosine similarity of question and sentence (the question with the model's query prompt) blended with the
share of the question's content words found in the sentence. Below ``NOT_FOUND_THRESHOLD`` it answers
exactly "Not in the documents." rather than quote something loosely related.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from langchain_core.documents import Document
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable, RunnableLambda

from helpers.rag.chain import NOT_FOUND, RagAnswer, citation

LEXICAL_WEIGHT = 0.2
# calibrate_threshold() on the bundled gold set (190 answerable, 10 unanswerable questions; best support
# among the top-5 passages of the fallback all-MiniLM-L6-v2 retriever over the smoke chunks) gave 0.505:
# it answers about three quarters of the answerable questions and refuses 8 of the 10 unanswerable ones.
# Recalibrate for another model or corpus with helpers.rag.views.calibrate_answerer (notebook 05).
NOT_FOUND_THRESHOLD = 0.5
MIN_SENTENCE_WORDS = 4
SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(•-])|\n+")  # chunks keep one paragraph per line
WORD = re.compile(r"[a-z0-9]+")
STOPWORDS = frozenset([
    "a", "an", "and", "are", "as", "at", "be", "been", "by", "can", "could", "do", "does", "did", "for",
    "from", "has", "have", "how", "if", "in", "into", "is", "it", "its", "may", "must", "not", "of",
    "on", "or", "our", "shall", "should", "than", "that", "the", "their", "them", "then", "there",
    "these", "they", "this", "those", "to", "under", "was", "were", "what", "when", "where", "which",
    "who", "whom", "whose", "why", "will", "with", "within", "would", "you", "your",
])

ANSWER_PROMPT = ChatPromptTemplate.from_messages([
    ("system", "Answer the question using only the context passages. Cite the passage each claim comes from "
               "by its label exactly as written, e.g. [policy.pdf p.3]. Be brief. If the passages do not "
               f"contain the answer, reply exactly: {NOT_FOUND}"),
    ("human", "{context}\n\nQuestion: {question}"),
])


def sentences(text: str, heading: str = "") -> list[str]:
    """Sentences and lines of ``text``, whitespace collapsed, without ``heading`` and fragments < 4 words."""
    parts = (" ".join(p.split()) for p in SENTENCE_BREAK.split(text))
    return [p for p in parts if len(p.split()) >= MIN_SENTENCE_WORDS and p != heading.strip()]


def content_words(text: str) -> set[str]:
    return {w for w in WORD.findall(text.lower()) if len(w) > 2 and w not in STOPWORDS}


def overlap(question_words: set[str], sentence: str) -> float:
    """Share of the question's content words that occur in ``sentence``."""
    return len(question_words & content_words(sentence)) / len(question_words) if question_words else 0.0


def calibrate_threshold(answerable: Sequence[float], unanswerable: Sequence[float]) -> float:
    """The cut between best-support scores with the best balanced accuracy (answerable kept, rest refused)."""
    if not answerable or not unanswerable:
        raise ValueError("Calibration needs both answerable and unanswerable questions.")
    a, u = np.asarray(answerable), np.asarray(unanswerable)
    values = np.unique(np.concatenate([a, u]))
    cuts = np.concatenate([[values[0] - 1e-3], (values[:-1] + values[1:]) / 2, [values[-1] + 1e-3]])
    accuracy = [((a >= c).mean() + (u < c).mean()) / 2 for c in cuts]
    return round(float(cuts[int(np.argmax(accuracy))]), 3)


class ExtractiveAnswerer:
    """Offline answers: the best supporting retrieved sentences with citations, or "Not in the documents."."""

    name = "extractive (offline)"

    def __init__(self, model, threshold: float = NOT_FOUND_THRESHOLD, max_sentences: int = 2,
                 lexical_weight: float = LEXICAL_WEIGHT):
        self.model = model  # a SentenceTransformer with a "query" prompt
        self.threshold = threshold
        self.max_sentences = max_sentences
        self.lexical_weight = lexical_weight
        self._sentences: dict[str, tuple[list[str], np.ndarray]] = {}  # chunk id -> sentences, embeddings

    def prepare(self, docs: Sequence[Document]) -> None:
        """Embed, in one batch, the sentences of the passages not seen before (cached by chunk id)."""
        new = {_key(d): d for d in docs if _key(d) not in self._sentences}
        split = {key: sentences(d.page_content, d.metadata.get("heading", ""))
                 or [" ".join(d.page_content.split())] for key, d in new.items()}
        flat = [text for texts in split.values() for text in texts]
        if not flat:
            return
        vectors = self.model.encode(flat, normalize_embeddings=True, show_progress_bar=False)
        start = 0
        for key, texts in split.items():
            self._sentences[key] = texts, vectors[start:start + len(texts)]
            start += len(texts)

    def support(self, question: str, docs: Sequence[Document]) -> list[tuple[float, str, Document]]:
        """Every sentence of ``docs`` with its support for ``question``, best first."""
        self.prepare(docs)
        query = self.model.encode([question], prompt_name="query", normalize_embeddings=True,
                                  show_progress_bar=False)[0]
        words = content_words(question)
        scored = []
        for doc in docs:
            texts, vectors = self._sentences[_key(doc)]
            for text, cosine in zip(texts, vectors @ query, strict=True):
                score = (1 - self.lexical_weight) * float(cosine) + self.lexical_weight * overlap(words, text)
                scored.append((score, text, doc))
        return sorted(scored, key=lambda s: -s[0])

    def best_support(self, question: str, docs: Sequence[Document]) -> float:
        scored = self.support(question, docs)
        return scored[0][0] if scored else 0.0

    def __call__(self, inputs: dict) -> RagAnswer:
        """``{"question", "contexts"}`` -> :class:`RagAnswer`."""
        question, docs = inputs["question"], inputs["contexts"]
        picked = [s for s in self.support(question, docs) if s[0] >= self.threshold][: self.max_sentences]
        if not picked:
            return RagAnswer(question, NOT_FOUND, docs, [], self.name)
        answer = " ".join(f"{text} {citation(doc)}" for _, text, doc in picked)
        cited = list({doc.metadata.get("chunk_id"): doc for _, _, doc in picked}.values())
        return RagAnswer(question, answer, docs, cited, self.name)

    def as_runnable(self) -> Runnable:
        return RunnableLambda(self, name="extractive_answerer")


def _key(doc: Document) -> str:
    return doc.metadata.get("chunk_id") or doc.page_content


def format_context(docs: Sequence[Document]) -> str:
    """Passages for the prompt, each under the label an answer should cite."""
    return "\n\n".join(f"{citation(d)}\n{d.page_content}" for d in docs)


def cited_by_label(answer: str, docs: Sequence[Document]) -> list[Document]:
    """The passages whose label appears in ``answer`` (chunks of the same page share a label)."""
    return [d for d in docs if citation(d) in answer]


def chat_model(settings):
    """LangChain's ChatOpenAI for any OpenAI-compatible endpoint (``helpers.core.llm.LLMSettings``), with the
    settings' timeout per attempt and number of attempts (``--llm-timeout``, ``--llm-attempts``)."""
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(model=settings.model, base_url=settings.base_url,
                      api_key=settings.api_key or "not-needed", timeout=settings.timeout_s,
                      max_retries=settings.max_attempts - 1, temperature=0)


def llm_answerer(settings, prompt: ChatPromptTemplate = ANSWER_PROMPT, cache_dir: Path | str | None = None
                 ) -> Runnable:
    """``{"question", "contexts"}`` -> prompt -> chat model -> :class:`RagAnswer` citing by label.

    With ``cache_dir`` every answer is kept under the hash of the exact messages sent, so a rerun asks the
    LLM again only what failed or changed. A failed request raises ``RequestFailed`` with its reason; a
    refused one (bad key, model or URL) raises ``LLMError``.
    """
    from helpers.core.llm import JsonCache

    generate = chat_model(settings) | StrOutputParser()
    cache = JsonCache(cache_dir)
    label = f"LLM {settings.model}"

    def answer(inputs: dict) -> RagAnswer:
        messages = prompt.format_messages(context=format_context(inputs["contexts"]),
                                          question=inputs["question"])
        key = answer_key(settings.model, messages)
        text = (cache.get(key) or {}).get("answer")
        if text is None:
            text = ask_llm(generate, messages, settings)
            cache.put(key, {"model": settings.model, "answer": text})
        return RagAnswer(inputs["question"], text.strip(), inputs["contexts"],
                         cited_by_label(text, inputs["contexts"]), label)

    return RunnableLambda(answer, name="llm_answer")


def answer_key(model: str, messages: Sequence) -> str:
    """The cache key of one answer: the model and the exact messages."""
    from helpers.core.llm import cache_key

    return cache_key(model=model, messages=[[m.type, m.content] for m in messages])


def ask_llm(generate: Runnable, messages: Sequence, settings) -> str:
    """The chat model's reply; its failures as the kit names them (``RequestFailed``, ``LLMError``)."""
    import openai

    from helpers.core import llm

    try:
        return generate.invoke(messages)
    except openai.APIError as exc:
        if llm.is_refusal(exc):
            raise llm.refusal(exc, settings) from None
        tries = f" {llm.after_attempts(settings.max_attempts)}" if llm.is_retryable(exc) else ""
        raise llm.RequestFailed(llm.failure_reason(exc, settings) + tries) from None


def default_answerer(answer_model, settings=None, cache_dir: Path | str | None = None) -> Runnable:
    """The LLM answerer when ``settings`` (``helpers.core.llm.LLMSettings``) is given (its answers kept in
    ``cache_dir``), else the extractive one."""
    if settings:
        return llm_answerer(settings, cache_dir=cache_dir)
    return ExtractiveAnswerer(answer_model).as_runnable()
