"""The projected wall time of the grid is the sum of its runs' measured costs."""

from __future__ import annotations

import pytest

from msga.grid.params import load_params
from msga.grid.resolve import build_grid
from msga.timing.projection import needed, project, run_seconds
from tests.conftest import REPO


def test_a_runs_time_is_its_epochs_of_steps_and_evaluations_plus_startup():
    config = {"train": {"epochs": 2, "batch_size": 256, "validation": False}}
    # 195 full batches of 256 = 49,920 images per epoch at 1,000 images/s; 10,000 test images at 5,000/s
    assert run_seconds(config, 1000.0, 5000.0, 7.0, 50_000, 10_000) == pytest.approx(2 * (49.92 + 2.0) + 7.0)


def test_the_projection_counts_each_run_once_and_every_pair_it_needs():
    grid = build_grid(load_params(REPO / "params.yaml"))
    pairs = needed(grid)
    assert ("msga", 32) in pairs and ("resnet18", 128) in pairs
    out = project(grid, {p: 1000.0 for p in pairs}, {m: 10_000.0 for m, _ in pairs}, 5.0, 50_000, 10_000)
    assert out["runs"] == len(grid.runs)
    assert out["projected_minutes"] < sum(out["per_experiment_minutes"].values())  # shared runs counted once
