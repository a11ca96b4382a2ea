"""Score the RAG chain with RAGAS: the base and the fine-tuned retriever, gold and synthetic questions.

Context precision and recall are always computed, offline, with RAGAS' non-LLM metrics (rapidfuzz string
similarity between retrieved and reference passages). With an LLM configured (``helpers.core.llm``), the LLM
answers and also judges faithfulness, answer relevancy and factual correctness. Every metric reports how
many questions it scored, how many came back NaN and how many failed (timeouts, rate limits, unparsable
judge output) rather than averaging failures away. Nothing offline reaches tiktoken or the network.
"""

from __future__ import annotations

import asyncio
import logging
import math
import statistics
import threading
import warnings
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tqdm.auto import tqdm

from helpers.core import config, console
from helpers.core.embeddings import run_store
from helpers.core.io import write_json
from helpers.core.llm import LLMSettings
from helpers.core.schema import Chunk
from helpers.core.settings import RunSettings
from helpers.rag.chain import ModelEmbeddings, RagAnswer, RagSystem, build_index, qdrant_client
from helpers.rag.queries import EvalQuestion, query_sets

logger = logging.getLogger(__name__)

console.no_usage_tracking()  # before ragas loads: else it posts usage events over the network

CONTEXT_JUDGE = "rapidfuzz Levenshtein similarity >= 0.5 (no LLM)"
LLM_WORKERS = 4  # answers and judge scores in flight at once
FAILURES_TO_STOP = 2 * LLM_WORKERS  # LLM answers failed in a row before the rest are not sent


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


def run_config(max_workers: int = LLM_WORKERS, timeout: int = 120, max_retries: int = 3, max_wait: int = 30):
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

    ``llm``: ``helpers.core.llm.LLMSettings`` for LLM answers (kept in ``paths.rag_answers``, so a rerun
    asks only what failed); None gives the extractive answerer, which runs on the fallback MiniLM whatever
    the retriever (its threshold was calibrated on that model). Close the Qdrant folder with
    :func:`helpers.rag.chain.close_systems` when done, so that another process can open it.
    """
    from helpers.core.models import load_embedding_model
    from helpers.rag.answerer import default_answerer

    if not Path(paths.model).is_dir():
        raise FileNotFoundError(f"No fine-tuned model at {paths.model}: train one first (notebook 03).")
    models = {"base": load_embedding_model(base_model_id),
              "fine-tuned": load_embedding_model(str(paths.model))}
    fallback = next((m.model for m in models.values() if m.is_fallback), None)
    answer_model = None if llm else fallback or load_embedding_model("fallback").model
    answerer = default_answerer(answer_model, llm, paths.rag_answers)
    client = client or qdrant_client(paths.qdrant)
    store = run_store(paths)
    return {name: RagSystem(name, loaded, build_index(chunks, ModelEmbeddings(loaded.model, name), client,
                                                      store=store), answerer)
            for name, loaded in models.items()}


class Streak:
    """Failures in a row across threads; past ``limit`` the questions not sent yet are not sent, so a dead
    or hanging endpoint costs a bounded time (the questions stage stops the same way)."""

    def __init__(self, limit: int | None):
        self.limit, self.count, self.stopped = limit, 0, None
        self._lock = threading.Lock()

    def record(self, outcome) -> None:
        with self._lock:
            if not isinstance(outcome, BaseException):
                self.count = 0
                return
            self.count += 1
            if self.limit and self.count >= self.limit and not self.stopped:
                self.stopped = (f"not sent: the LLM failed {self.count} answers in a row "
                                f"(last: {failure_text(outcome)})")


def answer_all(chain, questions: Sequence[EvalQuestion], desc: str, concurrency: int = 1,
               streak: Streak | None = None) -> list:
    """Run the chain on every question; a failed answer is kept as its exception (``RequestFailed`` with
    its reason), and once ``streak`` (shared by every call of a stage) has stopped, the rest as
    ``RequestFailed("not sent: ...")``. A refused request (``LLMError``: bad key, model or URL) stops
    everything at once."""
    from helpers.core.llm import LLMError, RequestFailed

    streak = streak or Streak(None)

    def one(question: EvalQuestion):
        if streak.stopped:
            return RequestFailed(streak.stopped)
        try:
            outcome = chain.invoke(question.question)
        except LLMError:
            raise
        except Exception as exc:  # kept, counted and retried on the next run
            outcome = exc
        streak.record(outcome)
        return outcome

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(tqdm(pool.map(one, questions), total=len(questions), desc=desc, unit="question",
                         disable=None))


def failure_text(exc: BaseException) -> str:
    """What went wrong with one answer: the reason the kit gives (``timeout (> 30 s) after 4 attempts``),
    else the exception's type."""
    return getattr(exc, "reason", None) or type(exc).__name__


def failure_counts(answers: Sequence) -> dict[str, int]:
    """Failed answers by reason, most frequent first."""
    return dict(Counter(failure_text(a) for a in answers if isinstance(a, BaseException)).most_common())


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
                 label: str, judge: str, concurrency: int = 1, streak: Streak | None = None) -> dict:
    """Answer ``questions`` with ``system``, score the answerable ones, count refusals and failures."""
    answers = answer_all(system.chain(k), questions, f"{system.name} / {label}", concurrency, streak)
    scored = [(q, a) for q, a in zip(questions, answers, strict=True)
              if q.answerable and isinstance(a, RagAnswer)]
    results = score_samples([to_sample(q, a) for q, a in scored], metrics, cfg)
    return {
        "n_questions": len(questions),
        "answerer": ", ".join(sorted({a.answerer for a in answers if isinstance(a, RagAnswer)})),
        "answers_failed": failure_counts(answers),
        f"hit_rate@{k}": hit_rate(questions, answers),
        "abstention": abstention(questions, answers),
        "metrics": {name: r | {"judge": CONTEXT_JUDGE if name.startswith("non_llm") else judge}
                    for name, r in results.items()},
    }


def rag_evaluate_run(paths: config.RunPaths, base_model_id: str | None = None, k: int = 5,
                     max_questions: int | None = None, *, profile: config.Profile | str | None = None,
                     systems: dict[str, RagSystem] | None = None, gold: Sequence | None = None,
                     llm: LLMSettings | None = None) -> dict:
    """The RAG stage: score the chain with both retrievers on both query sets; write ``paths.rag_eval``.

    ``max_questions`` defaults to the ``rag_max_questions`` of ``profile`` (default: ``KIT_PROFILE``);
    ``systems`` reuses retrievers that are already loaded (:func:`load_systems`); ``gold`` replaces the
    bundled gold questions; ``llm`` answers and judges (None: the environment's, if any). The chart goes to
    ``paths.plots / "rag_scores.png"``. Answers that failed are counted by cause in the result
    (``answers``), and ``pending`` says what a rerun asks again.
    """
    import matplotlib.pyplot as plt

    from helpers.chunking.chunkers import load_chunks
    from helpers.core.llm import llm_settings
    from helpers.rag.chain import close_systems
    from helpers.rag.views import plot_scores

    chunks = load_chunks(paths.chunks)
    llm = llm or llm_settings()
    own = systems is None  # then close the Qdrant folder at the end, so that others can open it
    systems = systems or load_systems(paths, chunks, base_model_id, llm=llm)
    try:
        profile = profile if isinstance(profile, config.Profile) else config.get_profile(profile)
        cap = max_questions if max_questions is not None else profile.rag_max_questions
        sets = query_sets(paths, chunks, cap, gold)
        if llm:
            logger.info(describe_answer_plan(llm, sets, len(systems), k, chunks))
        result = score_systems(systems, sets, k, llm)
    finally:
        if own:
            close_systems(systems)
    result["max_questions"] = cap
    write_json(paths.rag_eval, result)
    plt.close(plot_scores(result, paths.plots / "rag_scores.png"))
    logger.info(describe_answers(result["answers"]))
    return result



def run(paths: config.RunPaths, settings: RunSettings) -> dict:
    """The pipeline's RAG stage: ``rag_evaluate_run`` with the run's base model and profile; what was
    answered, what a rerun asks again, and why the stage failed when every answer did."""
    answers = rag_evaluate_run(paths, base_model_id=settings.model_id, profile=settings.profile,
                               llm=settings.llm)["answers"]
    return {"written": str(paths.rag_eval), "answers": answers["answered"], "pending": answers["pending"],
            "failed": answers["pending"] if answers["all_failed"] else None}

def score_systems(systems: dict[str, RagSystem], sets: dict[str, list[EvalQuestion]], k: int, llm) -> dict:
    """Every system on every query set; RAGAS' judge metrics too when ``llm`` is given."""
    cfg = run_config()
    metrics = context_metrics()
    if llm:
        metrics += judge_metrics(llm, ModelEmbeddings(systems["base"].model.model, "judge"), cfg)
    judge = f"LLM {llm.describe()}" if llm else "none"
    concurrency = cfg.max_workers if llm else 1
    streak = Streak(FAILURES_TO_STOP if llm else None)  # across systems and query sets: one stage, one stop
    scored = {name: {"model": s.model.loaded, "query_sets": {
        label: evaluate_set(s, rows, metrics, k, cfg, label, judge, concurrency, streak)
        for label, rows in sets.items()}} for name, s in systems.items()}
    return {"k": k, "judge": judge,
            "query_sets": {name: {"n": len(rows), "answerable": sum(r.answerable for r in rows)}
                           for name, rows in sets.items()},
            "systems": scored, "answers": answer_summary(scored)}


def answer_summary(systems: dict) -> dict:
    """Answers asked, answered and failed (by cause) over every system and query set, and what a rerun
    retries (``pending``; ``failed`` when no answer came back at all)."""
    failed: Counter[str] = Counter()
    asked = 0
    for system in systems.values():
        for q in system["query_sets"].values():
            asked += q["n_questions"]
            failed.update(q["answers_failed"])
    n_failed = sum(failed.values())
    causes = ", ".join(f"{reason}: {n}" for reason, n in failed.most_common())
    pending = (f"{n_failed} of {asked} RAG answers failed ({causes}); a rerun asks exactly those again"
               if n_failed else None)
    return {"asked": asked, "answered": asked - n_failed, "failed": n_failed,
            "causes": dict(failed.most_common()), "pending": pending,
            "all_failed": bool(asked) and n_failed == asked}


def describe_answers(answers: dict) -> str:
    """One line: every answer came back, or how many failed and why."""
    if not answers["failed"]:
        return f"RAG answers: all {answers['asked']} answered."
    return f"{answers['pending']}."


def describe_answer_plan(llm, sets: dict[str, list[EvalQuestion]], n_systems: int, k: int,
                         chunks: Sequence[Chunk]) -> str:
    """What the LLM answers will cost before any is asked: answers, tokens, price, time per request."""
    from helpers.core.llm import cost_usd, estimate_tokens

    n = n_systems * sum(len(rows) for rows in sets.values())
    passage = statistics.fmean(estimate_tokens(c.text) for c in chunks) if chunks else 0
    prompt, completion = round(n * (k * passage + 120)), n * 60
    cost = cost_usd(llm.model, prompt, completion)
    price = f"~${cost:.4f} at list prices" if cost is not None else f"no list price for {llm.model}"
    return (f"LLM answers: {n} ({n_systems} retrievers x {n // max(1, n_systems)} questions) by "
            f"{llm.describe()}, ~{prompt:,} prompt + ~{completion:,} completion tokens, {price} (answers "
            f"kept from an earlier run are not asked again; the RAGAS judge adds a few requests per "
            f"answer). Each request: up to {llm.max_attempts} attempts of at most {llm.timeout_s:g} s; "
            f"answering stops after {FAILURES_TO_STOP} failures in a row.")
