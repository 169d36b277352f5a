"""The grid's wall time on one device, projected from measured figures: each run's training steps
at its model's and batch size's measured speed, its per-epoch evaluations at the measured
evaluation speed, and the per-job start-up. Torch-free arithmetic."""

from __future__ import annotations

from msga.data.format import NUM_CLASSES
from msga.grid.recipe import held_out
from msga.grid.resolve import Grid


def run_seconds(config: dict, train_ips: float, eval_ips: float, startup: float, n_train: int, n_test: int) -> float:
    epochs = config["train"]["epochs"]
    fit = n_train - NUM_CLASSES * held_out(n_train // NUM_CLASSES) if config["train"]["validation"] else n_train
    steps = fit // config["train"]["batch_size"] * config["train"]["batch_size"]  # full batches only
    return epochs * (steps / train_ips + n_test / eval_ips) + startup


def project(grid: Grid, train_ips: dict, eval_ips: dict, startup: float, n_train: int, n_test: int) -> dict:
    """Minutes per experiment (a shared run counted in each) and in all (each run once), one run
    at a time. train_ips: (model, batch size) -> images/s; eval_ips: model -> images/s."""
    seconds = {r.id: run_seconds(grid.configs[r.id], train_ips[(r.model, grid.configs[r.id]["train"]["batch_size"])],
                                 eval_ips[r.model], startup, n_train, n_test) for r in grid.runs}
    per_experiment = {exp: sum(seconds[r.id] for r in dict.fromkeys(runs)) / 60 for exp, runs in grid.experiments.items()}
    return {"projected_minutes": sum(seconds.values()) / 60, "per_experiment_minutes": per_experiment,
            "runs": len(seconds)}


def needed(grid: Grid) -> set[tuple[str, int]]:
    """The (model, batch size) pairs whose training speed the projection needs."""
    return {(r.model, grid.configs[r.id]["train"]["batch_size"]) for r in grid.runs}
