"""The files the aggregation writes under reports/, named once: the DAG declares them, the DVC
stages version them, the report reads them. Torch-free."""

from __future__ import annotations

from msga.experiments import SWEEPS

REPORTS = "reports"
STAMPS = f"{REPORTS}/stamps"  # stamps/aggregate/KEY, stamps/report/KEY: what the outputs were made from
TABLES = ("table1.csv", "compute_matched.csv", "ablation.csv", "anchor.csv", "costs.csv", "claims.csv",
          "consistency.csv", "tune.csv", "runs.csv", "problems.csv")
PLOT_DATA = (*(f"plots/{exp}.csv" for exp in SWEEPS), "plots/curves.csv", "plots/per_class_recall.csv",
             "plots/confusion.csv")
FIGURES = ("table1.png", "cost_accuracy.png", *(s.figure for s in SWEEPS.values()), "ablation.png",
           "per_class_recall.png", "confusion.png", "curves.png", "auc_vs_acc.png")
SUMMARY = ("metrics.json", "context.json", "grid.json")  # DVC metrics; what the report needs; the grid aggregated


def aggregate_outputs() -> list[str]:
    return [f"{REPORTS}/{name}" for name in (*TABLES, *PLOT_DATA, *(f"figures/{f}" for f in FIGURES), *SUMMARY)]
