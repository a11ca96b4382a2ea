"""Score the RAG chain with RAGAS: the base and the fine-tuned retriever, gold and synthetic questions.

Context precision and recall are always computed, offline, with RAGAS' non-LLM metrics (rapidfuzz string
similarity between retrieved and reference passages). With an LLM configured (``helpers.core.llm``), the LLM
answers and also judges faithfulness, answer relevancy and factual correctness. Every metric reports how
many questions it scored, how many came back NaN and how many failed (timeouts, rate limits, unparsable
judge output) rather than averaging failures away. Nothing offline reaches tiktoken or the network.
"""

from __future__ import annotations

import asyncio
import math
import os
import statistics
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from tqdm.auto import tqdm

from helpers.core import config
from helpers.core.embeddings import run_store
from helpers.core.io import write_json
from helpers.core.schema import Chunk
from helpers.rag.chain import ModelEmbeddings, RagAnswer, RagSystem, build_index, qdrant_client
from helpers.rag.queries import EvalQuestion, query_sets

os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")  # else ragas posts usage events over the network

CONTEXT_JUDGE = "rapidfuzz Levenshtein similarity >= 0.5 (no LLM)"


# ----------------------------------------------------------------------------------------- RAGAS
def to_sample(question: EvalQuestion, answer: RagAnswer):
    """A RAGAS single-turn sample: question, answer, retrieved and reference passages, reference answer."""
    from ragas import SingleTurnSample

    return SingleTurnSample(user_input=question.question, response=answer.answer,
                            retrieved_contexts=[d.page_content for d in answer.contexts],
                            reference_contexts=question.reference_contexts,
                            reference=question.reference or None)


def context_metrics() -> list:
    """RAGAS' non-LLM context precision and recall (string similarity, offline)."""
    with warnings.catch_warnings():  # ragas 0.4 deprecates ragas.metrics; these have no successor yet
        warnings.simplefilter("ignore", DeprecationWarning)
        from ragas.metrics import NonLLMContextPrecisionWithReference, NonLLMContextRecall

    return [NonLLMContextPrecisionWithReference(), NonLLMContextRecall()]


def judge_metrics(llm, embeddings, run_config) -> list:
    """Faithfulness, answer relevancy and factual correctness judged by the LLM (``LLMSettings``)."""
    from helpers.rag.answerer import chat_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from ragas.embeddings import LangchainEmbeddingsWrapper
        from ragas.llms import LangchainLLMWrapper
        from ragas.metrics import FactualCorrectness, Faithfulness, ResponseRelevancy

        judge = LangchainLLMWrapper(chat_model(llm), run_config=run_config)
        relevancy = ResponseRelevancy(llm=judge, embeddings=LangchainEmbeddingsWrapper(embeddings))
        return [Faithfulness(llm=judge), relevancy, FactualCorrectness(llm=judge)]


def run_config(max_workers: int = 4, timeout: int = 120, max_retries: int = 3, max_wait: int = 30):
    """RAGAS RunConfig: bounded workers, a timeout per score, retries with backoff."""
    from ragas.run_config import RunConfig

    return RunConfig(max_workers=max_workers, timeout=timeout, max_retries=max_retries, max_wait=max_wait)


def applicable(metric, samples: Sequence) -> bool:
    """Whether every sample has the columns ``metric`` needs (no reference answer: no factual correctness)."""
    needed = metric.required_columns.get("SINGLE_TURN", set())
    return all(getattr(s, column, None) is not None for s in samples for column in needed)


def summarize(values: Sequence) -> dict:
    """Mean of the real scores, with how many were scored, NaN and failed (and why they failed)."""
    failed = [v for v in values if isinstance(v, BaseException)]
    scored = [float(v) for v in values if not isinstance(v, BaseException) and v is not None
              and not math.isnan(v)]
    return {"mean": round(statistics.fmean(scored), 4) if scored else None, "n": len(values),
            "n_scored": len(scored), "n_nan": len(values) - len(scored) - len(failed),
            "n_failed": len(failed), "failures": dict(Counter(type(e).__name__ for e in failed))}


async def _score(samples: Sequence, metrics: Sequence, cfg) -> dict[str, list]:
    semaphore = asyncio.Semaphore(cfg.max_workers)
    bar = tqdm(total=len(samples) * len(metrics), desc="RAGAS", unit="score", disable=None)

    async def one(metric, sample):
        async with semaphore:
            try:
                return await metric.single_turn_ascore(sample, timeout=cfg.timeout)
            except Exception as exc:  # timeouts, rate limits after retries, unparsable judge output
                return exc
            finally:
                bar.update()

    for metric in metrics:
        metric.init(cfg)
    try:
        results = await asyncio.gather(*(one(m, s) for m in metrics for s in samples))
    finally:
        bar.close()
    return {m.name: results[i * len(samples):(i + 1) * len(samples)] for i, m in enumerate(metrics)}


def score_samples(samples: Sequence, metrics: Sequence, cfg=None) -> dict[str, dict]:
    """Score every sample with every applicable metric; :func:`summarize` each metric."""
    from helpers.core.llm import run_sync

    metrics = [m for m in metrics if applicable(m, samples)]
    if not samples or not metrics:
        return {}
    raw = run_sync(_score(samples, metrics, cfg or run_config()))
    return {name: summarize(values) for name, values in raw.items()}


# ------------------------------------------------------------------------------------ the stage
def load_systems(paths: config.RunPaths, chunks: Sequence[Chunk], base_model_id: str | None = None,
                 client=None, llm=None) -> dict[str, RagSystem]:
    """The base and the fine-tuned retriever, indexed in ``paths.qdrant``, sharing one answerer.

    ``llm``: ``helpers.core.llm.LLMSettings`` for LLM answers; None gives the extractive answerer, which runs
    on the fallback MiniLM whatever the retriever (its threshold was calibrated on that model).
    """
    from helpers.core.models import load_embedding_model
    from helpers.rag.answerer import default_answerer

    if not Path(paths.model).is_dir():
        raise FileNotFoundError(f"No fine-tuned model at {paths.model}: train one first (notebook 03).")
    models = {"base": load_embedding_model(base_model_id),
              "fine-tuned": load_embedding_model(str(paths.model))}
    fallback = next((m.model for m in models.values() if m.is_fallback), None)
    answer_model = None if llm else fallback or load_embedding_model("fallback").model
    answerer = default_answerer(answer_model, llm)
    client = client or qdrant_client(paths.qdrant)
    store = run_store(paths.root)
    return {name: RagSystem(name, loaded, build_index(chunks, ModelEmbeddings(loaded.model, name), client,
                                                      store=store), answerer)
            for name, loaded in models.items()}


def answer_all(chain, questions: Sequence[EvalQuestion], desc: str, concurrency: int = 1) -> list:
    """Run the chain on every question; a failed answer is kept as its exception."""
    answers: list = [None] * len(questions)
    batches = chain.batch_as_completed([q.question for q in questions],
                                       config={"max_concurrency": concurrency}, return_exceptions=True)
    for i, answer in tqdm(batches, total=len(questions), desc=desc, unit="question", disable=None):
        answers[i] = answer
    return answers


def abstention(questions: Sequence[EvalQuestion], answers: Sequence) -> dict:
    """How often the chain said "Not in the documents." to answerable and to unanswerable questions."""
    pairs = [(q, a) for q, a in zip(questions, answers, strict=True) if isinstance(a, RagAnswer)]
    out = {}
    for key, group in (("answerable", [a for q, a in pairs if q.answerable]),
                       ("unanswerable", [a for q, a in pairs if not q.answerable])):
        refused = sum(a.refused for a in group)
        out[key] = {"n": len(group), "refused": refused,
                    "rate": round(refused / len(group), 4) if group else None}
    return out


def hit_rate(questions: Sequence[EvalQuestion], answers: Sequence) -> float | None:
    """Share of answerable questions with a reference chunk among the retrieved ones."""
    hits = [bool(set(q.reference_ids) & set(a.retrieved_ids)) for q, a in zip(questions, answers, strict=True)
            if q.answerable and isinstance(a, RagAnswer)]
    return round(statistics.fmean(hits), 4) if hits else None


def evaluate_set(system: RagSystem, questions: Sequence[EvalQuestion], metrics: Sequence, k: int, cfg,
                 label: str, judge: str, concurrency: int = 1) -> dict:
    """Answer ``questions`` with ``system``, score the answerable ones, count refusals and failures."""
    answers = answer_all(system.chain(k), questions, f"{system.name} / {label}", concurrency)
    scored = [(q, a) for q, a in zip(questions, answers, strict=True)
              if q.answerable and isinstance(a, RagAnswer)]
    results = score_samples([to_sample(q, a) for q, a in scored], metrics, cfg)
    return {
        "n_questions": len(questions),
        "answerer": ", ".join(sorted({a.answerer for a in answers if isinstance(a, RagAnswer)})),
        "answers_failed": dict(Counter(type(a).__name__ for a in answers if isinstance(a, BaseException))),
        f"hit_rate@{k}": hit_rate(questions, answers),
        "abstention": abstention(questions, answers),
        "metrics": {name: r | {"judge": CONTEXT_JUDGE if name.startswith("non_llm") else judge}
                    for name, r in results.items()},
    }


def rag_evaluate_run(paths: config.RunPaths, base_model_id: str | None = None, k: int = 5,
                     max_questions: int | None = None, *, profile: config.Profile | str | None = None,
                     systems: dict[str, RagSystem] | None = None, gold: Sequence | None = None) -> dict:
    """The RAG stage: score the chain with both retrievers on both query sets; write ``paths.rag_eval``.

    ``max_questions`` defaults to the ``rag_max_questions`` of ``profile`` (default: ``KIT_PROFILE``);
    ``systems`` reuses retrievers that are already loaded (:func:`load_systems`); ``gold`` replaces the
    bundled gold questions. The chart goes to ``paths.plots / "rag_scores.png"``.
    """
    import matplotlib.pyplot as plt

    from helpers.chunking.chunkers import load_chunks
    from helpers.core.llm import llm_settings
    from helpers.rag.views import plot_scores

    chunks = load_chunks(paths.chunks)
    llm = llm_settings()
    own = systems is None  # then close the Qdrant folder at the end, so that others can open it
    systems = systems or load_systems(paths, chunks, base_model_id, llm=llm)
    profile = profile if isinstance(profile, config.Profile) else config.get_profile(profile)
    cap = max_questions if max_questions is not None else profile.rag_max_questions
    sets = query_sets(paths, chunks, cap, gold)
    cfg = run_config()
    metrics = context_metrics()
    if llm:
        metrics += judge_metrics(llm, ModelEmbeddings(systems["base"].model.model, "judge"), cfg)
    judge = f"LLM {llm.describe()}" if llm else "none"
    concurrency = cfg.max_workers if llm else 1
    try:
        result = {
            "k": k, "judge": judge, "max_questions": cap,
            "query_sets": {name: {"n": len(rows), "answerable": sum(r.answerable for r in rows)}
                           for name, rows in sets.items()},
            "systems": {name: {"model": s.model.loaded, "query_sets": {
                label: evaluate_set(s, rows, metrics, k, cfg, label, judge, concurrency)
                for label, rows in sets.items()}} for name, s in systems.items()},
        }
    finally:
        if own:
            next(iter(systems.values())).store.client.close()
    write_json(paths.rag_eval, result)
    plt.close(plot_scores(result, paths.plots / "rag_scores.png"))
    return result
