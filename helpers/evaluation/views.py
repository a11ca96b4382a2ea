"""Tables and plots of the evaluation, drawn from eval.json (so they can be redrawn without re-encoding)."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from helpers.core.io import save_figure
from helpers.evaluation.numbers import interval, number, p_value
from helpers.evaluation.result import EvalResult, mean, metric_tables, query_set, query_sets
from helpers.evaluation.systems import BM25, FINETUNED, HEADLINE, NO_DIM

TABLE_METRICS = (HEADLINE, "mrr@10", "recall@10", "accuracy@1")
SPEED_COLUMN = "encode sentences/s"

PRECISION_COLORS = {"float32": "tab:blue", "int8": "tab:orange", "binary": "tab:red"}
SYSTEM_STYLES = {FINETUNED: "-", "base": "--"}


def metrics_frame(report: EvalResult, name: str = "test", metrics=TABLE_METRICS):
    """Systems x dimensions (rows) by metrics (columns): "mean [low, high]" with the 95% interval, and how
    many chunks per second each model encoded on the machine that ran the evaluation."""
    import pandas as pd

    table = metric_tables(query_set(report, name))
    speed = {name: s.get("sentences_per_s", "") for name, s in report["systems"].items()}
    rows = {(system, dim): {**{m: "{mean:.3f} [{low:.3f}, {high:.3f}]".format(**values[m]) for m in metrics},
                            SPEED_COLUMN: speed.get(system, "")}
            for system, dims in table.items() for dim, values in dims.items()}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(["system", "dim"])


def paired_frame(report: EvalResult):
    """Every paired test of every query set: mean difference of ndcg@10 with its interval, p-value and the
    smallest difference the set detects (80% power)."""
    import pandas as pd

    rows = [{"query set": name, "comparison": f"{t['b']} - {t['a']}", "dim": t["dim"],
             "mean diff": number(t["mean_diff"], signed=True),
             "95% interval": interval(t["ci_low"], t["ci_high"]),
             "p-value": p_value(t["p_value"]), "queries": t["n_queries"],
             "detectable": number(t.get("detectable_diff"))}
            for name, qs in query_sets(report).items() for t in qs["paired_tests"]]
    return pd.DataFrame(rows)


def storage_frame(report: EvalResult, name: str = "test", system: str = FINETUNED):
    """Bytes per vector, compression and ndcg@10 of one system at every dimension and precision."""
    import pandas as pd

    rows = [r for r in query_set(report, name)["storage"] if r["system"] == system]
    frame = pd.DataFrame(rows).set_index(["dim", "precision"])[["bytes_per_vector", HEADLINE]]
    frame.insert(1, "times smaller", (frame["bytes_per_vector"].max() / frame["bytes_per_vector"]).round(1))
    return frame.round(4)


def by_type_frame(report: EvalResult, name: str = "gold"):
    """Mean ndcg@10 of every system per question type (gold questions carry a type)."""
    import pandas as pd

    frame = pd.DataFrame(query_set(report, name)["by_type"]).T
    return frame.astype({"n_queries": int}).round(3)


def print_worsened(report: EvalResult, name: str = "test", n: int = 3) -> None:
    """The queries fine-tuning hurt most: the relevant chunk, then each model's top results."""
    worse = query_set(report, name)["worsened"]
    print(f"{len(worse)} {name} queries got worse after fine-tuning; the worst {min(n, len(worse))}:")
    for w in worse[:n]:
        print(f"\nQ: {w['query']}   ndcg@10 {w[HEADLINE + '_base']:.3f} -> {w[HEADLINE + '_fine_tuned']:.3f}")
        for r in w["relevant"]:
            print(f"  relevant   : {r['text']}")
        for side in ("base", "fine_tuned"):
            for rank, doc in enumerate(w[f"retrieved_{side}"], 1):
                print(f"  {side:<10} {rank}{'*' if doc['relevant'] else ' '}: {doc['text']}")


def plot_metric_vs_dim(report: EvalResult, name: str = "test", metric: str = HEADLINE) -> Figure:
    """``metric`` at every dimension for every dense system (95% CI bands); BM25 as a horizontal line."""
    qs = query_set(report, name)
    fig = Figure(figsize=(7, 4.2))
    ax = fig.subplots()
    for system, table in metric_tables(qs).items():
        if system == BM25:
            bm = table[NO_DIM][metric]
            ax.axhline(bm["mean"], color="gray", linestyle=":", label=f"BM25 ({bm['mean']:.3f})")
            ax.axhspan(bm["low"], bm["high"], color="gray", alpha=0.1)
            continue
        dims = sorted(table, key=int)
        mean, low, high = ([table[d][metric][k] for d in dims] for k in ("mean", "low", "high"))
        x = [int(d) for d in dims]
        (line,) = ax.plot(x, mean, marker="o", linestyle=SYSTEM_STYLES.get(system, "-."), label=system)
        ax.fill_between(x, low, high, color=line.get_color(), alpha=0.15)
    all_dims = sorted({int(d) for t in metric_tables(qs).values() for d in t if d != NO_DIM})
    ax.set_xscale("log", base=2)
    ax.set_xticks(all_dims, [str(d) for d in all_dims])
    ax.set_xlabel("embedding dimension (Matryoshka truncation)")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} vs dimension: {name} questions ({qs['n_queries']} queries, 95% CI)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def plot_storage_vs_quality(report: EvalResult, name: str = "test") -> Figure:
    """ndcg@10 against bytes per vector for float32, int8 and binary indexes at every dimension."""
    qs = query_set(report, name)
    fig = Figure(figsize=(7, 4.2))
    ax = fig.subplots()
    systems = sorted({row["system"] for row in qs["storage"]}, key=lambda s: s != FINETUNED)
    for system in systems:
        for precision, color in PRECISION_COLORS.items():
            rows = sorted((r for r in qs["storage"] if r["system"] == system and r["precision"] == precision),
                          key=lambda r: r["bytes_per_vector"])
            ax.plot([r["bytes_per_vector"] for r in rows], [r[HEADLINE] for r in rows], marker="o",
                    color=color, linestyle=SYSTEM_STYLES.get(system, "-."), label=f"{system}, {precision}",
                    alpha=1.0 if system == FINETUNED else 0.5)
            if system == FINETUNED:
                for r in rows:
                    ax.annotate(str(r["dim"]), (r["bytes_per_vector"], r[HEADLINE]), fontsize=7,
                                textcoords="offset points", xytext=(3, 3))
    if (bm25 := mean(qs, BM25)) is not None:
        ax.axhline(bm25, color="gray", linestyle=":", label="BM25")
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xlabel("bytes per vector (log scale; labels: dimension)")
    ax.set_ylabel(HEADLINE)
    ax.set_title(f"Storage vs quality: {name} questions")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def save_plots(report: EvalResult, plots_dir: Path | str) -> list[Path]:
    """Both plots for every query set, as PNGs in ``plots_dir``."""
    plots_dir = Path(plots_dir)
    plots_dir.mkdir(parents=True, exist_ok=True)
    saved = []
    for name in query_sets(report):
        for stem, draw in ((f"{HEADLINE.replace('@', '_at_')}_vs_dim", plot_metric_vs_dim),
                           ("storage_vs_quality", plot_storage_vs_quality)):
            path = plots_dir / f"{stem}_{name}.png"
            save_figure(draw(report, name), path)
            saved.append(path)
    return saved
