"""What the run report says, read from the artifacts each stage left on disk: first the verdict (did
fine-tuning help, at which dimension, how sure, what the questions could see), the headline plot and the
cost; then the details of each stage."""

from __future__ import annotations

from pathlib import Path

from helpers.core import presets
from helpers.core.config import RunPaths
from helpers.core.io import read_json
from helpers.evaluation.result import EvalResult, load_result, query_sets, skipped
from helpers.evaluation.systems import query_set_label
from helpers.pipeline.report import Section, Table, fmt, key_value_table, link, write_report

TRAINING_LABELS = {
    "base_model": "Base model",
    "is_fallback": "Offline stand-in for the requested model",
    "n_train": "Training pairs",
    "n_validation": "Validation questions",
    "steps": "Steps",
    "epochs": "Epochs",
    "loss_start": "Loss, mean of the first quarter of steps",
    "loss_end": "Loss, mean of the last quarter of steps",
    "best_metric": "Best validation nDCG@10 (full dimension)",
    "train_seconds": "Training time (s, validation included)",
    "validation_seconds": "of which validation (s)",
    "pairs_per_second": "Pairs per second",
    "resumed_from": "Resumed from checkpoint",
    "cached": "Reused an identical earlier run",
    "static_model": "Static model trained beside it",
    "static_pairs_per_second": "Static model: pairs per second",
    "static_best_metric": "Static model: best validation nDCG@10",
}
TOKEN_LABELS = {"min": "shortest", "median": "median", "mean": "mean", "max": "longest",
                "limit": "model limit", "over_limit": "over the limit"}
PRECISION_ORDER = ("float32", "int8", "binary")


def frame_table(frame) -> Table:
    """A pandas DataFrame as report rows; its index becomes the first column when it is named."""
    if any(name is not None for name in frame.index.names):
        frame = frame.reset_index()
    return [
        [str(c).replace("_", " ") for c in frame.columns],
        *([fmt(v) for v in row] for row in frame.itertuples(index=False)),
    ]


def verdict_section(paths: RunPaths) -> Section | None:
    """The verdict per query set and dimension, with intervals and detectable differences, and the plot."""
    if not paths.eval.exists():
        return None
    from helpers.evaluation.verdicts import (
        VERDICT_HEADER,
        VERDICT_NOTE,
        headline_set,
        verdict_sentences,
        verdict_sets,
        verdict_table,
    )

    report = load_result(paths.eval)
    sets = verdict_sets(report)
    lines = verdict_sentences(report)
    if report.get("disagreement"):
        lines.append(report["disagreement"])
    if not sets:
        lines.append("No fine-tuned model was compared with its base model in this run.")
    headline = headline_set(report)
    if skipped(report, "gold") and sets:
        lines.append(write_your_own(paths.root.name))
    tables = [[VERDICT_HEADER, *verdict_table(qs)] for qs in sets.values()]
    captions = [f"nDCG@10 on the {query_set_label(name)} ({qs['n_queries']})" for name, qs in sets.items()]
    if sets:
        lines.append(VERDICT_NOTE)
    plot = paths.plots / f"ndcg_at_10_vs_dim_{headline}.png"
    return Section("Verdict: did fine-tuning help?", "\n\n".join(lines), tables, [plot], captions,
                   anchor="verdict")


def write_your_own(run: str) -> str:
    """The 15-minute fix for a run without hand-written questions: write 40 of your own."""
    return (f"No hand-written questions for these documents. For a verdict you can trust, write 40 questions "
            f"of your own: `python -m helpers gold draft --run {run}`, fill in the file, `python -m helpers "
            f"gold check --run {run}`, and run again.")


def cost_section(paths: RunPaths) -> Section | None:
    """What fine-tuning cost (training time) and what an index costs per million chunks at each dimension."""
    record = paths.stage_record("train")
    text = ""
    if record.exists():
        train = read_json(record)
        summary = train["summary"]
        text = (f"{_training_time(train)}: {summary.get('n_train', '?')} pairs, {summary.get('steps', '?')} "
                f"steps, {_duration(summary.get('validation_seconds') or 0)} of validation.")
    tables, captions = [], []
    if paths.eval.exists():
        from helpers.evaluation.metrics import bytes_per_vector

        report = load_result(paths.eval)
        dims = _dims(report)
        if dims:
            tables.append([["dims", *PRECISION_ORDER],
                           *([str(d), *(_size(bytes_per_vector(d, p) * 1e6) for p in PRECISION_ORDER)]
                             for d in dims)])
            captions.append("Index storage per million chunks (vectors only)")
    if not text and not tables:
        return None
    return Section("Cost", text, tables, captions=captions, anchor="cost")


def _training_time(train: dict) -> str:
    """How long training took: the whole stage, or, after a resume, the runs that trained added up."""
    summary = train["summary"]
    if resumed := summary.get("resumed_from"):
        return (f"Training took {_duration(summary.get('train_seconds') or 0)} on this machine, added up "
                f"over the runs it took (resumed from {Path(resumed).name} after an interruption; the last "
                f"run's stage, the static model included, took {_duration(train.get('seconds') or 0)})")
    return (f"Training took {_duration(train.get('seconds', summary.get('train_seconds', 0)))} on this "
            "machine (the whole stage, the static model included)")


def retrieval_section(paths: RunPaths) -> Section | None:
    """Every system on every query set, the paired tests, storage vs quality, retention."""
    if not paths.eval.exists():
        return None
    from helpers.evaluation.retention import retention_frame, retention_summary
    from helpers.evaluation.verdicts import headline_set
    from helpers.evaluation.views import metrics_frame, paired_frame, storage_frame

    report = load_result(paths.eval)
    retention = report.get("retention")
    systems = "\n".join(f"- {name}: {_system(s, paths.root)}" for name, s in report["systems"].items())
    text = "\n\n".join(filter(None, [
        f"Systems compared:\n{systems}",
        f"Confidence intervals: {report['confidence']}.",
        retention_summary(retention) if retention else None,
        f"All numbers: {link('eval.json', paths.eval, paths.root)}.",
    ]))
    tables = [frame_table(metrics_frame(report, name)) for name in query_sets(report)]
    captions = [f"Retrieval on the {query_set_label(name)} (mean [95% interval])"
                for name in query_sets(report)]
    first = headline_set(report)
    tables += [frame_table(paired_frame(report)), frame_table(storage_frame(report, first))]
    captions += ["Paired differences of nDCG@10 (sign-flip permutation p-value, and the interval it implies)",
                 f"Storage vs quality of the fine-tuned model ({first} questions)"]
    if retention and (frame := retention_frame(retention)) is not None:
        tables.append(frame_table(frame.rename_axis("system")))
        captions.append("General retrieval retention (NanoBEIR)")
    plots = [paths.plots / Path(p).name for p in report.get("plots", [])]  # the run folder may have moved
    headline = paths.plots / f"ndcg_at_10_vs_dim_{first}.png"
    return Section("Retrieval in detail", text, tables, [p for p in plots if p != headline], captions)


def training_section(paths: RunPaths) -> Section | None:
    record = paths.stage_record("train")
    if not record.exists():
        return None
    summary = read_json(record)["summary"]
    files = [link("model/", paths.model, paths.root)]
    files += [link(name, paths.model / name, paths.root)
              for name in ("training_config.json", "train_log.json") if (paths.model / name).exists()]
    if paths.static_model.exists():
        files.append(link("model_static/", paths.static_model, paths.root))
    dims = ", ".join(str(d) for d in summary.get("dims") or [])
    text = f"Matryoshka dimensions: {dims}. " if dims else ""
    text += validation_text(summary.get("validation") or {}) + merge_text(summary.get("merge") or {})
    text += f"\n\nFiles: {' · '.join(files)}."
    table = key_value_table(summary, list(TRAINING_LABELS), TRAINING_LABELS)
    return Section("Fine-tuning", text, [table], sorted(paths.plots.glob("training*.png")))


def validation_text(v: dict) -> str:
    """What the validation during training searched: a bounded set, not the corpus."""
    if not v:
        return ""
    return (f"Validation during training: {v['questions']} questions searched {v['chunks']} chunks (their "
            f"own and {v['distractors']} others drawn with seed {v['seed']}, the same at each of the "
            f"{v['evaluations']} evaluations), not all {v['corpus_chunks']}: its scores are higher than the "
            "evaluation stage's, which searches every chunk.")


def merge_text(merge: dict) -> str:
    """The merge with the base and the offline retention proxy, in words (empty for older runs)."""
    from helpers.training.foreign import foreign_summary
    from helpers.training.merge import merge_summary

    sentences = [merge_summary(merge), foreign_summary(merge.get("foreign") or {})]
    return "".join(f"\n\n{s}" for s in sentences if s)


def pairs_section(paths: RunPaths) -> Section | None:
    report_path = paths.pairs / "report.json"
    if not report_path.exists():
        return None
    r = read_json(report_path)
    generator = r["llm"] or "offline generator (no LLM configured): headings, inverse-cloze, keyphrases"
    rejections: Table = [
        ["reason", "count", "example"],
        *(
            [reason.replace("_", " "), str(v["count"]), v["examples"][0]["anchor"] if v["examples"] else ""]
            for reason, v in r["rejections"].items()
        ),
    ]
    splits: Table = [
        ["split", "pairs", "chunks"],
        *([s, str(n), str(r["split_chunks"][s])] for s, n in r["splits"].items()),
    ]
    held = r.get("chunks", {}).get("held_out_for_test", 0)
    held_text = (f" The test split also holds the questions on {held} chunks that training never saw, so "
                 "the verdict rests on more questions." if held else "")
    if docs := r.get("held_out_documents"):
        held_text += (f" Split by document: {', '.join(docs)} kept out of training and of the corpus "
                      "rotation; the questions on them (the unseen split) show how the model does on "
                      "documents added after training.")
    text = (
        f"Questions made by: {generator}. Generated {r['counts']['generated']}, kept {r['counts']['kept']}, "
        f"rejected {r['counts']['rejected']}. Leakage check: {'passed' if r['leakage']['ok'] else 'FAILED'}."
        f"{held_text}"
    )
    if r.get("failures"):
        text += (f" LLM requests failed for {r['counts']['failed_chunks']} chunks (by cause below); the same "
                 "command retries exactly those.")
    text += f"\n\nFiles: {link('pairs/', paths.pairs, paths.root)}"
    tables, captions = [rejections, splits], ["Rejected questions", "Splits (by chunk)"]
    if r.get("failures"):
        tables.append([["LLM failure", "chunks"], *([c, str(v["count"])] for c, v in r["failures"].items())])
        captions.append("LLM requests that failed, by cause")
    return Section("Question/passage pairs", text, tables, captions=captions)


def corpus_section(paths: RunPaths) -> Section | None:
    report_path = paths.chunks.with_suffix(".report.json")
    if not report_path.exists():
        return None
    r = read_json(report_path)
    problems = "; ".join(r.get("problems", [])) or "none"
    dropped = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in (r.get("dropped") or {}).items()) or "none"
    text = (
        f"{r['documents']} documents, {r['pages']} pages, {r['chunks']} chunks ({r['strategy']} strategy). "
        f"Dropped chunks: {dropped}. Unreadable or partly read files: {problems}.\n\n"
        f"Files: {link('chunks.jsonl', paths.chunks, paths.root)}"
    )
    tokens = r["tokens"]
    table: Table = [[TOKEN_LABELS.get(k, k) for k in tokens], [fmt(v) for v in tokens.values()]]
    return Section("Corpus and chunks", text, [table], [paths.root / r["plot"]] if r.get("plot") else [],
                   ["Chunk length in tokens"])


def rag_section(paths: RunPaths) -> Section | None:
    """RAGAS scores per system and query set, and the answers that failed, by cause."""
    if not paths.rag_eval.exists():
        return None
    from helpers.rag.views import comparison_rows, judges

    result = read_json(paths.rag_eval)
    rows = comparison_rows(result)
    tables: list[Table] = []
    captions: list[str] = []
    text = f"Files: {link('rag_eval.json', paths.rag_eval, paths.root)}"
    if rows:
        tables.append([list(rows[0]), *([_score(v) for v in row.values()] for row in rows)])
        captions.append(f"RAGAS scores, top-{result['k']} passages (mean; scored and failed answers)")
        text = f"Judged by: {judges(result)}.\n\n{text}"
    answers = result.get("answers") or {}
    if answers.get("failed"):
        none = " No answer came back, so no score could be computed." if answers["all_failed"] else ""
        text = (f"{answers['failed']} of {answers['asked']} answers failed and are left out of every "
                f"score below.{none} The same command asks exactly those again (answers that came back are "
                f"kept in {link('rag_answers/', paths.rag_answers, paths.root)}).\n\n{text}")
        tables.append([["cause", "answers"], *([cause, str(n)] for cause, n in answers["causes"].items())])
        captions.append("RAG answers that failed, by cause")
    plots = sorted(paths.plots.glob("rag*.png"))
    return Section("RAG chain scored with RAGAS", text, tables, plots, captions)


def fallback_section(paths: RunPaths) -> Section | None:
    """First in the report when a model chosen by the user (not the course default, whose offline fallback
    is the documented behaviour) could not be loaded and the offline fallback was trained instead."""
    meta_path = paths.model / "training_config.json"
    if not meta_path.is_file():
        return None
    base = read_json(meta_path).get("base_model", {})
    fallbacks = {"fallback", "static-distilled"}
    if base.get("preset") not in fallbacks or base.get("requested") in {*fallbacks, presets.DEFAULT_PRESET}:
        return None
    return Section("WARNING: not the model you asked for",
                   f"Asked for {base.get('requested')}, but it could not be loaded ({base.get('reason')}): "
                   f"every result below is for {base.get('loaded')}. Connect to the model hub (or put the "
                   "model in the local cache) and rerun with --force.")


def write_run_report(paths: RunPaths) -> tuple[Path, Path]:
    """report.md and report.html for everything this run has produced so far, the verdict first."""
    builders = (fallback_section, verdict_section, cost_section, retrieval_section, training_section,
                pairs_section, corpus_section, rag_section)
    sections = [s for s in (b(paths) for b in builders) if s is not None]
    return write_report(paths, f"Run report: {paths.root.name}", sections)


def _system(system: dict, root: Path) -> str:
    """Who made a system's numbers, folders inside the run as links."""
    name = system.get("loaded") or system.get("model") or ""
    path = Path(name)
    shown = link(path.name + "/", path, root) if path.is_absolute() and path.is_relative_to(root) else name
    native = system.get("native_dims")
    shown += f" (Matryoshka-trained by its makers at {', '.join(map(str, native))} dims)" if native else ""
    return shown + (f" ({system['note']})" if system.get("note") else "")


def _dims(report: EvalResult) -> list[int]:
    from helpers.evaluation.systems import FINETUNED

    system = report["systems"].get(FINETUNED) or next(
        (s for s in report["systems"].values() if s.get("dims")), {})
    return list(system.get("dims") or [])


def _score(value) -> str:
    """A mean score at 3 places (``–`` when nothing could be scored); other cells as ``fmt`` writes them."""
    if value is None:
        return "–"
    return f"{value:.3f}" if isinstance(value, float) else fmt(value)


def _size(n_bytes: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.3g} {unit}"
    return f"{n_bytes:.0f} B"


def _duration(seconds: float) -> str:
    seconds = round(float(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, rest = divmod(seconds, 60)
    return f"{minutes} min {rest:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"
