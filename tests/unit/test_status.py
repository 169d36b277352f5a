"""msga status: each run's state from its folder, a time estimate from measured epochs, read-only."""

from __future__ import annotations

import json
from pathlib import Path

from msga.cli import main
from msga.grid.params import load_params
from msga.grid.resolve import build_grid
from tests.conftest import REPO

DEMO = str(REPO / "workflow" / "demo.yaml")


def _finished(folder, config, seconds_per_epoch):
    folder.mkdir(parents=True)
    epochs = config["train"]["epochs"]
    metrics = {"run": config["run"], "config": config, "auc": 0.9, "acc": 0.5, "precision": 0.5, "recall": 0.5,
               "top5": 0.8, "train_seconds": seconds_per_epoch * epochs}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    (folder / "history.jsonl").write_text("".join(json.dumps(
        {"epoch": e, "train_loss": 1.0, "train_acc": 0.5, "test_acc": 0.5, "lr": 0.001, "seconds": seconds_per_epoch}) + "\n"
        for e in range(1, epochs + 1)))


def test_status_names_each_state_and_estimates_the_time_left(tmp_path, capsys):
    grid = build_grid(load_params(DEMO))
    runs = tmp_path / "runs"
    configs = grid.configs
    folder = {r.id: Path(grid.folder(r, str(runs))) for r in grid.runs}
    _finished(folder["msga/base/seed0"], configs["msga/base/seed0"], seconds_per_epoch=10)
    stale = dict(configs["convnext/base/seed0"], train={**configs["convnext/base/seed0"]["train"], "epochs": 9})
    _finished(runs / "convnext" / "base" / "seed0" / "0123456789ab", stale, seconds_per_epoch=4)  # an older key
    progress = folder["msga/heads=1/seed0"]
    progress.mkdir(parents=True)
    (progress / "progress.json").write_text(json.dumps({"epoch": 1, "epochs": 3, "seconds": 12.0}))
    before = sorted(p for p in tmp_path.rglob("*"))

    assert main(["status", "--params", DEMO, "--runs", str(runs)]) == 0
    out = capsys.readouterr().out
    total = len(grid.runs)
    assert "1 finished" in out and "1 stale" in out and "1 in progress" in out and f"of {total} runs" in out
    assert "msga/heads=1/seed0: epoch 1 of 3 done" in out and "train.epochs: 9 -> 3" in out
    # msga's measured 10 and 12 s per epoch: 11 s; every other model, no measurement of its own: the mean
    msga_left = sum(3 for r in grid.runs if r.model == "msga") - 3 - 1  # the finished one, and 1 epoch done
    others = sum(3 for r in grid.runs if r.model != "msga")
    expected = msga_left * 11 + others * 11  # the stale convnext measured nothing current: its time is not used
    assert "training left: about" in out
    minutes, seconds = divmod(expected, 60)
    assert f"about {minutes} min {seconds:02d} s" in out, out
    assert sorted(p for p in tmp_path.rglob("*")) == before  # read-only
