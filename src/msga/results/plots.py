"""Figures from the aggregated tables (matplotlib, seaborn's style).

Every figure shows means over seeds; where it has error bars they are the 95% t-interval of the
mean over seeds (the same interval the tables give), and a figure from one seed has none. The
report gives each figure its heading, caption and alt text, so the images carry no titles of
their own.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from msga.grid.experiments import SWEEPS  # noqa: E402
from msga.grid.metrics import HEADLINE, LABELS  # noqa: E402
from msga.grid.paths import sweep_data  # noqa: E402
from msga.infra.atomic import atomic_output  # noqa: E402
from msga.results.stats import ci95  # noqa: E402

sns.set_theme(style="whitegrid", context="notebook", font_scale=0.95)

# One look per metric. ACC and Recall are equal on a class-balanced test set, so their lines lie
# on each other: ACC is drawn as large open squares under a dashed Recall line with small dots,
# and both stay visible.
METRIC_STYLE = {
    "auc": {"color": "#4c72b0", "marker": "o", "linestyle": "-", "markersize": 6, "zorder": 3},
    "acc": {"color": "#dd8452", "marker": "s", "linestyle": "-", "markersize": 11, "markerfacecolor": "none",
            "markeredgewidth": 1.6, "linewidth": 3.0, "alpha": 0.75, "zorder": 2},
    "precision": {"color": "#55a868", "marker": "^", "linestyle": "-.", "markersize": 6, "zorder": 3},
    "recall": {"color": "#8172b3", "marker": "o", "linestyle": "--", "markersize": 4, "linewidth": 1.4, "zorder": 4},
}
OURS_COLOR, PAPER_COLOR = "#1f4e79", "#c44e52"
# A colour per architecture, in the order of the paper's Table 1 rows
ARCHITECTURE_PALETTE = ("#4c72b0", "#55a868", "#8172b3", "#937860", "#c44e52", "#64b5cd", "#ccb974")


def _save(fig, path: Path) -> None:
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=130, bbox_inches="tight")
    plt.close(fig)


def _empty(path: Path, what: str) -> None:
    fig, ax = plt.subplots(figsize=(5, 1.6))
    ax.text(0.5, 0.5, f"{what}: no finished runs yet", ha="center", va="center")
    ax.axis("off")
    _save(fig, path)


def mean_and_interval(df: pd.DataFrame, by: str, column: str) -> pd.DataFrame:
    """Per value of `by`: mean over seeds, the 95% t-interval's half-width (NaN with one seed), n."""
    grouped = df.groupby(by, sort=True)[column]
    return pd.DataFrame({"mean": grouped.mean(), "ci95": grouped.apply(ci95), "n": grouped.count()}).reset_index()


def _yerr(half_widths) -> np.ndarray | None:
    """Error bars only where an interval exists (two seeds or more)."""
    values = np.asarray(half_widths, dtype=float)
    return None if np.isnan(values).all() else np.nan_to_num(values)


def table1_dots(t1: pd.DataFrame, path: Path) -> None:
    """Four panels (one per metric): each model's mean with its 95% interval beside the paper's
    value, models down the side so no label is rotated and no title meets a tick label."""
    if "acc_mean" not in t1 or t1["acc_mean"].isna().all():
        return _empty(path, "Table 1")
    labels = list(t1["paper_row"])  # the paper's row names; the tables name our models
    y = np.arange(len(t1))[::-1]
    fig, axes = plt.subplots(2, 2, figsize=(7.6, 5.0), sharex=True, sharey=True, layout="constrained")
    for ax, m in zip(axes.flat, HEADLINE):
        ax.errorbar(t1[f"{m}_mean"], y, xerr=_yerr(t1[f"{m}_ci95"]), fmt="o", color=OURS_COLOR, capsize=3,
                    label="this replication (mean, 95% interval)")
        ax.scatter(t1[f"paper_{m}"], y, marker="D", s=36, facecolor="none", edgecolor=PAPER_COLOR, linewidth=1.5,
                   label="the paper", zorder=3)
        ax.set_title(LABELS[m], fontsize=10, loc="left", fontweight="bold")
        ax.set_xlim(0, 1.02)  # the whole scale, and room for a score of 1
        ax.set_ylim(-0.6, len(t1) - 0.4)
        ax.set_yticks(y, labels)
    for ax in axes[1]:
        ax.set_xlabel("score (fraction, 0 to 1)")
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside upper center", ncols=2, frameon=False)
    _save(fig, path)


def cost_accuracy(t1: pd.DataFrame, matched: pd.DataFrame, path: Path) -> None:
    """ACC against forward FLOPs per image and against parameters, log scales, for every model of
    Table 1 (circles) and of the compute-matched block (triangles), coloured by architecture; an
    arrow joins an architecture's two sizes."""
    frames = [f.assign(block=block) for f, block in ((t1, "parameter-matched (Table 1)"),
                                                      (matched, "compute-matched")) if not f.empty]
    both = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if both.empty or "acc_mean" not in both or both["acc_mean"].isna().all():
        return _empty(path, "Accuracy against cost")
    both = both.dropna(subset=["acc_mean", "params", "flops_per_image"])
    both = both.drop_duplicates(subset=["model"])  # the paper's own model is in both blocks: one point
    colors = dict(zip(t1["model"], ARCHITECTURE_PALETTE))
    in_table1 = both["block"].str.startswith("parameter")
    both["architecture"] = both["model"].where(in_table1, both["paper_model"] if "paper_model" in both else both["model"])
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8), sharey=True, layout="constrained")
    flops_unit, flops_name = (1e9, "GFLOPs") if both["flops_per_image"].max() >= 1e8 else (1e6, "MFLOPs")
    for ax, cost, unit in ((axes[0], "flops_per_image", flops_unit), (axes[1], "params", 1e6)):
        for r in both.itertuples():
            color = colors.get(r.architecture, "#555555")
            marker = "o" if r.block.startswith("parameter") else "^"
            ax.errorbar(getattr(r, cost) / unit, r.acc_mean, yerr=_yerr([r.acc_ci95]), fmt=marker, color=color,
                        markersize=8, capsize=3)
        for arch, group in both.groupby("architecture"):
            if len(group) == 2:
                small, large = group.sort_values("flops_per_image").to_dict("records")
                ax.annotate("", xy=(large[cost] / unit, large["acc_mean"]), xytext=(small[cost] / unit, small["acc_mean"]),
                            arrowprops={"arrowstyle": "->", "color": colors.get(arch, "#555"), "alpha": 0.6})
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1, 2, 5)))  # labels on a short range too
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # minor labels collide on a short range
        ax.set_xlabel(f"forward {flops_name} per image (log scale)" if cost == "flops_per_image"
                      else "parameters, millions (log scale)")
    axes[0].set_ylabel("ACC (top-1, fraction)")
    handles = [plt.Line2D([], [], color=c, marker="s", linestyle="", markersize=8, label=a)
               for a, c in colors.items() if a in set(both["architecture"])]
    handles += [plt.Line2D([], [], color="#555", marker="o", linestyle="", label="parameter-matched (Table 1)"),
                plt.Line2D([], [], color="#555", marker="^", linestyle="", label="compute-matched")]
    fig.legend(handles=handles, loc="outside right center", frameon=False, fontsize=8)
    _save(fig, path)


MIN_SPAN = 0.1  # a sweep's y axis spans at least this much, so a few test images' difference does not fill it


def _span_at_least(ax, span: float) -> None:
    """Widen the y axis about its middle to at least `span`, within 0 to 1."""
    low, high = ax.get_ylim()
    if high - low < span:
        middle = min(max((low + high) / 2, span / 2), 1 - span / 2)
        ax.set_ylim(middle - span / 2, middle + span / 2)


def _nudge(i: int, k: int, values: list, log_x: bool):
    """Shift metric i of k sideways by a small share of the axis, so that error bars drawn at one
    sweep value sit side by side rather than on each other."""
    step = 0.015 * (i - (k - 1) / 2)
    if log_x:
        span = np.log2(max(values) / min(values)) or 1.0
        return lambda xs: np.asarray(xs, dtype=float) * 2 ** (step * span)
    span = (max(values) - min(values)) or 1.0
    return lambda xs: np.asarray(xs, dtype=float) + step * span


def sweep_plot(df: pd.DataFrame, x: str, metrics: list[str], label: str, path: Path, log_x: bool = False) -> None:
    """The sweep's metrics against its values: means over seeds with 95% intervals."""
    if df.empty:
        return _empty(path, label)
    fig, ax = plt.subplots(figsize=(6.2, 3.3), layout="constrained")
    values = sorted(df[x].unique())
    for i, m in enumerate(metrics):
        stats_ = mean_and_interval(df, x, m)
        nudge = _nudge(i, len(metrics), values, log_x)
        ax.errorbar(nudge(stats_[x]), stats_["mean"], yerr=_yerr(stats_["ci95"]), capsize=3, elinewidth=1.2,
                    label=LABELS[m], **METRIC_STYLE[m])
    if log_x:
        ax.set_xscale("log", base=2)
    ax.set_xticks(values, labels=[f"{v:g}" for v in values])
    ax.minorticks_off()
    ax.set_xlabel(label)
    ax.set_ylabel(f"{LABELS[metrics[0]]} (fraction)" if len(metrics) == 1 else "score (fraction, 0 to 1)")
    _span_at_least(ax, MIN_SPAN)
    ax.legend(fontsize=8, ncols=len(metrics), loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    _save(fig, path)


def ablation_plot(abl: pd.DataFrame, path: Path) -> None:
    """Each ablation model's four metrics, full y axis: a truncated one would magnify small gaps."""
    if abl.empty or "acc_mean" not in abl or abl["acc_mean"].isna().all():
        return _empty(path, "Ablation")
    models = list(abl["model"])
    width = 0.8 / len(models)
    fig, ax = plt.subplots(figsize=(7.2, 3.6), layout="constrained")
    palette = sns.color_palette("deep", len(models))
    for i, r in enumerate(abl.itertuples()):
        xs = np.arange(len(HEADLINE)) + (i - (len(models) - 1) / 2) * width
        ax.bar(xs, [getattr(r, f"{m}_mean") for m in HEADLINE], width, color=palette[i], label=r.model,
               yerr=_yerr([getattr(r, f"{m}_ci95") for m in HEADLINE]), capsize=2)
    ax.set_xticks(range(len(HEADLINE)), [LABELS[m] for m in HEADLINE])
    ax.set_ylim(0, 1)
    ax.set_ylabel("score (fraction, 0 to 1)")
    ax.legend(fontsize=8, ncols=min(len(models), 5), loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    _save(fig, path)


def per_class_plot(per_class: pd.DataFrame, path: Path) -> None:
    """msga's recall per class, classes sorted from hardest to easiest, the range over seeds as a
    band and the mean (= ACC on a balanced test set) as a line."""
    if per_class.empty:
        return _empty(path, "Recall per class")
    x = np.arange(1, len(per_class) + 1)
    fig, ax = plt.subplots(figsize=(7.2, 3.2), layout="constrained")
    if int(per_class["n_seeds"].max()) > 1:
        ax.fill_between(x, per_class["recall_min"], per_class["recall_max"], color=OURS_COLOR, alpha=0.2, step="mid",
                        label="range over seeds")
    ax.step(x, per_class["recall_mean"], where="mid", color=OURS_COLOR, label="recall of the class (mean over seeds)")
    ax.axhline(per_class["recall_mean"].mean(), color=PAPER_COLOR, linestyle="--", linewidth=1,
               label="mean over classes (macro recall)")
    ax.set_xlim(0.5, len(per_class) + 0.5)
    ax.set_ylim(0, 1)
    ax.set_xlabel("classes, sorted from the lowest recall to the highest (rank)")
    ax.set_ylabel("recall of the class")
    ax.legend(fontsize=8, ncols=3, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    _save(fig, path)


def confusion_plot(shares: pd.DataFrame, path: Path) -> None:
    """The row-normalized confusion matrix as a heat map; a square root colour scale, so the
    off-diagonal confusions (a few percent each) show beside the diagonal."""
    if shares.empty or len(shares.columns) < 2:
        return _empty(path, "Confusion matrix")
    matrix = shares.drop(columns="true_class").to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(6.4, 5.6), layout="constrained")
    image = ax.imshow(matrix, cmap="viridis", norm=matplotlib.colors.PowerNorm(0.5, vmin=0, vmax=1),
                      interpolation="nearest")
    n = len(matrix)
    ticks = list(range(0, n, max(1, n // 10)))
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.set_yticks(ticks, [str(t) for t in ticks])
    ax.grid(False)
    ax.set_xlabel("predicted class (index)")
    ax.set_ylabel("true class (index)")
    bar = fig.colorbar(image, ax=ax, shrink=0.85)
    bar.set_label("share of the true class's test images (square-root scale)")
    _save(fig, path)


def curves_plot(curves: pd.DataFrame, models: list[str], path: Path) -> None:
    """Training loss and test accuracy per epoch for each model: mean over seeds as a line, the
    range over seeds as a band."""
    part = curves[curves["model"].isin(models)] if "model" in curves else curves
    if part.empty or "test_acc" not in part:
        return _empty(path, "Training curves")
    fig, axes = plt.subplots(1, 2, figsize=(9.6, 3.6), layout="constrained")
    palette = dict(zip(models, sns.color_palette("deep", len(models))))
    for model in models:
        mine = part[part["model"] == model]
        if mine.empty:
            continue
        for ax, column in zip(axes, ("train_loss", "test_acc")):
            grouped = mine.groupby("epoch")[column]
            epochs, mean = grouped.mean().index, grouped.mean().values
            ax.plot(epochs, mean, color=palette[model], label=model)
            if mine["seed"].nunique() > 1:
                ax.fill_between(epochs, grouped.min().values, grouped.max().values, color=palette[model], alpha=0.18)
    axes[0].set_ylabel("training loss (cross-entropy)")
    axes[1].set_ylabel("test ACC (top-1, fraction)")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    axes[1].legend(fontsize=8, loc="lower right")
    _save(fig, path)


def auc_vs_acc(runs: pd.DataFrame, paper: pd.DataFrame, path: Path) -> None:
    """Every finished run's (ACC, AUC) beside the paper's five rows: how AUC goes with ACC here."""
    fig, ax = plt.subplots(figsize=(6.2, 4.2), layout="constrained")
    if not runs.empty:
        ours = runs.drop_duplicates(subset=["model", "variant", "seed"])
        ax.scatter(ours["acc"], ours["auc"], s=22, color=OURS_COLOR, alpha=0.7, label="a run of this replication")
    ax.scatter(paper["acc"], paper["auc"], marker="*", s=150, color=PAPER_COLOR, label="a row of the paper's Table 1")
    ax.set_xlim(0, 1)
    ax.set_ylim(0.5, 1)
    ax.set_xlabel("ACC (top-1, fraction)")
    ax.set_ylabel("AUC (macro one-vs-rest)")
    ax.legend(fontsize=8, loc="lower right")
    _save(fig, path)


def draw_all(frames: dict, folder: Path, paper: pd.DataFrame) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    table1_dots(frames["table1.csv"], folder / "table1.png")
    cost_accuracy(frames["table1.csv"], frames["compute_matched.csv"], folder / "cost_accuracy.png")
    for exp, sweep in SWEEPS.items():
        sweep_plot(frames[sweep_data(exp)], sweep.x, list(sweep.metrics), sweep.label, folder / sweep.figure,
                   log_x=sweep.x == "batch_size")
    ablation_plot(frames["ablation.csv"], folder / "ablation.png")
    per_class_plot(frames["plots/per_class_recall.csv"], folder / "per_class_recall.png")
    confusion_plot(frames["plots/confusion.csv"], folder / "confusion.png")
    curves_plot(frames["plots/curves.csv"], list(frames["table1.csv"]["model"]), folder / "curves.png")
    auc_vs_acc(frames["runs.csv"], paper, folder / "auc_vs_acc.png")
