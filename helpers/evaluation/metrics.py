"""Retrieval metrics: queries, a corpus and relevance labels in; per-query IR metrics out.

The metrics are those of sentence-transformers' ``InformationRetrievalEvaluator`` (cosine similarity,
ties broken by ascending corpus id), but a model encodes the corpus and the queries once, at full
dimension, and every Matryoshka dimension is scored from truncated, re-normalised slices. Every metric is
kept per query, so that confidence intervals and paired tests can be computed from it.

Retrieval never holds a queries x corpus matrix: ``rank`` asks a scorer for one block of scores at a time
(``QUERY_BLOCK`` queries x ``CORPUS_BLOCK`` chunks) and keeps a running top-k per query; the scorers cut
and normalise each corpus block when they score it, so beside the embeddings themselves memory is set by
the block sizes, not by the corpus nor by queries x chunks. Ties are broken by ascending corpus id in
every block and in every merge, so the ranking is the one a single dense matrix gives (``(-score, corpus
id)`` is a total order, and each document of the final top-k is in its own block's top-k). We keep our
own loop rather than sentence-transformers' ``util.semantic_search`` (the same chunking over queries and
corpus) because that one breaks ties by whatever ``torch.topk`` returns and builds a dict per hit; and
BM25 is scored with bm25s' ``get_scores`` (a block of queries, each over the whole corpus, as bm25s scores
whole rows) rather than ``BM25.retrieve(k=...)``, which knows corpus positions, not ids, so its ties come
out in another order: BM25 ties often (every document sharing no word with the query scores 0), so that
would change the metrics.
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from helpers.core.schema import Chunk

ACCURACY_AT = (1, 3, 5, 10)
PRECISION_RECALL_AT = (1, 3, 5, 10)
MRR_AT, NDCG_AT, MAP_AT = 10, 10, 100
MAX_K = max(*ACCURACY_AT, *PRECISION_RECALL_AT, MRR_AT, NDCG_AT, MAP_AT)
METRICS = (
    *(f"accuracy@{k}" for k in ACCURACY_AT),
    *(f"precision@{k}" for k in PRECISION_RECALL_AT),
    *(f"recall@{k}" for k in PRECISION_RECALL_AT),
    f"mrr@{MRR_AT}",
    f"ndcg@{NDCG_AT}",
    f"map@{MAP_AT}",
)
PRECISIONS = ("float32", "int8", "binary")
QUERY_BLOCK, CORPUS_BLOCK = 256, 65_536  # at most 64 MB of float32 scores at a time
ALL = slice(None)

PerQuery = dict[str, np.ndarray]  # metric -> one value per query, in IRData.query_ids order
Scorer = Callable[[slice, slice], np.ndarray]  # (query rows, corpus columns) -> scores, higher is better


@dataclass
class IRData:
    """Queries, corpus and relevance labels (qid -> relevant corpus ids), checked to fit together."""

    queries: dict[str, str]
    corpus: dict[str, str]
    relevant: dict[str, set[str]]
    meta: dict = field(default_factory=dict)  # where the queries came from (written to eval.json)

    def __post_init__(self) -> None:
        if not self.queries:
            raise ValueError("No queries to evaluate.")
        if not self.corpus:
            raise ValueError("The corpus is empty: nothing to retrieve from.")
        unlabelled = [q for q in self.queries if not self.relevant.get(q)]
        if unlabelled:
            raise ValueError(f"{len(unlabelled)} queries have no relevant document (e.g. {unlabelled[0]!r}).")
        unknown_queries = sorted(set(self.relevant) - set(self.queries))
        if unknown_queries:
            raise ValueError(f"Relevance labels for {len(unknown_queries)} unknown queries "
                             f"(e.g. {unknown_queries[0]!r}).")
        missing = sorted({c for ids in self.relevant.values() for c in ids} - self.corpus.keys())
        if missing:
            raise ValueError(f"{len(missing)} relevant ids are not in the corpus (e.g. {missing[0]!r}): "
                             "were the labels made from other chunks? Rebuild them from this chunks.jsonl.")

    @cached_property
    def query_ids(self) -> list[str]:
        return list(self.queries)

    @cached_property
    def corpus_ids(self) -> list[str]:
        return list(self.corpus)

    @cached_property
    def relevant_cells(self) -> np.ndarray:
        """The relevant (query row, corpus column) pairs as flat indices ``row * len(corpus) + column``:
        the relevance matrix without its zeros."""
        column = {cid: j for j, cid in enumerate(self.corpus_ids)}
        return np.array(sorted(i * len(self.corpus) + column[c] for i, qid in enumerate(self.query_ids)
                               for c in self.relevant[qid]), dtype=np.int64)

    @cached_property
    def n_relevant(self) -> np.ndarray:
        """How many documents are relevant to each query."""
        return np.array([len(self.relevant[qid]) for qid in self.query_ids])

    def hits(self, ranked: np.ndarray) -> np.ndarray:
        """True where the ranked document (column index, queries x ranks) is relevant to its query."""
        rows = np.arange(len(ranked), dtype=np.int64)[:, None]
        return np.isin(rows * len(self.corpus) + ranked, self.relevant_cells)

    def sample(self, n: int | None, seed: int = 0) -> IRData:
        """At most ``n`` queries, drawn reproducibly (``None``: all)."""
        if n is None or n >= len(self.queries):
            return self
        keep = set(random.Random(seed).sample(self.query_ids, n))
        return self.subset(keep, sampled_from=len(self.queries))

    def subset(self, keep: set[str], **meta) -> IRData:
        """The queries in ``keep`` over the same corpus, with ``meta`` added to (or replacing) the meta."""
        return IRData({q: t for q, t in self.queries.items() if q in keep}, self.corpus,
                      {q: self.relevant[q] for q in self.queries if q in keep}, self.meta | meta)


def corpus_of(chunks: Sequence[Chunk]) -> dict[str, str]:
    """The retrieval corpus: chunk id -> chunk text."""
    return {c.id: c.text for c in chunks}


def ir_from_split(pairs_dir: Path | str, split: str, chunks: Sequence[Chunk]) -> IRData:
    """Synthetic queries: each row of the pairs dataset's ``split`` is a query answered by ``chunk_id``."""
    from datasets import load_from_disk

    pairs = load_from_disk(str(pairs_dir))
    if split not in pairs:
        raise ValueError(f"{pairs_dir} has no {split!r} split (it has: {', '.join(pairs)}).")
    rows = pairs[split]
    relevant: dict[str, set[str]] = {}
    for qid, cid in zip(rows["id"], rows["chunk_id"], strict=True):
        relevant.setdefault(qid, set()).add(cid)
    meta = {"query_set": split, "source": f"synthetic questions, {split} split of {pairs_dir}",
            "generator": sorted(set(rows["generator"]))}
    return IRData(dict(zip(rows["id"], rows["anchor"], strict=True)), corpus_of(chunks), relevant, meta)


def ir_from_gold(chunks: Sequence[Chunk], questions: Sequence | None = None) -> IRData:
    """Hand-written gold questions (default: the bundled set); unanswerable ones are left out."""
    from helpers.core.gold import load_gold, relevant_chunk_ids

    questions = load_gold() if questions is None else list(questions)
    answerable = [q for q in questions if q.answerable]
    relevant = {qid: set(ids) for qid, ids in relevant_chunk_ids(answerable, chunks).items() if ids}
    if not relevant:
        raise ValueError("No gold question has its evidence in these chunks: the gold set was written "
                         "for another corpus.")
    if len(relevant) < len(answerable):
        warnings.warn(f"{len(answerable) - len(relevant)} of {len(answerable)} answerable gold questions "
                      "have no evidence in these chunks and are left out.", stacklevel=2)
    queries = {q.id: q.question for q in answerable if q.id in relevant}
    meta = {"query_set": "gold", "source": "hand-written gold questions", "generator": ["human"],
            "types": {q.id: q.type for q in answerable if q.id in relevant}}
    return IRData(queries, corpus_of(chunks), relevant, meta)


def encode_queries(model, texts: Sequence[str], batch_size: int = 32, show_progress: bool = True):
    """Full-dimension query embeddings (a tensor), with the model's ``"query"`` prompt when it has one."""
    if "query" not in model.prompts:
        warnings.warn("The model has no 'query' prompt: queries are encoded without one, which can "
                      "cost retrieval quality for models trained with a prompt.", stacklevel=2)
    return model.encode_query(list(texts), batch_size=batch_size, convert_to_tensor=True,
                              show_progress_bar=show_progress)


def encode_corpus(model, texts: Sequence[str], batch_size: int = 32, show_progress: bool = True):
    """Full-dimension document embeddings (a tensor)."""
    return model.encode_document(list(texts), batch_size=batch_size, convert_to_tensor=True,
                                 show_progress_bar=show_progress)


def dense_scorer(queries, corpus, dim: int | None = None) -> Scorer:
    """Cosine similarities of the first ``dim`` dimensions of each embedding (tensors), block by block: each
    corpus block is cut and normalised when it is scored, so no copy of the corpus is kept."""
    from sentence_transformers.util import normalize_embeddings

    q = normalize_embeddings(queries[:, :dim].contiguous())

    def cosine(rows: slice, cols: slice) -> np.ndarray:
        return (q[rows] @ normalize_embeddings(corpus[cols, :dim].contiguous()).T).cpu().numpy()

    return cosine


def id_order(corpus_ids: Sequence[str]) -> np.ndarray:
    """Each corpus position's rank among the corpus ids sorted ascending (the tie-break)."""
    return np.argsort(np.argsort(np.asarray(corpus_ids)))


def top_k(scores: np.ndarray, order: np.ndarray, k: int = MAX_K) -> np.ndarray:
    """Column indices of the ``k`` best documents per row of ``scores``, ordered by (-score, ``order``)."""
    k = min(k, scores.shape[1])
    best = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    values = np.take_along_axis(scores, best, axis=1)
    ranked = np.take_along_axis(best, np.lexsort((order[best], -values), axis=-1), axis=1)
    # Where documents tie with the k-th score, which of them make the cut is decided by corpus id.
    for row in np.flatnonzero((scores >= values.min(axis=1, keepdims=True)).sum(axis=1) > k):
        ranked[row] = np.lexsort((order, -scores[row]))[:k]
    return ranked


def rank(score: Scorer, n_queries: int, corpus_ids: Sequence[str], k: int = MAX_K,
         query_block: int = QUERY_BLOCK, corpus_block: int | None = CORPUS_BLOCK) -> np.ndarray:
    """Column indices of the ``k`` best documents per query (queries x k), best first, ties by corpus id,
    scored one block at a time (``corpus_block=None``: whole rows, for scorers that score whole rows)."""
    order = id_order(corpus_ids)
    corpus_block = corpus_block or len(corpus_ids)
    return np.vstack([_rank_rows(score, slice(start, min(start + query_block, n_queries)), order, k,
                                 corpus_block) for start in range(0, n_queries, query_block)])


def _rank_rows(score: Scorer, rows: slice, order: np.ndarray, k: int, corpus_block: int) -> np.ndarray:
    """The running top-k of one block of queries over the corpus blocks."""
    best = values = None
    for start in range(0, len(order), corpus_block):
        cols = slice(start, min(start + corpus_block, len(order)))
        block = score(rows, cols)
        top = top_k(block, order[cols], k)
        top_values, top = np.take_along_axis(block, top, axis=1), top + start
        if best is not None:
            top, top_values = np.hstack([best, top]), np.hstack([values, top_values])
        keep = np.lexsort((order[top], -top_values), axis=-1)[:, :k]
        best, values = np.take_along_axis(top, keep, axis=1), np.take_along_axis(top_values, keep, axis=1)
    return best


def metrics_from_hits(hits: np.ndarray, n_relevant: np.ndarray) -> PerQuery:
    """Per-query metrics from ranked hits (queries x ranks, True = relevant) and the relevant counts."""
    if hits.shape[1] < MAX_K:
        hits = np.pad(hits, ((0, 0), (0, MAX_K - hits.shape[1])))
    out: PerQuery = {f"accuracy@{k}": hits[:, :k].any(axis=1).astype(float) for k in ACCURACY_AT}
    for k in PRECISION_RECALL_AT:
        out[f"precision@{k}"] = hits[:, :k].sum(axis=1) / k
    for k in PRECISION_RECALL_AT:
        out[f"recall@{k}"] = hits[:, :k].sum(axis=1) / n_relevant
    first = hits[:, :MRR_AT].argmax(axis=1)
    out[f"mrr@{MRR_AT}"] = np.where(hits[:, :MRR_AT].any(axis=1), 1.0 / (first + 1), 0.0)
    discounts = np.log2(np.arange(2, NDCG_AT + 2))
    ideal = np.cumsum(1.0 / discounts)[np.minimum(n_relevant, NDCG_AT) - 1]
    out[f"ndcg@{NDCG_AT}"] = (hits[:, :NDCG_AT] / discounts).sum(axis=1) / ideal
    precision_at_rank = np.cumsum(hits[:, :MAP_AT], axis=1) / np.arange(1, MAP_AT + 1)
    out[f"map@{MAP_AT}"] = (precision_at_rank * hits[:, :MAP_AT]).sum(axis=1) / np.minimum(n_relevant, MAP_AT)
    return {m: out[m] for m in METRICS}


def per_query_metrics(score: Scorer, data: IRData, corpus_block: int | None = CORPUS_BLOCK) -> PerQuery:
    """Rank the corpus for every query by ``score`` (block by block) and compute every metric per query."""
    ranked = rank(score, len(data.queries), data.corpus_ids, corpus_block=corpus_block)
    return metrics_from_hits(data.hits(ranked), data.n_relevant)


def aggregate(per_query: PerQuery) -> dict[str, float]:
    """Mean of each metric over the queries (the evaluator's numbers)."""
    return {m: float(np.mean(v)) for m, v in per_query.items()}


def check_dims(dims: Sequence[int], full_dim: int) -> list[int]:
    """Dimensions sorted from largest to smallest, each between 1 and the model's full dimension."""
    bad = [d for d in dims if not 0 < int(d) <= full_dim]
    if bad:
        raise ValueError(f"Dimensions {bad} are outside 1..{full_dim}, the model's embedding size.")
    return sorted({int(d) for d in dims}, reverse=True)


def evaluate_embeddings(queries, corpus, data: IRData, dims: Sequence[int]) -> dict[int, PerQuery]:
    """Per-query metrics at every dimension, from one full-dimension encoding of queries and corpus."""
    return {d: per_query_metrics(dense_scorer(queries, corpus, d), data)
            for d in check_dims(dims, queries.shape[1])}


def evaluate_model(model, data: IRData, dims: Sequence[int] | None = None, batch_size: int = 32,
                   show_progress: bool = True) -> dict[int, PerQuery]:
    """Encode ``data`` once with ``model`` and score it at every dimension (default: full only)."""
    q = encode_queries(model, list(data.queries.values()), batch_size, show_progress)
    c = encode_corpus(model, list(data.corpus.values()), batch_size, show_progress)
    return evaluate_embeddings(q, c, data, dims or [q.shape[1]])


def bm25_scorer(data: IRData) -> Scorer:
    """BM25 scores with bm25s' defaults and English stopwords; bm25s scores whole rows (``rank`` it with
    ``corpus_block=None``), one query at a time."""
    import bm25s

    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(list(data.corpus.values()), stopwords="en", show_progress=False),
                    show_progress=False)
    tokens = bm25s.tokenize(list(data.queries.values()), stopwords="en", return_ids=False,
                            show_progress=False)
    empty = np.zeros(len(data.corpus), dtype=np.float32)
    return lambda rows, cols: np.stack([retriever.get_scores(t) if t else empty
                                        for t in tokens[rows]])[:, cols]


def bytes_per_vector(dim: int, precision: str) -> int:
    """Storage of one embedding of ``dim`` dimensions: 4 bytes, 1 byte or 1 bit per dimension."""
    return {"float32": 4 * dim, "int8": dim, "binary": -(-dim // 8)}[precision]


def quantized_scorer(queries, corpus, dim: int, precision: str) -> Scorer:
    """Scores of a corpus index stored at ``precision`` (no rescoring), higher is better.

    float32: cosine. int8: the corpus is quantized with ranges calibrated on the corpus embeddings; float32
    queries are scored against the de-quantized corpus (asymmetric distance, as in FAISS' scalar quantizer).
    binary: queries and corpus as sign bits, scored by minus the Hamming distance (faiss' and usearch's
    binary indexes).
    """
    from sentence_transformers import quantize_embeddings

    if precision == "float32":
        return dense_scorer(queries, corpus, dim)
    q = _unit(queries[:, :dim].cpu().numpy())

    def unit_block(cols: slice) -> np.ndarray:  # one corpus block, cut and normalised when it is scored
        return _unit(corpus[cols, :dim].cpu().numpy())

    if precision == "int8":
        ranges = _corpus_ranges(corpus, dim)
        steps = np.where(ranges[1] > ranges[0], (ranges[1] - ranges[0]) / 255, 1)

        def restored(cols: slice) -> np.ndarray:
            codes = quantize_embeddings(unit_block(cols), "int8", ranges=ranges).astype(np.float64)
            return (codes + 128) * steps + ranges[0]

        return lambda rows, cols: q[rows] @ restored(cols).T
    if precision == "binary":
        def bits(x: np.ndarray) -> np.ndarray:
            return np.unpackbits(quantize_embeddings(x, "ubinary"), axis=1)[:, :dim].astype(np.float32)

        qb = bits(q)

        def hamming(rows: slice, cols: slice) -> np.ndarray:
            cb = bits(unit_block(cols))
            return -(qb[rows] @ (1 - cb).T + (1 - qb[rows]) @ cb.T)

        return hamming
    raise ValueError(f"Unknown precision {precision!r}: choose one of {', '.join(PRECISIONS)}.")


def _corpus_ranges(corpus, dim: int) -> np.ndarray:
    """Per-dimension minimum and maximum of the normalised corpus embeddings, one block at a time."""
    blocks = (_unit(corpus[start:start + CORPUS_BLOCK, :dim].cpu().numpy())
              for start in range(0, len(corpus), CORPUS_BLOCK))
    lows, highs = zip(*((b.min(axis=0), b.max(axis=0)) for b in blocks), strict=True)
    return np.vstack([np.min(lows, axis=0), np.max(highs, axis=0)])


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True).clip(min=1e-12)
