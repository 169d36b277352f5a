"""params.yaml: schema, cross-field rules, and the experiment grid."""

from __future__ import annotations

import copy

import pytest
import yaml

from msga.cli import main
from msga.config import (
    BASE_VARIANT, ParamsError, all_runs, experiment_runs, load_params, resolve_run,
    validate_params, variant_name, variant_overrides,
)
from tests.conftest import REPO


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


def _invalid(raw, edit) -> str:
    params = copy.deepcopy(raw)
    edit(params)
    with pytest.raises(ParamsError) as exc:
        validate_params(params)
    return str(exc.value)


def test_shipped_params_files_are_valid():
    for name in ("params.yaml", "workflow/demo.yaml"):
        load_params(REPO / name)


@pytest.mark.parametrize("edit,names", [
    (lambda p: p.update(extra=1), ["<top level>", "extra"]),
    (lambda p: p["train"].update(epochz=3), ["train", "epochz"]),
    (lambda p: p["models"]["msga"].update(head=8), ["models.msga", "head"]),
    (lambda p: p["experiments"]["heads"].update(valuez=[1]), ["experiments.heads", "valuez"]),
])
def test_unknown_keys_are_named(raw, edit, names):
    message = _invalid(raw, edit)
    for name in names:
        assert name in message


@pytest.mark.parametrize("key,value", [
    ("epochs", "ten"), ("epochs", 0), ("epochs", -3), ("batch_size", 0), ("lr", 0), ("lr", "fast"),
    ("optimizer", "adam"), ("augment", "yes"),
])
def test_bad_train_values_are_named(raw, key, value):
    assert f"train.{key}" in _invalid(raw, lambda p: p["train"].update({key: value}))


def test_empty_grid_and_duplicate_seeds_fail(raw):
    assert "experiments.table1.models" in _invalid(raw, lambda p: p["experiments"]["table1"].update(models=[]))
    assert "experiments.noise.seeds" in _invalid(raw, lambda p: p["experiments"]["noise"].update(seeds=[0, 0]))


def test_heads_must_divide_the_attention_width(raw):
    message = _invalid(raw, lambda p: p["experiments"]["heads"].update(values=[1, 7, 8]))
    assert "models.msga.widths[-1]" in message and "[7]" in message and "240" in message
    message = _invalid(raw, lambda p: p["models"]["msga"].update(widths=[96, 192, 250]))
    assert "250" in message


def test_unknown_model_names_fail(raw):
    message = _invalid(raw, lambda p: p["experiments"]["table1"].update(models=["msga", "resnet"]))
    assert "experiments.table1" in message and "resnet" in message


def test_cli_validate_exits_2_on_bad_params(tmp_path, raw, capsys):
    bad = copy.deepcopy(raw)
    bad["train"]["epochs"] = -1
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(SystemExit) as exc:
        main(["validate", "--params", str(path)])
    assert exc.value.code == 2
    assert "train.epochs" in capsys.readouterr().err
    path.write_text("train: [unclosed\n")
    with pytest.raises(SystemExit) as exc:
        main(["validate", "--params", str(path)])
    assert exc.value.code == 2 and "not valid YAML" in capsys.readouterr().err


def test_sweep_defaults_are_the_table1_runs(raw):
    params = validate_params(raw)
    runs = experiment_runs(params)
    table1_msga = {r for r in runs["table1"] if r.model == "msga"}
    for exp in ("heads", "batch_size", "noise"):
        base = {r for r in runs[exp] if r.variant == BASE_VARIANT}
        assert base == table1_msga, exp
    # 15 table1 + 18 heads + 12 batch + 12 noise + 6 ablation distinct runs
    assert len(all_runs(params)) == 15 + 6 * 3 + 4 * 3 + 4 * 3 + 2 * 3


def test_variant_round_trip_and_resolution(raw):
    params = validate_params(raw)
    for overrides in ({"model.heads": 4}, {"train.batch_size": 64}, {"noise.sigma": 0.05}, {}):
        assert variant_overrides(variant_name(overrides)) == overrides
    config = resolve_run(params, "msga", {"model.heads": 4, "noise.sigma": 0.1}, seed=2)
    assert config["model"]["heads"] == 4 and config["noise"]["sigma"] == 0.1 and config["seed"] == 2
    with pytest.raises(ParamsError, match="model.heads"):
        resolve_run(params, "msga", {"model.heads": 7}, seed=0)


def test_per_model_recipe_overrides_are_applied_and_recorded(raw):
    params = copy.deepcopy(raw)
    params["train"]["per_model"] = {"crossvit": {"lr": 5.0e-4}}
    params = validate_params(params)
    config = resolve_run(params, "crossvit", {}, 0)
    assert config["train"]["lr"] == 5.0e-4 and config["per_model_overrides"] == {"lr": 5.0e-4}
    assert resolve_run(params, "msga", {}, 0)["train"]["lr"] == raw["train"]["lr"]
