"""The no-GPU warning: said before hours of CPU training, with a time from measured speed; not for
the demo, not with a GPU."""

from __future__ import annotations

import pytest
import torch

from msga.grid.params import load_params
from msga.grid.resolve import build_grid
from msga.timing import forecast
from tests.conftest import REPO


def _cpu_of_10_gflops(sizes: dict) -> float:
    """A fixed stand-in for the measured speed: a CPU doing 10 GFLOP/s of training (3x forward)."""
    from msga.models import build_model
    from msga.models.cost import forward_flops

    return 1e10 / (3 * forward_flops(build_model("msga", **sizes)))


def _configs(name: str, experiment: str | None = None) -> tuple[list[dict], dict]:
    params = load_params(REPO / name)
    grid = build_grid(params)
    runs = grid.experiments[experiment] if experiment else grid.runs
    return [grid.configs[r.id] for r in runs], params


def test_the_full_grid_on_a_cpu_is_announced_with_its_time_and_the_demo(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(forecast, "measured_images_per_s", _cpu_of_10_gflops)
    configs, params = _configs("params.yaml", "table1")
    warning = forecast.no_gpu_warning(configs, params)
    seconds, speed = forecast.cpu_training_seconds(configs, params["models"], 50_000)
    assert seconds > 10 * 3600  # 15 runs of 30 epochs at a few images/s
    assert f"{len(configs)} training runs would train on the CPU" in warning and f"msga: {speed:.0f} images/s" in warning
    assert "workflow/demo.yaml" in warning and " h " in warning


def test_no_warning_for_the_demo_or_with_a_gpu(monkeypatch):
    monkeypatch.setattr(forecast, "measured_images_per_s", _cpu_of_10_gflops)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert forecast.no_gpu_warning(*_configs("workflow/demo.yaml")) is None  # minutes, not hours
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert forecast.no_gpu_warning(*_configs("params.yaml", "table1")) is None


def test_no_warning_and_no_measurement_when_the_jobs_go_to_a_cluster(monkeypatch):
    """With a cluster's executor (workflow.local_exec is False) the jobs train on its GPU nodes: a
    login node without a GPU says nothing about them, and no model is built to measure it."""
    def measured(*args):
        raise AssertionError("measured the speed of a machine the jobs do not run on")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(forecast, "cpu_training_seconds", measured)
    assert forecast.no_gpu_warning(*_configs("params.yaml", "table1"), local=False) is None
    with pytest.raises(AssertionError, match="measured the speed"):
        forecast.no_gpu_warning(*_configs("params.yaml", "table1"))  # locally, the same runs are measured
