"""Where the replication stands: each run of the grid finished, in progress (epoch n of N),
stale, damaged or missing, and a time estimate from the epoch times already measured.

Read-only: it reads run folders and Snakemake's owner record, takes no lock and starts nothing,
so it never disturbs a running DAG. Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from msga.grid.paths import RUNS_ROOT
from msga.grid.resolve import Grid
from msga.infra.folderlock import running_owner
from msga.results.runfiles import FINISHED, IN_PROGRESS, RunState, current_state


@dataclass
class Status:
    states: list[RunState]
    seconds_left: float | None  # training time still to go, one run at a time; None: nothing measured yet
    running: dict  # the Snakemake running here (its owner record), or {}


def epoch_seconds(state: RunState) -> float | None:
    """Seconds per epoch this run measured, if it measured any."""
    if state.status == FINISHED and state.metrics.get("train_seconds"):
        return state.metrics["train_seconds"] / state.metrics["config"]["train"]["epochs"]
    if state.status == IN_PROGRESS and state.progress.get("epoch"):
        return state.progress.get("seconds", 0) / state.progress["epoch"] or None
    return None


def collect(grid: Grid, runs_root: str | Path = RUNS_ROOT, folder: str | Path = ".") -> Status:
    states = [current_state(Path(runs_root), run, grid.key(run), grid.configs[run.id]) for run in grid.runs]
    per_model: dict[str, list[float]] = {}
    for state in states:
        seconds = epoch_seconds(state)
        if seconds:
            per_model.setdefault(state.run.model, []).append(seconds)
    every = [s for times in per_model.values() for s in times]
    left, known = 0.0, bool(every)
    for state in states:
        if state.status == FINISHED:
            continue
        epochs = grid.configs[state.run.id]["train"]["epochs"] - (state.progress.get("epoch", 0) or 0)
        times = per_model.get(state.run.model) or every
        if times:
            left += epochs * sum(times) / len(times)
    return Status(states, left if known else None, running_owner(folder))


def describe(seconds: float) -> str:
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours} h {rest // 60:02d} min" if hours else f"{rest // 60} min {rest % 60:02d} s"
