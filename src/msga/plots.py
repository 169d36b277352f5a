"""Figures from the aggregated tables (seaborn): means over seeds; error bars are +-1 standard
deviation over seeds, and every figure says so."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from msga.experiments import SWEEPS  # noqa: E402
from msga.metrics import HEADLINE, LABELS  # noqa: E402
from msga.io import atomic_output  # noqa: E402



ERROR_BARS = "error bars: +-1 standard deviation over seeds (none with a single seed)"


def _save(fig, path: Path) -> None:
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=130, bbox_inches="tight")
    plt.close(fig)


def _empty(path: Path, title: str) -> None:
    fig, ax = plt.subplots(figsize=(5, 2))
    ax.text(0.5, 0.5, f"{title}:\nno finished runs yet", ha="center", va="center")
    ax.axis("off")
    _save(fig, path)


def table1_bars(t1: pd.DataFrame, path: Path) -> None:
    if "acc_mean" not in t1 or t1["acc_mean"].isna().all():
        return _empty(path, "Table 1")
    rows = []
    for r in t1.itertuples():
        for m in HEADLINE:
            rows.append({"model": r.model, "metric": LABELS[m], "source": "this replication", "value": getattr(r, f"{m}_mean")})
            rows.append({"model": r.model, "metric": LABELS[m], "source": "paper", "value": getattr(r, f"paper_{m}")})
    df = pd.DataFrame(rows)
    g = sns.catplot(df, x="model", y="value", hue="source", col="metric", kind="bar", height=3, aspect=1.1, col_wrap=2)
    for ax in g.axes.flat:
        ax.tick_params(axis="x", labelrotation=30, labelbottom=True)
    g.figure.suptitle("Table 1: this replication vs the paper", y=1.02)
    _save(g.figure, path)


def sweep_plot(df: pd.DataFrame, x: str, metrics: list[str], title: str, path: Path, log_x: bool = False,
               label: str = "") -> None:
    if df.empty:
        return _empty(path, title)
    long = df.melt(id_vars=[x, "seed"], value_vars=metrics, var_name="metric", value_name="value")
    long["metric"] = long["metric"].map(LABELS)
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    sns.lineplot(long, x=x, y="value", hue="metric", marker="o", errorbar="sd", err_style="bars", ax=ax)
    if log_x:
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(df[x].unique()), labels=[str(v) for v in sorted(df[x].unique())])
    else:
        ax.set_xticks(sorted(df[x].unique()))
    ax.set_title(title)
    ax.set_xlabel(label or x)
    ax.set_ylabel("metric (mean over seeds)")
    ax.grid(alpha=0.3)
    fig.text(0.01, -0.02, ERROR_BARS, fontsize=8, ha="left", va="top")
    _save(fig, path)


def curves_plot(curves: pd.DataFrame, path: Path) -> None:
    if curves.empty or "test_acc" not in curves:
        return _empty(path, "Training curves")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    sns.lineplot(curves, x="epoch", y="train_loss", hue="model", errorbar="sd", ax=axes[0])
    sns.lineplot(curves, x="epoch", y="test_acc", hue="model", errorbar="sd", ax=axes[1], legend=False)
    axes[0].set_title("training loss")
    axes[1].set_title("test accuracy")
    for ax in axes:
        ax.grid(alpha=0.3)
    _save(fig, path)


def ablation_plot(abl: pd.DataFrame, path: Path) -> None:
    if abl.empty or "acc_mean" not in abl:
        return _empty(path, "Ablation")
    rows = [{"model": r.model, "metric": LABELS[m], "value": getattr(r, f"{m}_mean")} for r in abl.itertuples() for m in HEADLINE]
    fig, ax = plt.subplots(figsize=(6, 3.4))
    sns.barplot(pd.DataFrame(rows), x="metric", y="value", hue="model", ax=ax)
    ax.set_ylim(0, 1)  # a truncated axis would magnify small differences
    ax.set_title("Ablation: both parts vs each alone (mean over seeds)")
    _save(fig, path)


def auc_vs_acc(runs: pd.DataFrame, paper: pd.DataFrame, path: Path) -> None:
    """Every finished run's (ACC, AUC) beside the paper's five rows: how AUC goes with ACC here."""
    fig, ax = plt.subplots(figsize=(5.5, 4))
    if not runs.empty:
        ours = runs.drop_duplicates(subset=["model", "variant", "seed"])
        sns.scatterplot(ours, x="acc", y="auc", hue="model", ax=ax, s=30)
    ax.scatter(paper["acc"], paper["auc"], marker="*", s=160, color="black", label="the paper's Table 1")
    ax.set_xlim(0, 1)
    ax.set_ylim(0.5, 1)
    ax.set_xlabel("ACC (top-1)")
    ax.set_ylabel("AUC (macro one-vs-rest)")
    ax.set_title("AUC against ACC: every run of this replication, and the paper")
    ax.legend(fontsize=7, loc="lower right")
    ax.grid(alpha=0.3)
    _save(fig, path)


def draw_all(frames: dict, folder: Path, paper: pd.DataFrame) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    table1_bars(frames["table1.csv"], folder / "table1.png")
    for exp, sweep in SWEEPS.items():
        sweep_plot(frames[f"plots/{exp}.csv"], sweep.x, list(sweep.metrics), sweep.title, folder / sweep.figure,
                   log_x=sweep.x == "batch_size", label=sweep.label)
    curves_plot(frames["plots/curves.csv"], folder / "curves.png")
    ablation_plot(frames["ablation.csv"], folder / "ablation.png")
    auc_vs_acc(frames["runs.csv"], paper, folder / "auc_vs_acc.png")
