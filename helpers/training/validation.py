"""Validation during training: retrieval metrics at every Matryoshka dimension, corpus encoded once.

sentence-transformers' recipe is one ``InformationRetrievalEvaluator`` per dimension (``truncate_dim``) in a
``SequentialEvaluator``; each of them re-encodes the whole corpus. A truncated embedding is a prefix of
the full one, so here the corpus is encoded once per evaluation at the full dimension and each evaluator
slices it: the same numbers, a fifth of the encoding for Arctic's five dimensions.
"""

from __future__ import annotations

from sentence_transformers.sentence_transformer.evaluation import (
    InformationRetrievalEvaluator,
    SequentialEvaluator,
)

from helpers.core.embeddings import EmbeddingStore, StoredEncoder


class CorpusCache:
    """Full-dimension corpus embeddings of the model being evaluated, kept for one evaluation round."""

    def __init__(self, corpus: list[str], batch_size: int = 32) -> None:
        self.corpus, self.batch_size, self.embeddings = corpus, batch_size, None

    def get(self, model):
        if self.embeddings is None:
            self.embeddings = model.encode_document(self.corpus, batch_size=self.batch_size,
                                                    convert_to_tensor=True, show_progress_bar=False)
        return self.embeddings

    def clear(self) -> None:
        self.embeddings = None


class TruncatedIREvaluator(InformationRetrievalEvaluator):
    """An InformationRetrievalEvaluator at ``truncate_dim`` that slices the shared corpus embeddings."""

    def __init__(self, *args, cache: CorpusCache, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.cache = cache

    def compute_all_metrics(self, model, corpus_model=None, corpus_embeddings=None, output_path=None):
        if corpus_embeddings is None and corpus_model is None:
            corpus_embeddings = self.cache.get(model)[:, : self.truncate_dim]
        return super().compute_all_metrics(model, corpus_model, corpus_embeddings, output_path)


class MatryoshkaEvaluator(SequentialEvaluator):
    """Runs the per-dimension evaluators on one fresh encoding of the corpus; main score: the first dim."""

    def __init__(self, evaluators: list[TruncatedIREvaluator], cache: CorpusCache) -> None:
        super().__init__(evaluators, main_score_function=lambda scores: scores[0])
        self.cache = cache

    def __call__(self, model, *args, **kwargs):
        self.cache.clear()
        try:
            return super().__call__(model, *args, **kwargs)
        finally:
            self.cache.clear()


def matryoshka_evaluator(queries: dict[str, str], corpus: dict[str, str], relevant: dict[str, set[str]],
                         dims: list[int], batch_size: int = 32) -> MatryoshkaEvaluator:
    """nDCG@10, MRR@10, recall@10... at each of ``dims`` (``dim_<d>_...``); queries get the "query" prompt."""
    cache = CorpusCache(list(corpus.values()), batch_size)
    evaluators = [
        TruncatedIREvaluator(
            queries=queries, corpus=corpus, relevant_docs=relevant, name=f"dim_{dim}", truncate_dim=dim,
            query_prompt_name="query", batch_size=batch_size, accuracy_at_k=[1, 5, 10],
            precision_recall_at_k=[10], map_at_k=[100], cache=cache,
        )
        for dim in dims
    ]
    return MatryoshkaEvaluator(evaluators, cache)


def rank_of_relevant(model, questions: list[str], relevant_ids: list[str], corpus: dict[str, str],
                     k: int = 10, store: EmbeddingStore | None = None) -> list[int | None]:
    """1-based rank of each question's relevant chunk in ``model``'s top ``k`` (None: not in the top k);
    with ``store`` (the run's embedding store) the chunks and questions are encoded there at most once."""
    from sentence_transformers.util import semantic_search

    ids = list(corpus)
    encoder = StoredEncoder(model, store) if store else model
    queries = encoder.encode_query(questions, convert_to_tensor=True)
    documents = encoder.encode_document(list(corpus.values()), convert_to_tensor=True)
    hits = semantic_search(queries, documents, top_k=k)
    return [next((rank for rank, hit in enumerate(row, 1) if ids[hit["corpus_id"]] == cid), None)
            for row, cid in zip(hits, relevant_ids, strict=True)]
