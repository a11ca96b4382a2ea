"""How far should the saved model move from the start? The merge's α judged on people's questions.

    python benchmarks/corpora/build_debian_faq.py     # the FAQ: 16 PDFs, 119 questions
    python benchmarks/corpora/build_debian_docs.py    # the FAQ among Debian Reference chapters, >= 250 pages
    python benchmarks/bench_guard.py --corpus faq|docs --profile smoke|workshop [--tag NAME] [--batch-size N]

The kit's chunk, questions and train stages run offline on the corpus exactly as ``python -m helpers run``
runs them (``bench_debian_faq.train_on``), with the kit's own merge grid, so the saved model and the
synthetic validation score of every α are the ones the kit records. One thing is added, in this process
only: ``helpers.training.trainer.merge_after_training`` is wrapped so that, before the merge runs, both of
its ends are saved to ``<run>/guard_ends.pt``: the start (the base with its corpus rotation, every weight,
as training started) and the fine-tuned model (the best checkpoint, α = 1). The static model the stage
also trains is not captured. A run whose model exists without that file is trained again.

Each α of {0, 0.25, 0.5, 0.75, 1} is rebuilt from the two ends with ``helpers.training.merge.load_merge``
(θ = (1 − α)·start + α·fine-tuned) and scored on PEOPLE's questions (the FAQ's headings, removed from the
PDFs; relevant chunks by answer overlap, ``benchmarks/corpora/relevance.py``), nDCG@10 at every Matryoshka
dimension, beside BM25, the base and the rotated base, with the paired difference against base and
against rotated base (mean and 95% bootstrap interval, ``helpers.evaluation.stats.paired_test``). The
synthetic validation score per α is the one the train stage recorded (``merge.validation``; α = 0 is
``merge.scores.base``, the score before training). Then rules for choosing α are checked: the kit's
(highest synthetic validation), fixed α, and α chosen on half of the people's questions (two-fold:
chosen on one half, scored on the other). A rule passes a cell when its model's paired difference with
base and with rotated base has a lower 95% bound >= -0.005 at every dimension.

``--batch-size N`` trains with the profile's batch size changed (the run and its JSON named ``...-bN``).
Numbers go to ``data/downloads/bench/runs/guard-<tag>-<corpus>-<profile>.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from bench_debian_faq import FAQ_DIR, RUNS_DIR, faq_queries, train_on  # noqa: E402

from helpers.core import config  # noqa: E402

CORPORA = {"faq": FAQ_DIR, "docs": REPO / "data" / "downloads" / "bench" / "debian-docs"}
BUILDERS = {"faq": "build_debian_faq.py", "docs": "build_debian_docs.py"}
ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)
ENDS_FILE = "guard_ends.pt"
FLOOR = -0.005  # lowest allowed lower 95% bound of a paired difference
METRIC = "ndcg@10"


@contextlib.contextmanager
def keep_merge_ends(ends_path: Path):
    """Wrap the trainer's merge so that its start and fine-tuned ends are saved to ``ends_path`` first
    (only for the main model: the static one trains with ``progress=False``)."""
    import torch

    import helpers.training.trainer as trainer
    from helpers.training.merge import snapshot

    original = trainer.merge_after_training

    def wrapped(model, start, *args, **kwargs):
        progress = kwargs.get("progress", args[6] if len(args) > 6 else True)
        if start is not None and progress:
            torch.save({"start": start, "tuned": snapshot(model)}, ends_path)
            print(f"[guard] start and fine-tuned weights saved to {ends_path}", flush=True)
        return original(model, start, *args, **kwargs)

    trainer.merge_after_training = wrapped
    try:
        yield
    finally:
        trainer.merge_after_training = original


def train_keeping_ends(corpus: str, run: str, profile: config.Profile, model: str):
    """The kit's stages on the corpus; the merge's two ends saved beside the run (retrained if missing)."""
    import shutil

    paths = config.run_paths(run, RUNS_DIR)
    ends = paths.root / ENDS_FILE
    if paths.model.exists() and not ends.is_file():
        print(f"[guard] {paths.model} has no {ENDS_FILE}: training again", flush=True)
        shutil.rmtree(paths.model)
        (paths.root / "stages" / "train.json").unlink(missing_ok=True)
    paths.root.mkdir(parents=True, exist_ok=True)
    with keep_merge_ends(ends):
        trained = train_on(CORPORA[corpus], run, profile, model)
    return trained, ends


def alpha_runs(paths, ends: Path, data, dims: list[int], max_seq_length: int | None) -> dict[float, dict]:
    """Per α: per-query nDCG@10 per dimension of the merged model on ``data`` (people's questions)."""
    import torch

    from helpers.core.models import load_embedding_model
    from helpers.evaluation.metrics import encode_corpus, encode_queries, evaluate_embeddings
    from helpers.training.merge import load_merge
    from helpers.training.trainer import cap_max_seq_length

    saved = torch.load(ends, map_location="cpu")
    model = load_embedding_model(str(paths.model)).model
    if max_seq_length:
        cap_max_seq_length(model, max_seq_length)
    out = {}
    for alpha in ALPHAS:
        started = time.perf_counter()
        load_merge(model, saved["start"], saved["tuned"], alpha)
        q = encode_queries(model, list(data.queries.values()), show_progress=False)
        c = encode_corpus(model, list(data.corpus.values()), show_progress=False)
        out[alpha] = {str(d): m[METRIC] for d, m in evaluate_embeddings(q, c, data, dims).items()}
        print(f"[guard] α = {alpha:g} scored in {time.perf_counter() - started:.0f} s", flush=True)
    return out


def reference_runs(paths, data, model: str, dims: list[int], max_seq_length: int | None) -> dict:
    """BM25, base and rotated base (fitted on every chunk, as training fits it) per-query nDCG@10."""
    from helpers.core.embeddings import run_store
    from helpers.evaluation.stage import run_systems
    from helpers.evaluation.systems import BASE, BASE_ROTATED, BM25, NO_DIM

    _, runs = run_systems({BASE: model}, {"q": data}, run_store(paths.root), dims, rotated_base=True,
                          max_seq_length=max_seq_length)
    runs = runs["q"]
    return {"bm25": runs[BM25].per_query[NO_DIM][METRIC],
            "base": {d: runs[BASE].per_query[d][METRIC] for d in map(str, dims)},
            "rotated": {d: runs[BASE_ROTATED].per_query[d][METRIC] for d in map(str, dims)}}


def compare(values, base, rotated) -> dict:
    """Mean with its interval, and paired differences against base and rotated base (per dimension)."""
    from helpers.evaluation.stats import bootstrap_ci, paired_test

    out = {}
    for d, v in values.items():
        ci = bootstrap_ci(v)
        vs = {name: paired_test(ref[d], v) for name, ref in (("base", base), ("rotated", rotated))}
        out[d] = {"mean": ci.mean, "low": ci.low, "high": ci.high,
                  **{f"vs_{name}": {k: t[k] for k in ("mean_diff", "ci_low", "ci_high", "p_value")}
                     for name, t in vs.items()}}
    return out


def passes(row: dict) -> bool:
    """Every dimension: the paired difference with base and with rotated base has a lower bound >= FLOOR."""
    return all(cell[f"vs_{ref}"]["ci_low"] >= FLOOR for cell in row.values() for ref in ("base", "rotated"))


def best_alpha(per_alpha: dict[float, dict], rows: np.ndarray, full: str) -> float:
    """The α with the highest mean nDCG@10 at the full dimension on the queries ``rows`` (smallest of
    ties)."""
    means = {a: round(float(np.asarray(v[full])[rows].mean()), 12) for a, v in per_alpha.items()}
    top = max(means.values())
    return min(a for a, m in means.items() if m == top)


def gold_half_rule(per_alpha: dict[float, dict], full: str, seed: int = 0) -> tuple[dict, list[float]]:
    """Two-fold: α chosen on one random half of the questions, applied to the other; every question is
    scored by the α its own half did not choose. Returns the per-query values and the two αs."""
    n = len(next(iter(per_alpha.values()))[full])
    order = np.random.default_rng(seed).permutation(n)
    halves = [order[: n // 2], order[n // 2:]]
    values = {d: np.zeros(n) for d in next(iter(per_alpha.values()))}
    chosen = []
    for pick, score in ((halves[0], halves[1]), (halves[1], halves[0])):
        alpha = best_alpha(per_alpha, pick, full)
        chosen.append(alpha)
        for d in values:
            values[d][score] = np.asarray(per_alpha[alpha][d])[score]
    return values, chosen


def synthetic_validation(merge: dict) -> dict[str, float | None]:
    """Validation nDCG@10 (the kit's synthetic questions, full dimension) per α, as the train stage recorded
    it; α = 0 is the score of the start (logged before the first step, or measured by the merge)."""
    out = {f"{a:g}": merge.get("validation", {}).get(f"{a:g}") for a in ALPHAS}
    out["0"] = out["0"] if out["0"] is not None else merge.get("scores", {}).get("base")
    return out


def fmt_diff(t: dict) -> str:
    return f"{t['mean_diff']:+.3f} [{t['ci_low']:+.3f},{t['ci_high']:+.3f}]"


def print_table(title: str, result: dict) -> None:
    dims = result["dims"]
    print(f"\n{title}\n  people's questions: {result['n_queries']}, nDCG@10; Δ = paired difference, mean "
          "[95% interval]; val = synthetic validation nDCG@10 at full dim (what the kit chooses α by)")
    print(f"  BM25 {result['bm25']['mean']:.3f} [{result['bm25']['low']:.3f}, {result['bm25']['high']:.3f}]")
    head = "  model        val  " + "".join(f"| {d:>4}: nDCG   Δ base                 Δ rotated            "
                                         for d in dims)
    print(head)
    for name, row in result["rows"].items():
        val = result["validation"].get(name.removeprefix("α="), None) if name.startswith("α=") else None
        mark = " *" if name == f"α={result['kit_alpha']:g}" else "  "
        cells = "".join(f"| {row[d]['mean']:.3f}  {fmt_diff(row[d]['vs_base'])}  "
                        f"{fmt_diff(row[d]['vs_rotated'])} " for d in dims)
        print(f"  {name:<9}{mark}{'' if val is None else f'{val:.3f}':>5}  {cells}")
    print(f"  * the α the kit's rule chose (highest synthetic validation): {result['kit_alpha']:g}")
    print("  rules (pass: lower bound of Δ base and Δ rotated >= -0.005 at every dim):")
    for name, rule in result["rules"].items():
        full = rule["row"][dims[0]]
        print(f"    {name:<34} {'PASS' if rule['passes'] else 'fail'}  at {dims[0]}: {full['mean']:.3f}, "
              f"Δ base {fmt_diff(full['vs_base'])}, Δ rotated {fmt_diff(full['vs_rotated'])}"
              + (f"  (α chosen: {rule['alphas']})" if "alphas" in rule else ""))


def run(corpus: str, profile: config.Profile, tag: str, model: str) -> dict:
    from helpers.chunking.chunkers import load_chunks
    from helpers.evaluation.stage import training_info
    from helpers.evaluation.stats import bootstrap_ci

    started = time.perf_counter()
    paths, ends = train_keeping_ends(corpus, f"{tag}-{corpus}-{profile.name}", profile, model)
    trained_at = time.perf_counter()
    info = training_info(paths.model)
    cfg, result, merge = info.get("config", {}), info.get("result", {}), info["result"]["merge"]
    dims = [int(d) for d in cfg["dims"]]
    data, unlabelled = faq_queries(load_chunks(paths.chunks), CORPORA[corpus] / "questions.jsonl")
    refs = reference_runs(paths, data, model, dims, cfg.get("max_seq_length"))
    per_alpha = alpha_runs(paths, ends, data, dims, cfg.get("max_seq_length"))
    base, rotated = refs["base"], refs["rotated"]
    rows = {"base": compare(base, base, rotated), "rotated": compare(rotated, base, rotated)}
    rows |= {f"α={a:g}": compare(v, base, rotated) for a, v in per_alpha.items()}
    full = str(dims[0])
    rules = {f"fixed α = {a:g}": {"row": rows[f"α={a:g}"]} for a in ALPHAS}
    kit_alpha = float(merge["alpha"])
    rules = {"kit (synthetic validation)": {"row": rows[f"α={kit_alpha:g}"], "alphas": [kit_alpha]}} | rules
    halves, chosen = gold_half_rule(per_alpha, full)
    rules["α on half the gold (two-fold)"] = {"row": compare(halves, base, rotated), "alphas": chosen}
    choices = [gold_half_rule(per_alpha, full, seed)[1] for seed in range(20)]
    for rule in rules.values():
        rule["passes"] = passes(rule["row"])
    chunks = len(data.corpus)
    summary = {
        "corpus": corpus, "profile": profile.name, "run": str(paths.root), "model": model,
        "n_queries": len(data.queries), "unlabelled_questions": unlabelled, "chunks": chunks,
        "dims": [str(d) for d in dims],
        "dose": {"pairs": result.get("n_train"), "validation_questions": result.get("n_validation"),
                 "steps": result.get("steps"), "epochs": result.get("epochs"),
                 "batch_size": cfg.get("batch_size"), "max_seq_length": cfg.get("max_seq_length"),
                 "train_seconds": result.get("train_seconds")},
        "kit_alpha": kit_alpha, "merge_record": merge, "validation": synthetic_validation(merge),
        "bm25": bootstrap_ci(refs["bm25"])._asdict(), "rows": rows, "rules": rules,
        "gold_half_alphas_20_seeds": choices,
        "seconds": {"stages": round(trained_at - started, 1), "scoring": round(time.perf_counter()
                                                                                   - trained_at, 1)},
    }
    dose = summary["dose"]
    print_table(f"{corpus} / {profile.name}: {chunks} chunks; dose {dose['pairs']} pairs, "
                f"{dose['steps']} steps ({dose['epochs']} epochs, batch {dose['batch_size']}); {unlabelled} "
                "questions without a relevant chunk left out", summary)
    print(f"  α on half the gold over 20 random splits: {choices}")
    return summary


def to_json(obj):
    if isinstance(obj, dict):
        return {str(k): to_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_json(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    return obj


def main() -> None:
    from helpers.core import console

    console.kit_lines_only()  # the kit's lines, not the libraries' bars and load reports, as the CLI

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", choices=sorted(CORPORA), default="faq")
    parser.add_argument("--profile", default="smoke", choices=sorted(config.PROFILES))
    parser.add_argument("--model", default="fallback", help="base model (offline: the bundled MiniLM)")
    parser.add_argument("--tag", default="guard", help="names the run folder <tag>-<corpus>-<profile>")
    parser.add_argument("--batch-size", type=int, help="the profile's batch size changed (tag gains -bN)")
    args = parser.parse_args()
    profile = config.get_profile(args.profile)
    if args.batch_size:
        profile = dataclasses.replace(profile, batch_size=args.batch_size)
        args.tag = f"{args.tag}-b{args.batch_size}"
    if not (CORPORA[args.corpus] / "questions.jsonl").is_file():
        raise SystemExit(f"No benchmark at {CORPORA[args.corpus]}: run python benchmarks/corpora/"
                         f"{BUILDERS[args.corpus]}")
    started = time.perf_counter()
    summary = run(args.corpus, profile, args.tag, args.model)
    summary["seconds"]["total"] = round(time.perf_counter() - started, 1)
    out = RUNS_DIR / f"guard-{args.tag}-{args.corpus}-{args.profile}.json"
    out.write_text(json.dumps(to_json(summary), indent=1))
    print(f"\n{summary['seconds']['total']:.0f} s ({summary['seconds']}); numbers in {out}")


if __name__ == "__main__":
    main()
