"""Every path and file name the workflow writes or reads, named once: the DAG declares them, the
jobs write them, the DVC stages version them, aggregation and the report read them. Imports
nothing of msga, so that what imports it (a training job, every step) depends on these names
alone. Torch-free."""

from __future__ import annotations

# ---------------------------------------------------------------- inputs of the workflow

PARAMS = "params.yaml"
PAPER_TABLE = "workflow/resources/paper_table1.csv"  # the paper's reported numbers, as data
NOTEBOOK = "workflow/notebooks/replication.ipynb"  # the report's papermill template

# ---------------------------------------------------------------- data

ARCHIVES = "data/archives"  # ARCHIVES/<archive>.tar.gz and its .md5: named by content
WORK = "data/work"  # WORK/<dataset id>/: the verification record and the extracted pickles (temporary)
PACKED = "data/packed"  # PACKED/<dataset id>.pt: the tensors every run trains on

# ---------------------------------------------------------------- runs

RUNS_ROOT = "results/runs"
ID_PATTERN = "{model}/{variant}/seed{seed}"  # a run's id; with these names, Snakemake's wildcards of its paths
RUN_PATTERN = f"{RUNS_ROOT}/{ID_PATTERN}/{{key}}"  # a run's folder, as Snakemake wildcards
GRIDS = "results/grids"  # GRIDS/<key>.json: the resolved grid the aggregation reads
COSTS = "results/costs"  # COSTS/<model>-<key>.json: a model's counted parameters and FLOPs (msga.train.costs)
# In a run's folder. The job writes the first three at its end, metrics.json last (its presence
# means the run finished); the DAG writes config.json before it starts; progress.json and the
# checkpoint live while it trains.
METRICS = "metrics.json"
HISTORY = "history.jsonl"
PREDICTIONS = "predictions.npz"
RUN_OUTPUTS = (METRICS, HISTORY, PREDICTIONS)
RUN_CONFIG = "config.json"
PROGRESS = "progress.json"  # written by the training job after every epoch
CHECKPOINT = "checkpoint.pt"
TRAINING_LOCK = ".training.lock"


def run_folder(run_id: str, key: str, root: str = RUNS_ROOT) -> str:
    """The folder of run `run_id` trained with the configuration and code that `key` names."""
    return f"{root}/{run_id}/{key}"


# ---------------------------------------------------------------- aggregation and report

REPORTS = "reports"
STAMPS = f"{REPORTS}/stamps"  # stamps/aggregate/KEY, stamps/report/KEY: what the outputs were made from
TABLES = ("table1.csv", "compute_matched.csv", "ablation.csv", "anchor.csv", "costs.csv", "claims.csv",
          "consistency.csv", "tune.csv", "runs.csv", "problems.csv")
FIXED_PLOT_DATA = ("plots/curves.csv", "plots/per_class_recall.csv", "plots/confusion.csv")
FIXED_FIGURES = ("table1.png", "cost_accuracy.png", "ablation.png", "per_class_recall.png", "confusion.png",
                 "curves.png", "auc_vs_acc.png")
SUMMARY = ("metrics.json", "context.json", "grid.json")  # DVC metrics; what the report needs; the grid aggregated
REPORT = (f"{REPORTS}/replication.ipynb", f"{REPORTS}/replication.html")


def sweep_data(experiment: str) -> str:
    """The data of a sweep's figure, under reports/."""
    return f"plots/{experiment}.csv"


def aggregate_files(sweeps) -> tuple[str, ...]:
    """What the aggregation writes under reports/, given the sweeps (msga.grid.experiments.SWEEPS)."""
    plot_data = (*(sweep_data(exp) for exp in sweeps), *FIXED_PLOT_DATA)
    figures = (*FIXED_FIGURES, *(s.figure for s in sweeps.values()))
    return (*TABLES, *plot_data, *(f"figures/{f}" for f in figures), *SUMMARY)


def aggregate_outputs(sweeps) -> list[str]:
    return [f"{REPORTS}/{name}" for name in aggregate_files(sweeps)]
