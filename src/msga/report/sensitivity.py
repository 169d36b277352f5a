"""The report's sensitivity figures: attention heads (the paper's Figure 2), batch size and noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from IPython.display import HTML

from msga.grid.metrics import LABELS
from msga.report import inputs
from msga.report.page import esc, figure_html


def metrics_coincide(df: pd.DataFrame, a: str = "acc", b: str = "recall") -> bool:
    """Whether two metric columns are equal in every run (to float32 precision)."""
    return not df.empty and a in df and b in df and bool(np.allclose(df[a], df[b], atol=1e-6))


def _sweep_alt(df: pd.DataFrame, x: str, label: str, metrics: list[str]) -> str:
    shown = ", ".join(LABELS[m] for m in metrics)
    if df.empty:
        return f"Line chart of {shown} against {label}: no finished runs."
    metric = "acc" if "acc" in metrics else metrics[0]
    means = df.groupby(x)[metric].mean()
    return (f"Line chart of msga's {shown} (0 to 1) against {label}, at {', '.join(f'{v:g}' for v in means.index)}. "
            f"{LABELS[metric]} is highest at {means.idxmax():g} ({means.max():.3f}) and lowest at {means.idxmin():g} "
            f"({means.min():.3f}).")


def sweep_figure(reports, experiment: str) -> str:
    """One sweep's figure with its heading, what varies, its seeds and error bars, and whether
    ACC and Recall coincide in it."""
    sweep = next(s for s in inputs.context(reports)["sweeps"] if s["experiment"] == experiment)
    df = inputs.table(reports, f"plots/{experiment}.csv")
    seeds = int(df["seed"].nunique()) if not df.empty else 0
    bars = f"bars: 95% t-intervals over {seeds} seeds" if seeds > 1 else "one seed, so no error bars"
    parts = [f"msga, {sweep['label']} varied; means over seeds, {bars}."]
    if len(sweep["metrics"]) > 1 and metrics_coincide(df):
        parts.append("ACC (open squares) and Recall (dashed) coincide.")
    if not sweep["in_paper"]:
        parts.append("Not in the paper, whose abstract names this factor in words only.")
    return figure_html(reports, sweep["figure"], sweep["title"], esc(" ".join(parts)),
                   _sweep_alt(df, sweep["x"], sweep["label"], sweep["metrics"]))


def sweeps(reports: str | Path) -> HTML:
    ctx = inputs.context(reports)
    return inputs.section("sweeps", "".join(sweep_figure(reports, s["experiment"]) for s in ctx["sweeps"]))
