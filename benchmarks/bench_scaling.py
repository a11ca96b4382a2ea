"""How the main job's cost grows with the corpus: per-stage seconds, peak memory and encodings per model.

    python benchmarks/bench_scaling.py [--corpora sample pg250 pg1000 m2500 m10000] [--profile smoke]
                                       [--runs-dir DIR] [--reuse] [--extrapolate PAGES]
                                       [--plot docs/images/scaling.png]

Corpora are registered by name: ``sample`` (the kit's), ``pg250`` and ``pg1000`` (the PostgreSQL manual,
``benchmarks/corpora/build_manual.py``), and slices of the 10,000-page ``manuals-10000``
(``benchmarks/corpora/build_manuals.py``): ``m250`` (252 pages and 939 chunks, as ``pg250``), ``m1000`` (the
files of ``pg1000``), ``m2500``, ``m5000`` and ``m10000`` are its first PDFs, in order, up to that many
pages, linked into a folder beside the runs.

Each corpus gets one ``python -m helpers run --pdfs <corpus> --profile smoke`` in its own process (peak
memory is that process' maximum resident set size). Per-stage seconds come from the stage records
(``runs/<run>/stages/*.json``), encodings per model from the run's embedding store
(``runs/<run>/embeddings``: texts encoded into each model's file against the texts it holds, 1.00 when
no chunk was encoded twice). The log-log plot of seconds against pages carries the fitted slope per stage
(1: linear growth). ``--reuse`` reads runs already in ``--runs-dir`` instead of running them again (a run
made by another version of the kit, e.g. main's, is read the same way). Timings are printed, never
asserted; the load average before and after each run is printed beside it. ``--extrapolate PAGES``
adds a column: each stage's seconds at PAGES from its slope, through the largest corpus measured.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCH = Path(os.environ.get("KIT_BENCH_DIR", REPO / "data" / "downloads" / "bench"))  # builders write here
CORPORA = {"sample": REPO / "data" / "sample", "pg250": BENCH / "pg15-manual-250",
           "pg1000": BENCH / "pg15-manual-1000"}
MANUALS = BENCH / "manuals-10000"
# the first PDFs of MANUALS, up to that many pages
SLICES = {"m250": 250, "m1000": 1000, "m2500": 2500, "m5000": 5000, "m10000": 10000}
STAGES = ["chunk", "questions", "train", "evaluate", "rag"]


def corpus_folder(name: str, work_dir: Path) -> Path:
    """The folder of PDFs of the corpus ``name``: a registered folder, or a slice of MANUALS."""
    if name in CORPORA:
        return CORPORA[name]
    return slice_of(MANUALS, SLICES[name], work_dir / f"corpus-{name}")


def slice_of(folder: Path, pages: int, out: Path) -> Path:
    """Link ``folder``'s first PDFs (its manifest's order) into ``out`` until they hold ``pages`` pages."""
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        raise SystemExit(f"{folder} is missing: python benchmarks/corpora/build_manuals.py --pages 10000")
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    total = 0
    for entry in json.loads(manifest.read_text())["files"]:
        if total >= pages:
            break
        (out / entry["file"]).symlink_to(folder / entry["file"])
        total += entry["pages"]
    if total < pages:
        raise SystemExit(f"{folder} holds {total} pages, fewer than {pages}")
    return out


def pages(folder: Path) -> int:
    """Pages of every PDF in ``folder`` (poppler's ``pdfinfo``)."""
    total = 0
    for pdf in sorted(folder.glob("*.pdf")):
        info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
        total += int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))
    return total


def run_job(corpus: Path, runs_dir: Path, run: str, profile: str, stage: str = "run") -> dict:
    """One main job (or one ``stage`` of it) on a fresh run, in its own process: wall seconds and peak RSS
    (MB) in ``<run>.job.json``; its log goes beside the run."""
    shutil.rmtree(runs_dir / run, ignore_errors=True)  # a fresh run: no stage records, no stored vectors
    job = run_process(corpus, runs_dir, run, profile, stage)
    (runs_dir / f"{run}.job.json").write_text(json.dumps(job))
    return job


def run_stages(corpus: Path, runs_dir: Path, run: str, profile: str) -> dict:
    """The main job one stage per process, so that each stage's peak memory is its own: ``<run>.stages.json``
    maps stage to wall seconds and peak MB. Stages recorded there already are not run again (the kit's
    own stage records make the next stage resume from the last finished one)."""
    record = runs_dir / f"{run}.stages.json"
    done = json.loads(record.read_text()) if record.is_file() else {}
    for stage in STAGES:
        if stage not in done:
            stage_record = runs_dir / run / "stages" / f"{stage}.json"
            before = stage_record.stat().st_mtime if stage_record.is_file() else None
            job = run_process(corpus, runs_dir, run, profile, stage, log_mode="a")
            done[stage] = job if stage_record.stat().st_mtime != before else {"skipped": True}
            record.write_text(json.dumps(done, indent=1))
    return done


def run_process(corpus: Path, runs_dir: Path, run: str, profile: str, stage: str, log_mode: str = "w"
                ) -> dict:
    """``python -m helpers <stage>`` on ``run``: wall seconds, peak RSS (MB) and the load around it."""
    command = [sys.executable, "-m", "helpers", stage, "--pdfs", str(corpus), "--profile", profile,
               "--runs-dir", str(runs_dir), "--run", run]
    runs_dir.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    with open(runs_dir / f"{run}.log", log_mode) as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                                env=os.environ | {"TQDM_DISABLE": "1", "MPLBACKEND": "Agg"})
        _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise SystemExit(f"{run} failed: see {runs_dir / f'{run}.log'}")
    return {"wall_s": time.perf_counter() - started, "peak_mb": usage.ru_maxrss / 1024,
            "load": f"{load_before:.1f} -> {os.getloadavg()[0]:.1f}"}


def measured(run_dir: Path) -> dict:
    """Per-stage seconds (the stages it ran), validation seconds and encodings per model file of a run."""
    def record(stage: str) -> dict:
        return json.loads((run_dir / "stages" / f"{stage}.json").read_text())

    seconds = {stage: record(stage)["seconds"] for stage in STAGES
               if (run_dir / "stages" / f"{stage}.json").is_file()}
    train = record("train")["summary"] if "train" in seconds else {}
    chunks = sum(1 for _ in (run_dir / "chunks.jsonl").open())
    store = run_dir / "embeddings"
    encodings = []
    if store.is_dir():
        from helpers.core.embeddings import EmbeddingStore

        encodings = [row for row in EmbeddingStore(store).counts() if row["kind"] == "document"]
    job_file, stages_file = (run_dir.parent / f"{run_dir.name}.{kind}.json" for kind in ("job", "stages"))
    per_stage = json.loads(stages_file.read_text()) if stages_file.is_file() else {}
    job = json.loads(job_file.read_text()) if job_file.is_file() else {}
    ran = {stage: s for stage, s in per_stage.items() if "peak_mb" in s}  # not those skipped as done
    if ran:
        first, last = ran[next(iter(ran))], ran[list(ran)[-1]]
        job = {"peak_mb": max(s["peak_mb"] for s in ran.values()),
               "load": f"{first['load'].split(' -> ')[0]} -> {last['load'].split(' -> ')[1]}"}
    return {"seconds": seconds, "validation_s": train.get("validation_seconds"), "chunks": chunks,
            "validation": train.get("validation", {}), "encodings": encodings, "job": job,
            "stage_peak_mb": {stage: s["peak_mb"] for stage, s in ran.items()}}


def stages_of(results: dict[str, dict]) -> list[str]:
    """The stages that every run has a record of, in order, and "total" (their sum)."""
    return [stage for stage in STAGES if all(stage in r["seconds"] for r in results.values())] + ["total"]


def slopes(results: dict[str, dict]) -> dict[str, float]:
    """Fitted exponent of seconds ~ pages^slope per stage (needs two corpus sizes or more)."""
    import numpy as np

    x = np.log([r["pages"] for r in results.values()])
    out = {}
    for stage in stages_of(results):
        y = np.log([max(_stage_s(r, stage), 0.1) for r in results.values()])
        out[stage] = float(np.polyfit(x, y, 1)[0]) if len(set(x)) > 1 else float("nan")
    return out


def plot(results: dict[str, dict], fitted: dict[str, float], path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    x = [r["pages"] for r in results.values()]
    for stage in stages_of(results):
        ax.loglog(x, [max(_stage_s(r, stage), 0.1) for r in results.values()], "o-",
                  label=f"{stage} (slope {fitted[stage]:.2f})", lw=2.5 if stage == "total" else 1.2)
    ax.set_xlabel("pages (log)")
    ax.set_ylabel("seconds (log)")
    ax.set_title("Main job (smoke, 2 CPU cores): seconds per stage against corpus pages")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _stage_s(result: dict, stage: str) -> float:
    return sum(result["seconds"].values()) if stage == "total" else result["seconds"][stage]


def extrapolated(results: dict[str, dict], fitted: dict[str, float], target: int) -> dict[str, float]:
    """Seconds per stage (and in total) at ``target`` pages: seconds ~ pages^slope through the largest
    corpus measured. An estimate: fixed costs flatten the slopes of small corpora."""
    largest = max(results.values(), key=lambda r: r["pages"])
    return {stage: _stage_s(largest, stage) * (target / largest["pages"]) ** fitted[stage]
            for stage in stages_of(results)}


def report(results: dict[str, dict], fitted: dict[str, float], target: int | None = None) -> None:
    names = list(results)
    estimate = extrapolated(results, fitted, target) if target else {}
    head = f"{target} est." if target else ""
    print("\n" + f"{'':<22}" + "".join(f"{n:>12}" for n in names) + f"{'slope':>9}{head:>14}")
    print(f"{'pages':<22}" + "".join(f"{results[n]['pages']:>12}" for n in names))
    print(f"{'chunks':<22}" + "".join(f"{results[n]['chunks']:>12}" for n in names))
    for stage in stages_of(results):
        guess = f"{estimate[stage]:>14.0f}" if target else ""
        print(f"{stage + ' s':<22}" + "".join(f"{_stage_s(results[n], stage):>12.1f}" for n in names)
              + f"{fitted[stage]:>9.2f}{guess}")
    def row(label: str, cell) -> None:
        print(f"{label:<22}" + "".join(cell(results[n]) for n in names))

    row("  of train: validation", lambda r: f"{r['validation_s'] or 0:>12.1f}")
    row("peak MB", lambda r: f"{r['job'].get('peak_mb', float('nan')):>12.0f}")
    for stage in STAGES:
        if any(stage in r["stage_peak_mb"] for r in results.values()):
            row(f"  peak MB, {stage}",
                lambda r, stage=stage: f"{r['stage_peak_mb'].get(stage, float('nan')):>12.0f}")
    row("load before -> after", lambda r: f"{r['job'].get('load', '?'):>12}")
    for n in names:
        rows = results[n]["encodings"]
        per_model = ", ".join(f"{r['model'][:8]}: {r['encoded'] / max(r['stored'], 1):.2f} "
                              f"({r['encoded']} of {r['stored']})" for r in rows) or "no store"
        print(f"{n}: encodings per stored passage, per model: {per_model}; validation: "
              f"{json.dumps(results[n]['validation'])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpora", nargs="+", default=list(CORPORA), choices=[*CORPORA, *SLICES])
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--runs-dir", type=Path, default=None, help="keep the runs here (default: temporary)")
    parser.add_argument("--reuse", action="store_true", help="read the runs in --runs-dir, run nothing")
    parser.add_argument("--stage", default="run", choices=["run", *STAGES],
                        help="run only this stage (its run is named <corpus>-<stage>), e.g. chunk on a "
                             "corpus too large for the whole job here")
    parser.add_argument("--per-stage", action="store_true",
                        help="one process per stage, each stage's peak memory printed; a run recorded "
                             "this way in --runs-dir continues from its last finished stage")
    parser.add_argument("--extrapolate", type=int, metavar="PAGES",
                        help="add each stage's seconds at PAGES, from its slope (an estimate)")
    parser.add_argument("--plot", type=Path, default=REPO / "docs" / "images" / "scaling.png")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        runs_dir = args.runs_dir or Path(tmp)
        results = {}
        for name in args.corpora:
            folder = corpus_folder(name, runs_dir)
            run = name if args.stage == "run" else f"{name}-{args.stage}"
            if args.per_stage and not args.reuse:
                run_stages(folder, runs_dir, run, args.profile)
            elif not args.reuse:
                run_job(folder, runs_dir, run, args.profile, args.stage)
            results[name] = measured(runs_dir / run) | {"pages": pages(folder)}
            print(f"{name}: {sum(results[name]['seconds'].values()):.0f} s", flush=True)
        fitted = slopes(results)
        report(results, fitted, args.extrapolate)
        if len(results) > 1:
            plot(results, fitted, args.plot)
            print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
