"""The no-GPU warning: said before hours of CPU training, with a time from measured speed; not for
the demo, not with a GPU."""

from __future__ import annotations

import torch

from msga import forecast
from msga.config import build_grid, load_params
from tests.conftest import REPO


def _configs(name: str) -> tuple[list[dict], dict]:
    params = load_params(REPO / name)
    grid = build_grid(params)
    return [grid.configs[r.id] for r in grid.runs], params


def test_the_full_grid_on_a_cpu_is_announced_with_its_time_and_the_demo(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(forecast, "measured_images_per_s", lambda sizes: 20.0)  # a measured speed, fixed for the test
    configs, params = _configs("params.yaml")
    warning = forecast.no_gpu_warning(configs, params)
    seconds, _ = forecast.cpu_training_seconds(configs, params["models"], 50_000)
    assert seconds > 100 * 3600  # 126 runs of 30-200 epochs at 20 images/s
    assert f"{len(configs)} training runs would train on the CPU" in warning and "msga: 20 images/s" in warning
    assert "workflow/demo.yaml" in warning and " h " in warning


def test_no_warning_for_the_demo_or_with_a_gpu(monkeypatch):
    monkeypatch.setattr(forecast, "measured_images_per_s", lambda sizes: 20.0)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert forecast.no_gpu_warning(*_configs("workflow/demo.yaml")) is None  # minutes, not hours
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert forecast.no_gpu_warning(*_configs("params.yaml")) is None
