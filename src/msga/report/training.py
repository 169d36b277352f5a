"""The report on training: the tuned learning rates, msga per class, the training curves."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from IPython.display import HTML

from msga.report import inputs
from msga.report.page import (
    esc, figure_html, figure_with_finding, fmt_flops, fmt_params, html_table, is_missing, nowrap,
)


def tune_summary(reports) -> pd.DataFrame:
    """Per tuned model: the winning learning rate, the one Table 1 trained with, and whether they agree."""
    tried = inputs.table(reports, "tune.csv")
    if tried.empty:
        return pd.DataFrame(columns=["model", "best_lr", "table1_lr", "agrees"])
    best = tried[tried["best"].astype(bool)].set_index("model")
    out = pd.DataFrame({"model": best.index, "best_lr": best["lr"].values, "table1_lr": best["table1_lr"].values})
    out["agrees"] = [not is_missing(t) and math.isclose(b, t, rel_tol=1e-9) for b, t in zip(out["best_lr"], out["table1_lr"])]
    return out


def inherited_text(inherited: list[dict]) -> tuple[str, list[str]]:
    """(which untuned models train at which tuned model's winner, and those whose runs did not)."""
    by_source: dict[str, list[str]] = {}
    for r in inherited:
        by_source.setdefault(r["source"], []).append(r["model"])
    listed = "; ".join(f"{', '.join(models)} at {source}'s" for source, models in by_source.items())
    text = (f"Not tuned themselves, these models train at the winner of the model they are a control or another "
            f"size of, with the same recipe: {listed}. A control tuned on its own would differ from msga in its "
            "learning rate too; a larger baseline's own best rate may differ from its Table 1 twin's, which the "
            "grid does not test." if inherited else "")
    off = [f"{r['model']} (winner {r['winner']:g}, trained "
           f"{'not yet' if r['trained'] is None else format(r['trained'], 'g')})"
           for r in inherited if r["trained"] is None or not math.isclose(r["winner"], r["trained"], rel_tol=1e-9)]
    return text, off


def tune(reports: str | Path) -> HTML:
    df = inputs.table(reports, "tune.csv")
    if df.empty:
        return inputs.unfinished("tune")
    rates = sorted(df["lr"].unique())
    summary = tune_summary(reports).set_index("model")
    rows = []
    for model, group in df.groupby("model", sort=False):
        by_lr = group.set_index("lr")
        cells = [f"<b>{esc(model)}</b>"]
        for lr in rates:
            if lr not in by_lr.index:
                cells.append("")
                continue
            r = by_lr.loc[lr]
            star = " ★" if bool(r["best"]) else ""
            cells.append(nowrap(f"{'<b>' if star else ''}{r['val_acc_mean']:.3f}{star}{'</b>' if star else ''}"))
        used = summary.loc[model]
        cells += [f"{used['table1_lr']:g}" if not is_missing(used["table1_lr"]) else "not run",
                  "yes" if used["agrees"] else "<span class='under'>no</span>",
                  nowrap(fmt_params(group["params"].iloc[0])), nowrap(fmt_flops(group["flops_per_image"].iloc[0]))]
        rows.append(cells)
    table = html_table(["Model", *(f"lr {lr:g}" for lr in rates), "Table 1 trained with", "The winner?", "Params",
                        "FLOPs / image"], rows, numeric=(*range(1, len(rates) + 2), len(rates) + 3, len(rates) + 4))
    heirs, heirs_off = inherited_text(inputs.context(reports).get("lr_inherited", []))
    off = summary[~summary["agrees"]]
    names = [f"{m} (winner {r['best_lr']:g}, Table 1 "
             f"{'not run yet' if is_missing(r['table1_lr']) else format(r['table1_lr'], 'g')})"
             for m, r in off.iterrows()] + heirs_off
    advice = ""
    if names:
        advice = (f"<p class='warning'>Not trained at its winning learning rate: {esc(', '.join(names))}. Run "
                  "<code>msga tune --apply</code> (it writes each winner, and each inherited one, into "
                  "<code>train.per_model</code> of params.yaml; review and commit it), then "
                  "<code>snakemake --cores all --resources gpu=1</code> to retrain the runs that change.</p>")
    return inputs.section("tune", table + (f"<p>{esc(heirs)}</p>" if heirs else "") + advice)


def confused_pairs(shares: pd.DataFrame, top: int = 5) -> list[tuple[str, str, float]]:
    """The largest off-diagonal shares: (true class, predicted class, share of the true class)."""
    if shares.empty or len(shares.columns) < 2:
        return []
    matrix = shares.drop(columns="true_class").to_numpy(dtype=float).copy()
    np.fill_diagonal(matrix, 0)
    flat = np.argsort(matrix, axis=None)[::-1][:top]
    names = list(shares["true_class"])
    return [(names[i], names[j], float(matrix[i, j])) for i, j in zip(*np.unravel_index(flat, matrix.shape))
            if matrix[i, j] > 0]


def _seeds_text(n: int) -> str:
    return f"{n} seed{'s' if n != 1 else ''}"


def _recall_figure(reports, df: pd.DataFrame) -> str:
    """msga's recall per class, sorted, with its hardest and easiest classes named."""
    seeds = int(df["n_seeds"].max())
    band = "the band is the range over its seeds" if seeds > 1 else "one seed, so no band"
    recall = df["recall_mean"]
    hardest = ", ".join(f"{r['class_name']} {r['recall_mean']:.2f}" for r in df.head(5).to_dict("records"))
    easiest = ", ".join(f"{r['class_name']} {r['recall_mean']:.2f}" for r in df.tail(5)[::-1].to_dict("records"))
    return figure_with_finding(
        reports, "per_class_recall.png", "Figure: msga's recall per class",
        caption=f"Classes sorted by recall (mean over {_seeds_text(seeds)}); {band}; the dashed line is the mean over "
                "classes, which equals ACC on a class-balanced test set.",
        alt=f"Step chart of msga's recall for each of its {len(df)} classes, sorted from lowest to highest on a 0 to 1 "
            f"axis: from {recall.min():.2f} to {recall.max():.2f}, mean {recall.mean():.3f}.",
        finding=f"<b>Hardest classes</b> (recall): {esc(hardest)}.<br><b>Easiest</b>: {esc(easiest)}.")


def _confusion_figure(reports, shares: pd.DataFrame, seeds: int) -> str:
    """msga's confusion matrix, with the pairs of classes it confuses most named."""
    pairs = "; ".join(f"{t} → {p} ({s:.0%})" for t, p, s in confused_pairs(shares)) or "none"
    diagonal = float(np.mean(np.diag(shares.drop(columns="true_class").to_numpy(dtype=float))))
    return figure_with_finding(
        reports, "confusion.png", "Figure: msga's confusion matrix",
        caption=f"Summed over {_seeds_text(seeds)}, each row divided by its total; classes by index; a square-root "
                "colour scale so that confusions of a few percent show.",
        alt=f"Heat map of msga's {len(shares)} by {len(shares)} confusion matrix, true class down, predicted class "
            f"across, each row as shares of that class's test images. Mean diagonal share {diagonal:.3f}. Largest "
            f"confusions: {pairs}.",
        finding=f"<b>Most confused</b> (true → predicted, share of the true class): {esc(pairs)}.")


def per_class(reports: str | Path) -> HTML:
    df, shares = inputs.table(reports, "plots/per_class_recall.csv"), inputs.table(reports, "plots/confusion.csv")
    if df.empty:
        return inputs.unfinished("per-class")
    return inputs.section("per-class", _recall_figure(reports, df)
                    + _confusion_figure(reports, shares, int(df["n_seeds"].max())))


def curves(reports: str | Path) -> HTML:
    df, t1 = inputs.table(reports, "plots/curves.csv"), inputs.table(reports, "table1.csv")
    part = df[df["model"].isin(t1["model"])] if not df.empty else df
    if part.empty:
        return inputs.unfinished("curves")
    seeds = int(part.groupby("model")["seed"].nunique().max())
    last = part[part["epoch"] == part.groupby("model")["epoch"].transform("max")]
    final = last.groupby("model")["test_acc"].mean()
    alt = (f"Two line charts over {int(part['epoch'].max())} epochs for the {part['model'].nunique()} models of Table "
           "1: training loss, and test accuracy. Final test ACC: "
           + ", ".join(f"{m} {v:.3f}" for m, v in final.items()) + ".")
    band = f"bands: the range over {seeds} seeds" if seeds > 1 else "one seed, so no bands"
    caption = esc(f"Table 1's models, per epoch: training loss (cross-entropy with the recipe's label smoothing, on "
                   f"augmented images) and test ACC; lines are means over seeds, {band}.")
    return inputs.section("curves", figure_html(reports, "curves.png", "Figure: training curves", caption, alt))
