"""The evaluation stage: BM25, the base and the fine-tuned model side by side on the same queries.

For every query set (the synthetic test split, the hand-written gold questions) it reports every metric at
every Matryoshka dimension with bootstrap confidence intervals, a paired test of fine-tuned against base,
what each dimension and precision costs in storage, and the queries that fine-tuning made worse. A static
embedding model (base, and fine-tuned when the train stage made one) is scored beside the transformer
models, with every model's encoding speed on this machine, and a NanoBEIR retention check says whether
fine-tuning cost general retrieval (or why it was skipped). Everything goes to ``runs/<run>/eval.json``, the
plots to ``runs/<run>/plots/``.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from helpers.core import config, presets
from helpers.core.embeddings import EmbeddingStore, run_store
from helpers.core.gold import GoldFormatError, load_run_gold
from helpers.core.io import read_json, write_json
from helpers.core.schema import Chunk
from helpers.core.settings import RunSettings
from helpers.evaluation.metrics import (
    METRICS,
    PRECISIONS,
    IRData,
    PerQuery,
    bm25_scorer,
    bytes_per_vector,
    check_dims,
    dense_scorer,
    evaluate_embeddings,
    ir_from_gold,
    ir_from_split,
    metrics_from_hits,
    per_query_metrics,
    quantized_scorer,
    rank,
)
from helpers.evaluation.result import EvalResult, QuerySetResult
from helpers.evaluation.retention import DEFAULT_SUBSETS, retention_check
from helpers.evaluation.stats import bootstrap_ci, paired_test
from helpers.evaluation.systems import (
    BASE,
    BASE_ROTATED,
    BM25,
    FINETUNED,
    GOLD_UNSEEN,
    HEADLINE,
    NO_DIM,
    STATIC,
    STATIC_FINETUNED,
)
from helpers.questions.pairs import UNSEEN, held_out_documents
from helpers.training.rotation import principal_rotation

logger = logging.getLogger(__name__)

ALPHA = 0.05
SHOWN_TOP = 3


@dataclass
class SystemRun:
    """One system on one query set: per-query metrics per dimension, its top documents, storage costs."""

    per_query: dict[str, PerQuery]  # dimension ("384", ... or "full") -> metric -> one value per query
    top: np.ndarray  # indices of the best documents per query at the full dimension
    storage: list[dict]


def run_bm25(data: IRData) -> SystemRun:
    """The lexical baseline (bm25s scores whole rows: blocks of queries, each over the whole corpus)."""
    ranked = rank(bm25_scorer(data), len(data.queries), data.corpus_ids, corpus_block=None)
    per_query = metrics_from_hits(data.hits(ranked), data.n_relevant)
    return SystemRun({NO_DIM: per_query}, ranked[:, :SHOWN_TOP], [])


@dataclass
class Encoded:
    """One model's full-dimension embeddings of the shared corpus and of every query set."""

    corpus: object  # torch tensor (corpus x dim)
    queries: dict[str, object]  # query set name -> tensor (queries x dim)
    per_second: float  # corpus chunks encoded per second on this machine

    def rotated(self, fit_rows: Sequence[int] | None = None) -> Encoded:
        """The same embeddings after the corpus rotation (``helpers.training.rotation``) that fine-tuning
        starts from, fitted on the corpus rows ``fit_rows`` (default: all) as training fitted it: a
        rotation is linear, so rotating the embeddings equals encoding with the rotated model."""
        import torch

        fitted = self.corpus.cpu().numpy()
        fitted = fitted if fit_rows is None else fitted[list(fit_rows)]
        r = torch.as_tensor(principal_rotation(fitted), dtype=self.corpus.dtype, device=self.corpus.device)
        queries = {name: q @ r.T for name, q in self.queries.items()}
        return Encoded(self.corpus @ r.T, queries, self.per_second)


def encode_sets(model, sets: dict[str, IRData], store: EmbeddingStore, batch_size: int = 32) -> Encoded:
    """The corpus and each query set at full dimension, from the run's embedding store (each text encoded
    there at most once per model); the speed is the one measured when the corpus was encoded."""
    import torch

    first = next(iter(sets.values()))
    if any(data.corpus_ids != first.corpus_ids for data in sets.values()):
        raise ValueError("The query sets must share one corpus: build them from the same chunks.")
    if "query" not in model.prompts:
        warnings.warn("The model has no 'query' prompt: queries are encoded without one, which can "
                      "cost retrieval quality for models trained with a prompt.", stacklevel=2)
    corpus = torch.from_numpy(store.documents(model, list(first.corpus.values()), batch_size))
    queries = {name: torch.from_numpy(store.queries(model, list(data.queries.values()), batch_size))
               for name, data in sets.items()}
    return Encoded(corpus, queries, store.rate(model) or 0.0)


def run_dense(encoded: Encoded, sets: dict[str, IRData], dims: Sequence[int]) -> dict[str, SystemRun]:
    """Score every query set at every dimension and precision from one encoding."""
    runs = {}
    for name, data in sets.items():
        queries = encoded.queries[name]
        per_dim = evaluate_embeddings(queries, encoded.corpus, data, dims)
        top = rank(dense_scorer(queries, encoded.corpus), len(data.queries), data.corpus_ids, SHOWN_TOP)
        runs[name] = SystemRun({str(d): m for d, m in per_dim.items()}, top,
                               storage_rows(queries, encoded.corpus, data, list(per_dim)))
    return runs


def storage_rows(queries, corpus, data: IRData, dims: Sequence[int]) -> list[dict]:
    """Bytes per vector and ndcg@10 of an index stored in float32, int8 or binary, at every dimension."""

    def quality(dim: int, precision: str) -> float:
        score = quantized_scorer(queries, corpus, dim, precision)
        return float(per_query_metrics(score, data)[HEADLINE].mean())

    return [{"dim": d, "precision": p, "bytes_per_vector": bytes_per_vector(d, p), HEADLINE: quality(d, p)}
            for d in dims for p in PRECISIONS]


def metric_table(run: SystemRun, seed: int = 0) -> dict:
    """dimension -> metric -> mean with its 95% bootstrap interval."""
    return {dim: {m: bootstrap_ci(values[m], alpha=ALPHA, seed=seed)._asdict() for m in METRICS}
            for dim, values in run.per_query.items()}


def paired_tests(runs: dict[str, SystemRun]) -> list[dict]:
    """Fine-tuned vs base and vs the rotated base (what training alone did) at every shared dimension, and
    fine-tuned vs BM25, on per-query ndcg@10."""
    if FINETUNED not in runs:
        return []
    tuned = runs[FINETUNED].per_query
    full = next(iter(tuned))  # dimensions are stored largest first
    pairs = [(other, dim, dim) for other in (BASE, BASE_ROTATED) if other in runs
             for dim in tuned if dim in runs[other].per_query]
    pairs.append((BM25, NO_DIM, full))
    return [{"a": other, "b": FINETUNED, "dim": dim, "metric": HEADLINE,
             **paired_test(runs[other].per_query[other_dim][HEADLINE], tuned[dim][HEADLINE], alpha=ALPHA)}
            for other, other_dim, dim in pairs]


def worsened_queries(data: IRData, runs: dict[str, SystemRun], limit: int = 10, snippet: int = 160
                     ) -> list[dict]:
    """Queries whose ndcg@10 fell after fine-tuning (largest fall first), with what each model retrieved."""
    if not {BASE, FINETUNED} <= runs.keys():
        return []
    before, after = (_full_dim(runs[s].per_query)[HEADLINE] for s in (BASE, FINETUNED))
    ids, texts = data.corpus_ids, list(data.corpus.values())

    def docs(i: int, system: str) -> list[dict]:
        relevant = data.relevant[data.query_ids[i]]
        return [{"id": ids[j], "relevant": ids[j] in relevant, "text": _clip(texts[j], snippet)}
                for j in runs[system].top[i]]

    worse = [i for i in np.argsort(after - before, kind="stable")[:limit] if after[i] < before[i]]
    return [{"id": data.query_ids[i], "query": data.queries[data.query_ids[i]],
             f"{HEADLINE}_base": float(before[i]), f"{HEADLINE}_fine_tuned": float(after[i]),
             "relevant": [{"id": c, "text": _clip(data.corpus[c], snippet)}
                          for c in sorted(data.relevant[data.query_ids[i]])],
             "retrieved_base": docs(i, BASE), "retrieved_fine_tuned": docs(i, FINETUNED)}
            for i in worse]


def verdict(test: dict) -> str:
    """'helped', 'hurt' or 'no clear difference' from a paired test of fine-tuned (b) against base (a)."""
    if test["p_value"] >= ALPHA:
        return "no clear difference"
    return "helped" if test["mean_diff"] > 0 else "hurt"


def disagreement(set_reports: dict[str, QuerySetResult]) -> str | None:
    """A plain sentence when the query sets disagree on whether fine-tuning helped; None when they agree."""
    verdicts = {name: r["verdict"] for name, r in set_reports.items() if r.get("verdict")}
    if len(set(verdicts.values())) < 2:
        return None
    parts = []
    for name, v in verdicts.items():
        test = set_reports[name]["headline_test"]
        outcome = f"fine-tuning {v}" if v in ("helped", "hurt") else f"there is {v}"
        parts.append(f"on the {name} questions {outcome} ({test['mean_diff']:+.3f} {HEADLINE}, "
                     f"p={test['p_value']:.3f}, {test['n_queries']} queries)")
    return ("At the full dimension the query sets disagree: " + "; ".join(parts) + ". Trust the "
            "hand-written questions more: synthetic questions are written from the very chunks they must "
            "retrieve.")


def by_type(types: dict[str, str], data: IRData, runs: dict[str, SystemRun]) -> dict:
    """Mean ndcg@10 (full dimension) of every system per question type, e.g. keyword vs paraphrase."""
    labels = np.array([types[q] for q in data.query_ids])
    return {t: {"n_queries": int((labels == t).sum()),
                **{s: float(_full_dim(r.per_query)[HEADLINE][labels == t].mean()) for s, r in runs.items()}}
            for t in sorted(set(labels))}


def set_report(data: IRData, runs: dict[str, SystemRun]) -> QuerySetResult:
    """Everything eval.json says about one query set."""
    tests = paired_tests(runs)
    headline = next((t for t in tests if t["a"] == BASE), None)
    meta = {k: v for k, v in data.meta.items() if k != "types"}
    return {
        **meta,
        "n_queries": len(data.queries),
        "n_corpus": len(data.corpus),
        "metrics": {system: metric_table(run) for system, run in runs.items()},
        "paired_tests": tests,
        "headline_test": headline,
        "verdict": verdict(headline) if headline else None,
        "storage": [row | {"system": system} for system, run in runs.items() for row in run.storage],
        "worsened": worsened_queries(data, runs),
        "by_type": by_type(data.meta["types"], data, runs) if "types" in data.meta else {},
    }


def build_query_sets(paths: config.RunPaths, chunks: Sequence[Chunk], names: Sequence[str],
                     max_queries: int | None = None, held_out: Sequence[str] = ()
                     ) -> tuple[dict[str, IRData], dict[str, str]]:
    """The query sets to evaluate, and those skipped with the reason (only gold may be skipped); with
    documents ``held_out`` from training (a split by document), also the questions on them
    (``unseen_sets``)."""
    sets, skipped = {}, {}
    for name in names:
        if name != "gold":
            sets[name] = ir_from_split(paths.pairs, name, chunks).sample(max_queries)
            continue
        try:
            sets[name] = ir_from_gold(chunks, load_run_gold(paths.root, chunks)).sample(max_queries)
        except GoldFormatError:
            raise  # the user's own file has bad lines: fixed, not left out (nothing is written before)
        except (ValueError, FileNotFoundError) as exc:
            skipped[name] = str(exc)
            logger.info(f"Gold questions skipped: {exc}")
    if not sets:
        raise ValueError(f"None of the query sets {list(names)} could be built: {skipped}")
    if held_out:
        sets |= unseen_sets(paths, chunks, held_out, sets.get("gold"), max_queries)
    return sets, skipped


def unseen_sets(paths: config.RunPaths, chunks: Sequence[Chunk], held_out: Sequence[str],
                gold: IRData | None, max_queries: int | None = None) -> dict[str, IRData]:
    """Questions whose answers lie only in documents kept out of training: the unseen split's, and the
    gold questions on those documents (when any). They search the whole corpus, as users do."""
    note = (f"on {len(held_out)} documents the model never saw ({', '.join(held_out)}): neither training "
            "nor the corpus rotation used them")
    unseen = ir_from_split(paths.pairs, UNSEEN, chunks).sample(max_queries)
    unseen.meta |= {"held_out_documents": list(held_out), "source": f"synthetic questions {note}"}
    sets = {UNSEEN: unseen}
    source = {c.id: c.source for c in chunks}
    if gold is not None:
        keep = {q for q, ids in gold.relevant.items() if all(source[c] in held_out for c in ids)}
        if keep:
            sets[GOLD_UNSEEN] = gold.subset(keep, query_set=GOLD_UNSEEN, held_out_documents=list(held_out),
                                            source=f"hand-written gold questions {note}")
    return sets


def training_info(model_dir: Path) -> dict:
    """What the fine-tuning stage recorded about the model (empty for a model trained elsewhere)."""
    path = Path(model_dir) / "training_config.json"
    return read_json(path) if path.is_file() else {}


def base_of(info: dict) -> str | None:
    """The model the fine-tuned one started from, as ``load_embedding_model`` accepts it."""
    base = info.get("base_model") or {}
    if base.get("preset") in presets.PRESETS and presets.PRESETS[base["preset"]].offline:
        return base["preset"]
    if base.get("loaded") == config.FALLBACK_MODEL_NAME:  # recorded before presets existed
        return "fallback"
    return base.get("loaded")


def dims_for(full: int, trained: Sequence[int] | None) -> list[int]:
    """The dimensions the model was trained with when they fit it, else the standard Matryoshka ones."""
    from helpers.training.dims import matryoshka_dims

    return check_dims(trained, full) if trained and max(trained) == full else matryoshka_dims(full)


def describe(loaded, dims: Sequence[int]) -> dict:
    """Which model made the numbers: asked for, loaded, why, its architecture, its query prompt, and the sizes
    its makers trained it at when its preset knows them (``native_dims``)."""
    from helpers.core.models import is_static

    native = {"native_dims": list(loaded.preset.native_dims)} if loaded.preset.native_dims else {}
    return {"kind": "dense", "requested": loaded.requested, "loaded": loaded.loaded, "reason": loaded.reason,
            "is_fallback": loaded.is_fallback, "architecture": "static" if is_static(loaded.model) else
            "transformer", "query_prompt": loaded.model.prompts.get("query"), "dims": list(dims)} | native


def run_systems(models: dict[str, str], sets: dict[str, IRData], store: EmbeddingStore,
                trained_dims: Sequence[int] | None = None, rotated_base: bool = False,
                max_seq_length: int | None = None, rotation_fit_ids: Sequence[str] | None = None
                ) -> tuple[dict, dict[str, dict[str, SystemRun]]]:
    """BM25 and each model (name -> id or folder) on every query set: (who made the numbers, the runs).

    Embeddings come from ``store``. With ``rotated_base``, also the base model after the corpus rotation
    that fine-tuning starts from, fitted on the chunks ``rotation_fit_ids`` (default: all) as training
    fitted it, so the report separates what the rotation did from what training did (derived from the
    base's vectors, never encoded). ``max_seq_length``: the training's cap on inputs, applied to every
    model, so the base reads the chunks as fine-tuning did."""
    from helpers.core.models import cap_max_seq_length, load_embedding_model

    runs = {name: {BM25: run_bm25(data)} for name, data in sets.items()}
    fit_ids = None if rotation_fit_ids is None else set(rotation_fit_ids)
    fit_rows = None if fit_ids is None else [i for i, cid in enumerate(next(iter(sets.values())).corpus_ids)
                                             if cid in fit_ids]
    systems = {BM25: {"kind": "lexical", "model": "BM25 (bm25s defaults, English stopwords)"}}

    def add(system: str, loaded, encoded: Encoded, note: str = "") -> None:
        dims = dims_for(loaded.model.get_embedding_dimension(), trained_dims)
        systems[system] = describe(loaded, dims) | {"sentences_per_s": round(encoded.per_second, 1)}
        systems[system] |= {"note": note} if note else {}
        for name, run in run_dense(encoded, sets, dims).items():
            runs[name][system] = run

    for system, model_id in tqdm(models.items(), desc="systems", disable=None):
        loaded = load_embedding_model(model_id)
        if max_seq_length:
            cap_max_seq_length(loaded.model, max_seq_length)
        encoded = encode_sets(loaded.model, sets, store)
        add(system, loaded, encoded)
        if system == BASE and rotated_base:  # what the rotation alone does, before any training
            add(BASE_ROTATED, loaded, encoded.rotated(fit_rows), "rotated onto the principal directions of "
                                                                 "the training chunks, as fine-tuning "
                                                                 "starts: no training")
    return systems, runs


def static_systems(paths: config.RunPaths, base_model: str) -> dict[str, str]:
    """The static model to compare with (published online, distilled offline) and its fine-tuned version
    when the train stage made one; none when the base model is static itself."""
    if presets.resolve(base_model).kind == "static":
        return {}
    tuned = paths.static_model / "config_sentence_transformers.json"
    return {STATIC: presets.STATIC_PRESET, **({STATIC_FINETUNED: str(paths.static_model)} if tuned.is_file()
                                              else {})}


def evaluate_run(paths: config.RunPaths, base_model_id: str | None = None, extra_models: Sequence[str] = (),
                 query_sets: Sequence[str] = ("test", "gold"), profile: config.Profile | None = None,
                 static: bool = True, retention_subsets: Sequence[str] = DEFAULT_SUBSETS) -> EvalResult:
    """Evaluate BM25, the base model, the fine-tuned ``paths.model``, the static models (``static``) and
    ``extra_models``; check retention on NanoBEIR when the hub is reachable; write eval.json.

    The base defaults to the model the fine-tuned one started from; the dimensions are those it was
    trained with. Returns what was written to ``paths.eval``; the plots go to ``paths.plots``. Other
    libraries' logging is the caller's (the CLI and ``show_setup`` quiet it).
    """
    from helpers.chunking.chunkers import load_chunks
    from helpers.evaluation.views import save_plots

    profile = profile or config.get_profile()
    chunks = load_chunks(paths.chunks)
    held_out = held_out_documents(paths.pairs)
    sets, skipped = build_query_sets(paths, chunks, query_sets, profile.eval_max_queries, held_out)
    info = training_info(paths.model)
    base = base_model_id or base_of(info) or presets.default_model()
    models = {BASE: base, FINETUNED: str(paths.model), **(static_systems(paths, base) if static else {}),
              **{m: m for m in extra_models}}
    trained = info.get("config", {})
    systems, runs = run_systems(models, sets, run_store(paths), trained.get("dims"),
                                trained.get("corpus_rotation", False), trained.get("max_seq_length"),
                                [c.id for c in chunks if c.source not in held_out] if held_out else None)
    started_from = info.get("base_model", {}).get("loaded")
    if started_from and systems[BASE]["loaded"] != started_from:
        systems[BASE]["note"] = f"the fine-tuned model started from {started_from}, not from this base"
    reports = {name: set_report(data, runs[name]) for name, data in sets.items()}
    report: EvalResult = {
        "profile": profile.name,
        "similarity": "cosine (embeddings truncated to each dimension, then re-normalised)",
        "confidence": f"{1 - ALPHA:.0%} intervals: means, percentile bootstrap over queries (1000 "
                      "resamples); paired differences, the sign-flip test inverted",
        "storage_note": "int8: corpus quantized with ranges calibrated on the corpus embeddings, float32 "
                        "queries against the de-quantized corpus; binary: sign bits, Hamming distance; "
                        "no rescoring",
        "systems": systems,
        "query_sets": reports,
        "skipped_query_sets": skipped,
        "disagreement": disagreement(reports),
        "retention": retention_check({BASE: base, FINETUNED: str(paths.model)}, tuple(retention_subsets)),
    }
    report["plots"] = [str(p) for p in save_plots(report, paths.plots)]
    write_json(paths.eval, report)
    return report



def run(paths: config.RunPaths, settings: RunSettings) -> dict:
    """The pipeline's evaluation stage: ``evaluate_run`` with the run's base model and profile."""
    result = evaluate_run(paths, base_model_id=settings.model_id, profile=settings.profile)
    return {"written": str(paths.eval), "disagreement": result.get("disagreement")}

def _full_dim(per_query: dict[str, PerQuery]) -> PerQuery:
    """The metrics at the largest dimension (dimensions are stored largest first)."""
    return next(iter(per_query.values()))


def _clip(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"
