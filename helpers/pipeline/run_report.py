"""What the run report says, section by section, read from the artifacts each stage left on disk."""

from __future__ import annotations

from pathlib import Path

from helpers.core import presets
from helpers.core.config import RunPaths
from helpers.core.io import read_json
from helpers.pipeline.report import Section, Table, key_value_table, write_report


def frame_table(frame) -> Table:
    """A pandas DataFrame as report rows; its index becomes the first column when it is named."""
    if any(name is not None for name in frame.index.names):
        frame = frame.reset_index()
    return [
        [str(c) for c in frame.columns],
        *([str(v) for v in row] for row in frame.itertuples(index=False)),
    ]


def corpus_section(paths: RunPaths) -> Section | None:
    report_path = paths.chunks.with_suffix(".report.json")
    if not report_path.exists():
        return None
    r = read_json(report_path)
    problems = "\n".join(f"- {p}" for p in r.get("problems", [])) or "none"
    text = (
        f"{r['documents']} documents, {r['pages']} pages, {r['chunks']} chunks ({r['strategy']} "
        f"strategy). Dropped chunks by reason: {r.get('dropped') or 'none'}.\n\nUnreadable files: {problems}"
    )
    return Section(
        "Corpus and chunks",
        text,
        [key_value_table(r["tokens"])],
        [paths.root / r["plot"]] if r.get("plot") else [],
    )


def pairs_section(paths: RunPaths) -> Section | None:
    report_path = paths.pairs / "report.json"
    if not report_path.exists():
        return None
    r = read_json(report_path)
    generator = r["llm"] or "offline generator (no LLM configured): headings, inverse-cloze, keyphrases"
    rejections: Table = [
        ["reason", "count", "example"],
        *(
            [reason, str(v["count"]), v["examples"][0]["anchor"] if v["examples"] else ""]
            for reason, v in r["rejections"].items()
        ),
    ]
    splits: Table = [
        ["split", "pairs", "chunks"],
        *([s, str(n), str(r["split_chunks"][s])] for s, n in r["splits"].items()),
    ]
    text = (
        f"Questions made by: {generator}. Generated {r['counts']['generated']}, kept {r['counts']['kept']}, "
        f"rejected {r['counts']['rejected']}. Leakage check: {'passed' if r['leakage']['ok'] else 'FAILED'}."
    )
    if r.get("failures"):
        text += (f" LLM requests failed for {r['counts']['failed_chunks']} chunks (by cause below); the same "
                 "command retries exactly those.")
    failures: Table = [["LLM failure", "chunks"], *([c, str(v["count"])] for c, v in r["failures"].items())]
    tables = [rejections, splits] + ([failures] if r.get("failures") else [])
    return Section("Question/passage pairs", text, tables)


def training_section(paths: RunPaths) -> Section | None:
    record = paths.root / "stages" / "train.json"
    if not record.exists():
        return None
    summary = read_json(record)["summary"]
    images = sorted(paths.plots.glob("training*.png"))
    return Section("Fine-tuning", validation_text(summary.get("validation") or {}),
                   [key_value_table(summary)], images)


def validation_text(v: dict) -> str:
    """What the validation during training searched: a bounded set, not the corpus."""
    if not v:
        return ""
    return (f"Validation during training: {v['questions']} questions searched {v['chunks']} chunks (their "
            f"own and {v['distractors']} others drawn with seed {v['seed']}, the same at each of the "
            f"{v['evaluations']} evaluations), not all {v['corpus_chunks']}: its scores are higher than the "
            "evaluation stage's, which searches every chunk.")


def evaluation_verdicts(report: dict) -> list[str]:
    """One sentence per query set: did fine-tuning beat the base model, dimension by dimension."""
    from helpers.evaluation.stage import verdict_by_dim

    return [f"Fine-tuned vs base on the {name} questions: {verdict_by_dim(qs['paired_tests'])}"
            for name, qs in report["query_sets"].items() if qs["verdict"]]


def evaluation_section(paths: RunPaths) -> Section | None:
    if not paths.eval.exists():
        return None
    from helpers.evaluation.retention import retention_frame, retention_summary
    from helpers.evaluation.views import metrics_frame, paired_frame, storage_frame

    report = read_json(paths.eval)
    retention = report.get("retention")
    systems = "; ".join(
        f"{name}: {s.get('loaded') or s.get('model')}" + (f" ({s['note']})" if s.get("note") else "")
        for name, s in report["systems"].items()
    )
    verdicts = "".join(f"{line}. " for line in evaluation_verdicts(report)).strip()
    text = "\n\n".join(
        filter(
            None,
            [
                f"Systems: {systems}.",
                verdicts,
                report.get("disagreement"),
                f"Confidence intervals: {report['confidence']}.",
                retention_summary(retention) if retention else None,
            ],
        )
    )
    tables = [frame_table(metrics_frame(report, name)) for name in report["query_sets"]]
    captions = [f"Retrieval on the {name} questions" for name in report["query_sets"]]
    first = next(iter(report["query_sets"]))
    tables += [frame_table(paired_frame(report)), frame_table(storage_frame(report, first))]
    captions += ["Paired differences of nDCG@10 (bootstrap CI, sign-flip permutation p-value)",
                 f"Storage vs quality of the fine-tuned model ({first} questions)"]
    if retention and (frame := retention_frame(retention)) is not None:
        tables.append(frame_table(frame.rename_axis("system")))
        captions.append("General retrieval retention (NanoBEIR)")
    return Section("Retrieval evaluation", text, tables, [Path(p) for p in report.get("plots", [])], captions)


def rag_section(paths: RunPaths) -> Section | None:
    if not paths.rag_eval.exists():
        return None
    from helpers.rag.views import scores_table

    rows = scores_table(read_json(paths.rag_eval))
    table: Table = [list(rows[0]), *([str(v) for v in row.values()] for row in rows)] if rows else []
    return Section(
        "RAG chain scored with RAGAS", "", [table] if table else [], sorted(paths.plots.glob("rag*.png"))
    )


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
    """report.md and report.html for everything this run has produced so far."""
    builders = (fallback_section, corpus_section, pairs_section, training_section, evaluation_section,
                rag_section)
    sections = [s for s in (b(paths) for b in builders) if s is not None]
    return write_report(paths, f"Run report: {paths.root.name}", sections)
