"""msga tune: the best learning rate per model from tune.csv, written into params with comments kept."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from msga.cli import main
from msga.grid.params import load_params
from tests.conftest import REPO


@pytest.fixture()
def tune_csv(tmp_path):
    path = tmp_path / "tune.csv"
    pd.DataFrame({"model": ["msga", "msga", "convnext", "convnext"], "lr": [1e-3, 4e-3, 1e-3, 4e-3],
                  "val_acc_mean": [0.5, 0.6, 0.7, 0.4], "val_acc_std": [0.01] * 4, "n_seeds": [1] * 4,
                  "best": [False, True, True, False], "table1_lr": [2e-3] * 4}).to_csv(path, index=False)
    return path


def test_apply_writes_each_winner_into_per_model_and_keeps_the_comments(tmp_path, tune_csv, capsys):
    params = tmp_path / "params.yaml"
    shutil.copy(REPO / "params.yaml", params)
    assert main(["tune", "--reports", str(tmp_path), "--params", str(params), "--apply"]) == 0
    assert "train.per_model.msga.lr: train.lr -> 0.004" in capsys.readouterr().out
    tuned = load_params(params)
    assert tuned["train"]["per_model"]["msga"]["lr"] == 4e-3 and tuned["train"]["per_model"]["convnext"]["lr"] == 1e-3
    assert "# peak learning rate per 256 images" in params.read_text()  # comments survive
    before = params.read_text()
    assert main(["tune", "--reports", str(tmp_path), "--params", str(params), "--apply"]) == 0
    assert params.read_text() == before and "already holds them" in capsys.readouterr().out


def test_a_winner_that_breaks_a_rule_changes_nothing(tmp_path, capsys):
    params = tmp_path / "params.yaml"
    shutil.copy(REPO / "params.yaml", params)
    pd.DataFrame({"model": ["msga"], "lr": [1e-6], "val_acc_mean": [0.5], "val_acc_std": [0.0], "n_seeds": [1],
                  "best": [True], "table1_lr": [2e-3]}).to_csv(tmp_path / "tune.csv", index=False)
    before = params.read_text()
    with pytest.raises(SystemExit) as exc:
        main(["tune", "--reports", str(tmp_path), "--params", str(params), "--apply"])
    assert exc.value.code == 2 and "min_lr (1e-05) exceeds lr (1e-06)" in capsys.readouterr().err
    assert params.read_text() == before


def test_no_tune_results_say_what_to_run(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["tune", "--reports", str(tmp_path)])
    assert exc.value.code == 2 and "run the tune experiment" in capsys.readouterr().err


CONTROLS = ("msga_local", "msga_global", "msga_single", "msga_noattn")


def test_apply_gives_the_controls_and_other_sizes_the_winner_of_their_model(tmp_path, tune_csv, capsys):
    params = tmp_path / "params.yaml"
    shutil.copy(REPO / "params.yaml", params)
    assert main(["tune", "--reports", str(tmp_path), "--params", str(params), "--apply"]) == 0
    out = capsys.readouterr().out
    assert "train.per_model.msga_single.lr: train.lr -> 0.004 (msga's winner)" in out
    per_model = load_params(params)["train"]["per_model"]
    assert {m: per_model[m]["lr"] for m in CONTROLS} == dict.fromkeys(CONTROLS, 4e-3)
    assert per_model["convnext_flops"]["lr"] == 1e-3  # its architecture's winner
    assert "lr" not in per_model.get("mlp_mixer_flops", {})  # mlp_mixer was not tuned here
    assert per_model["resnet18"]["lr"] == 0.1  # the anchor keeps its literature recipe
    # the runs of the ablation and of the compute-matched block now train at those rates
    from msga.grid.resolve import build_grid

    grid = build_grid(load_params(params))
    trained = {grid.configs[r.id]["model"]["name"]: grid.configs[r.id]["train"]["lr"]
               for e in ("ablation", "compute_matched") for r in grid.experiments[e]}
    assert trained == {**dict.fromkeys(("msga", *CONTROLS), 4e-3), "convnext_flops": 1e-3,
                       "mlp_mixer_flops": 2e-3, "cnn_lstm_flops": 2e-3, "crossvit_flops": 2e-3}


def test_a_model_inherits_only_a_winner_picked_for_its_own_recipe():
    from msga.grid.rates import lr_sources

    params = load_params(REPO / "params.yaml")
    tuned = ["mlp_mixer", "convnext", "cnn_lstm", "crossvit", "msga"]
    assert lr_sources(params, tuned) == {**dict.fromkeys(CONTROLS, "msga"), "mlp_mixer_flops": "mlp_mixer",
                                         "convnext_flops": "convnext", "cnn_lstm_flops": "cnn_lstm",
                                         "crossvit_flops": "crossvit"}
    params["train"]["per_model"]["msga_single"] = {"epochs": 60}  # another recipe: msga's winner says nothing
    params["train"]["per_model"]["convnext_flops"] = {"lr": 1e-2}  # a learning rate alone is what is inherited
    sources = lr_sources(params, tuned)
    assert "msga_single" not in sources and sources["convnext_flops"] == "convnext"
    # a control tuned itself is its own source; its siblings still inherit from the model named after the file
    assert "msga_local" not in lr_sources(params, [*tuned, "msga_local"])
    assert lr_sources(params, [*tuned, "msga_local"])["msga_global"] == "msga"
    assert lr_sources(params, []) == {}
