"""What notebook 05 shows: answers side by side, the RAGAS table and chart, recall per stored dimension."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path

from helpers.core.embeddings import EmbeddingStore
from helpers.core.io import save_figure
from helpers.core.schema import Chunk
from helpers.rag.chain import ModelEmbeddings, RagSystem, build_index, qdrant_client
from helpers.rag.queries import EvalQuestion


def show_answers(systems: dict[str, RagSystem], question: str, k: int = 5) -> None:
    """Print each system's answer to ``question`` with its citations and retrieved pages."""
    print(f"Q: {question}")
    for name, system in systems.items():
        answer = system.ask(question, k)
        pages = ", ".join(f"{d.metadata['source']} p.{d.metadata['pages'][0]}" for d in answer.contexts)
        print(f"  [{name}] {answer.answer}")
        print(f"      cites {answer.chunk_ids or 'nothing'}; retrieved: {pages}")


def calibrate_answerer(answerer, store, questions: Sequence[EvalQuestion], k: int = 5) -> dict:
    """The extractive answerer's threshold that best separates answerable from unanswerable ``questions``."""
    from helpers.rag.answerer import calibrate_threshold

    docs = store.as_retriever(search_kwargs={"k": k}).batch([q.question for q in questions])
    answerer.prepare([d for found in docs for d in found])
    support = [(answerer.best_support(q.question, d), q.answerable)
               for q, d in zip(questions, docs, strict=True)]
    answerable = [s for s, ok in support if ok]
    unanswerable = [s for s, ok in support if not ok]
    cut = calibrate_threshold(answerable, unanswerable)
    return {"threshold": cut, "n_answerable": len(answerable), "n_unanswerable": len(unanswerable),
            "answerable_answered": round(statistics.fmean(s >= cut for s in answerable), 4),
            "unanswerable_refused": round(statistics.fmean(s < cut for s in unanswerable), 4)}


def recall_by_dim(model, chunks: Sequence[Chunk], questions: Sequence[EvalQuestion], dims: Sequence[int],
                  k: int = 5, client=None, store: EmbeddingStore | None = None) -> list[dict]:
    """Hit rate@k of ``model`` with its passages stored at each Matryoshka dimension of ``dims`` (their
    vectors read from ``store``, the run's embedding store, when given: one encoding for all dims)."""
    client = client or qdrant_client()
    answerable = [q for q in questions if q.answerable]
    rows = []
    for dim in dims:
        index = build_index(chunks, ModelEmbeddings(model, "model", truncate_dim=dim), client, store=store)
        retrieved = index.as_retriever(search_kwargs={"k": k}).batch([q.question for q in answerable])
        hits = [bool(set(q.reference_ids) & {d.metadata["chunk_id"] for d in docs})
                for q, docs in zip(answerable, retrieved, strict=True)]
        rows.append({"dim": dim, f"hit_rate@{k}": round(statistics.fmean(hits), 4) if hits else None,
                     "bytes_per_vector": 4 * dim})
    return rows


def scores_table(result: dict) -> list[dict]:
    """One row per system, query set and metric of a ``rag_eval.json`` result."""
    return [{"system": system, "query set": label, "metric": metric, "mean": r["mean"],
             "scored": r["n_scored"], "nan": r["n_nan"], "failed": r["n_failed"], "judge": r["judge"]}
            for system, s in result["systems"].items() for label, q in s["query_sets"].items()
            for metric, r in q["metrics"].items()]


METRIC_LABELS = {"non_llm_context_precision_with_reference": "context precision (no LLM)",
                 "non_llm_context_recall": "context recall (no LLM)"}


def short_name(metric: str) -> str:
    return metric.removeprefix("non_llm_").removesuffix("_with_reference")


def metric_label(metric: str) -> str:
    """RAGAS' metric key in words: ``context precision (no LLM)``, ``answer relevancy``."""
    return METRIC_LABELS.get(metric, metric.replace("_", " "))


def comparison_rows(result: dict) -> list[dict]:
    """One row per query set and metric of a ``rag_eval.json`` result: each system's mean side by side, and
    how many answers each scored and failed (``12 / 12`` when the systems differ, else one number)."""
    systems = list(result["systems"])
    grouped: dict[tuple[str, str], dict[str, dict]] = {}
    for r in scores_table(result):
        grouped.setdefault((r["query set"], r["metric"]), {})[r["system"]] = r
    rows = []
    for (query_set, metric), by_system in grouped.items():
        row = {"query set": query_set, "metric": metric_label(metric)}
        row |= {name: by_system[name]["mean"] if name in by_system else None for name in systems}
        for column in ("scored", "failed"):
            counts = list(dict.fromkeys(str(by_system[n][column]) for n in systems if n in by_system))
            row[column] = " / ".join(counts)
        rows.append(row)
    return rows


def judges(result: dict) -> str:
    """Who judged each metric, named once: ``context precision (no LLM), context recall (no LLM): ...``."""
    by_judge: dict[str, list[str]] = {}
    for r in scores_table(result):
        labels = by_judge.setdefault(r["judge"], [])
        if metric_label(r["metric"]) not in labels:
            labels.append(metric_label(r["metric"]))
    return "; ".join(f"{', '.join(labels)}: {judge}" for judge, labels in by_judge.items())


def plot_scores(result: dict, path: Path | str | None = None):
    """Grouped bars: each system's mean score per query set and metric."""
    import matplotlib.pyplot as plt

    rows = scores_table(result)
    groups = list(dict.fromkeys((r["query set"], r["metric"]) for r in rows))
    systems = list(result["systems"])
    width = 0.8 / len(systems)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.8 * len(groups)), 4))
    for i, system in enumerate(systems):
        means = {(r["query set"], r["metric"]): r["mean"] or 0 for r in rows if r["system"] == system}
        ax.bar([g + i * width for g in range(len(groups))], [means.get(g, 0) for g in groups], width,
               label=system)
    ax.set_xticks([g + width * (len(systems) - 1) / 2 for g in range(len(groups))],
                  [f"{q}\n{short_name(m)}" for q, m in groups], fontsize=8)
    ax.set(ylim=(0, 1.15), yticks=[0, 0.2, 0.4, 0.6, 0.8, 1.0], ylabel="mean score",
           title=f"RAGAS, top-{result['k']} passages")
    ax.legend(loc="upper center", ncol=len(systems), frameon=False)
    fig.tight_layout()
    save_figure(fig, path)
    return fig
