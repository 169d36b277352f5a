"""params.yaml: schema, cross-field rules, and the experiment grid."""

from __future__ import annotations

import copy

import pytest
import yaml

from msga.cli import main
from msga.config import ParamsError, build_grid, load_params, resolve_run, validate_params
from msga.runs import BASE_VARIANT, Run, variant_name, variant_overrides
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


def _set(*path_value):
    """An edit that sets params[a][b]... = value."""
    *path, value = path_value

    def edit(params):
        node = params
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return edit


# Each bad params file fails validation with a message naming the key and the rule broken.
BAD_PARAMS = {
    # unknown keys, at every level
    "unknown top-level key": (_set("extra", 1), ["<top level>", "'extra' was unexpected"]),
    "unknown data key": (_set("data", "mirror", "x"), ["data:", "'mirror' was unexpected"]),
    "unknown data.synthetic key": (_set("data", "synthetic", "size", 1), ["data.synthetic", "'size' was unexpected"]),
    "unknown model section": (_set("models", "resnet", {}), ["models:", "'resnet' was unexpected"]),
    "unknown model key": (_set("models", "msga", "head", 8), ["models.msga", "'head' was unexpected"]),
    "unknown train key": (_set("train", "epochz", 3), ["train:", "'epochz' was unexpected"]),
    "unknown per_model key": (_set("train", "per_model", {"msga": {"lrr": 1}}), ["train.per_model.msga", "'lrr'"]),
    "unknown noise key": (_set("noise", "mu", 0.1), ["noise:", "'mu' was unexpected"]),
    "unknown experiment": (_set("experiments", "depth", {"model": "msga", "values": [1], "seeds": [0]}),
                           ["experiments:", "'depth' was unexpected"]),
    "unknown experiment key": (_set("experiments", "heads", "valuez", [1]), ["experiments.heads", "'valuez'"]),
    # wrong types
    "epochs as text": (_set("train", "epochs", "ten"), ["train.epochs", "not of type 'integer'"]),
    "epochs as bool": (_set("train", "epochs", True), ["train.epochs", "not of type 'integer'"]),
    "batch size as float": (_set("train", "batch_size", 64.5), ["train.batch_size", "not of type 'integer'"]),
    "lr as text": (_set("train", "lr", "fast"), ["train.lr", "not of type 'number'"]),
    "augment as text": (_set("train", "augment", "yes"), ["train.augment", "not of type 'object'"]),
    "crop_flip as text": (_set("train", "augment", {"crop_flip": "yes"}), ["train.augment.crop_flip", "'boolean'"]),
    "unknown augment key": (_set("train", "augment", {"rotate": True}), ["train.augment", "'rotate' was unexpected"]),
    "a step schedule's late milestone": (lambda p: p["train"].update(schedule="step", milestones=[10, 30]),
                                         ["train:", "milestones [30] are not before the last epoch (30)"]),
    "a fixed-lr batch of 1": (_set("experiments", "batch_size_fixed_lr", "values", [1, 64]),
                              ["experiments.batch_size_fixed_lr.values", "batch norm"]),
    "a tune grid of one lr": (_set("experiments", "tune", "values", [1e-3]), ["experiments.tune.values", "too short"]),
    "seeds as a scalar": (_set("experiments", "table1", "seeds", "0"), ["experiments.table1.seeds", "not of type 'array'"]),
    "section as null": (_set("train", None), ["train:", "not of type 'object'"]),
    "head count as text": (_set("experiments", "heads", "values", ["a"]), ["experiments.heads.values.0", "'integer'"]),
    # zero and negative values
    "zero epochs": (_set("train", "epochs", 0), ["train.epochs", "minimum of 1"]),
    "negative epochs": (_set("train", "epochs", -3), ["train.epochs", "minimum of 1"]),
    "zero batch size": (_set("train", "batch_size", 0), ["train.batch_size", "minimum of 1"]),
    "negative batch size": (_set("train", "batch_size", -64), ["train.batch_size", "minimum of 1"]),
    "zero batch size in the sweep": (_set("experiments", "batch_size", "values", [0, 64]),
                                     ["experiments.batch_size.values.0", "minimum of 1"]),
    "zero lr": (_set("train", "lr", 0), ["train.lr", "less than or equal to the minimum of 0"]),
    "negative lr": (_set("train", "lr", -1e-3), ["train.lr", "less than or equal to the minimum of 0"]),
    "negative lr per model": (_set("train", "per_model", {"msga": {"lr": -1}}), ["train.per_model.msga.lr", "minimum"]),
    "negative weight decay": (_set("train", "weight_decay", -1), ["train.weight_decay", "minimum of 0"]),
    "negative noise": (_set("noise", "train_sigma", -0.1), ["noise.train_sigma", "minimum of 0"]),
    "zero heads in the sweep": (_set("experiments", "heads", "values", [0]), ["experiments.heads.values.0", "minimum"]),
    "negative seed": (_set("experiments", "table1", "seeds", [-1]), ["experiments.table1.seeds.0", "minimum of 0"]),
    "label smoothing of 1.5": (_set("train", "label_smoothing", 1.5), ["train.label_smoothing", "maximum of 1"]),
    "unknown optimizer": (_set("train", "optimizer", "adam"), ["train.optimizer", "is not one of"]),
    "even kernel": (_set("models", "msga", "kernels", [2, 3]), ["models.msga.kernels.0", "is not one of"]),
    "malformed md5": (_set("data", "md5", "xyz"), ["data.md5", "does not match"]),
    # empty grids and duplicates
    "empty model list": (_set("experiments", "table1", "models", []), ["experiments.table1.models", "non-empty"]),
    "empty sweep": (_set("experiments", "heads", "values", []), ["experiments.heads.values", "non-empty"]),
    "empty seed list": (_set("experiments", "ablation", "seeds", []), ["experiments.ablation.seeds", "non-empty"]),
    "duplicate seeds": (_set("experiments", "noise", "seeds", [0, 0]), ["experiments.noise.seeds", "non-unique"]),
    "duplicate sweep values": (_set("experiments", "heads", "values", [4, 4]), ["experiments.heads.values", "non-unique"]),
    # unknown model names
    "unknown model in table1": (_set("experiments", "table1", "models", ["msga", "resnet"]),
                                ["experiments.table1", "'resnet' has no entry under models"]),
    "unknown model in the ablation": (_set("experiments", "ablation", "models", ["msga", "foo"]),
                                      ["experiments.ablation", "'foo' has no entry"]),
    "unknown sweep model": (_set("experiments", "heads", "model", "foo"), ["experiments.heads", "'foo' has no entry"]),
    "heads sweep of a model without attention": (_set("experiments", "heads", "model", "convnext"),
                                                 ["experiments.heads.model", "no attention heads"]),
    "unknown model in per_model": (_set("train", "per_model", {"resnet": {"lr": 1e-3}}),
                                   ["train.per_model.resnet", "no such model"]),
    # heads that do not divide the attention width
    "sweep heads not dividing the width": (_set("experiments", "heads", "values", [1, 7, 8]),
                                           ["models.msga.widths[-1]", "240", "[7]"]),
    "model heads not dividing the width": (_set("models", "msga_global", "heads", 7),
                                           ["models.msga_global.widths[-1]", "[7]"]),
    "width that no head count divides": (_set("models", "msga", "widths", [96, 192, 250]), ["250", "not divisible"]),
    # the recipe against the grid and the data
    "warmup longer than training": (_set("train", "warmup_epochs", 40), ["train:", "warmup_epochs (40) exceeds epochs (30)"]),
    "batch larger than the training set": (_set("experiments", "batch_size", "values", [64, 100_000]),
                                           ["experiments.batch_size.values", "[100000]", "50000 training images"]),
    "min_lr above lr": (_set("train", "min_lr", 0.1), ["train:", "min_lr (0.1) exceeds lr (0.002)"]),
    "min_lr above a per-model lr": (_set("train", "per_model", {"crossvit": {"lr": 1e-6}}),
                                    ["train.per_model.crossvit", "min_lr (1e-05) exceeds lr (1e-06)"]),
    "crossvit heads not dividing its width": (_set("models", "crossvit", "num_heads", [5, 6]),
                                              ["models.crossvit.embed_dim[0]", "96 is not divisible by num_heads[0] = 5"]),
    "no md5 for CIFAR-100": (_set("data", "md5", None), ["data.md5", "md5sum"]),
    "a tarball path with braces": (_set("data", "tarball", "/x/{a}.tar.gz"), ["data.tarball", "wildcard"]),
    # numbers that YAML or a careless edit make: integers written as floats, NaN, infinity, huge values
    "epochs as 2.0": (_set("train", "epochs", 2.0), ["train.epochs", "write 2, without a decimal point"]),
    "heads as 4.0": (_set("models", "msga", "heads", 4.0), ["models.msga.heads", "not of type 'integer'"]),
    "a sweep value as 4.0": (_set("experiments", "heads", "values", [4.0]), ["experiments.heads.values.0", "integer"]),
    "a seed as 1e3": (_set("experiments", "table1", "seeds", [1.0e3]), ["experiments.table1.seeds.0", "integer"]),
    "a seed too large for torch": (_set("experiments", "table1", "seeds", [2**63]), ["seeds.0", "maximum"]),
    "NaN lr": (_set("train", "lr", float("nan")), ["train.lr", "nan is not a finite number"]),
    "infinite warmup": (_set("train", "warmup_epochs", float("inf")), ["train.warmup_epochs", "not a finite number"]),
    "NaN sigma": (_set("noise", "test_sigma", float("nan")), ["noise.test_sigma", "not a finite number"]),
    "NaN timeout": (_set("data", "timeout", float("nan")), ["data.timeout", "not a finite number"]),
    "NaN label smoothing": (_set("train", "label_smoothing", float("nan")), ["train.label_smoothing", "finite"]),
    "NaN grad clip": (_set("train", "grad_clip", float("nan")), ["train.grad_clip", "finite"]),
    "NaN sweep sigma": (_set("experiments", "noise", "values", [0.0, float("nan")]), ["experiments.noise.values.1", "finite"]),
    "per-model epochs unbounded": (_set("train", "per_model", {"msga": {"epochs": 10**9}}),
                                   ["train.per_model.msga.epochs", "maximum"]),
    "per-model lr unbounded": (_set("train", "per_model", {"msga": {"lr": 1e9}}), ["train.per_model.msga.lr", "maximum"]),
}


@pytest.mark.parametrize("case", BAD_PARAMS)
def test_bad_params_name_the_key_and_the_rule(raw, case):
    edit, words = BAD_PARAMS[case]
    message = _invalid(raw, edit)
    for word in words:
        assert word in message, (word, message)


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
    grid = build_grid(validate_params(raw))
    table1_msga = {r for r in grid.experiments["table1"] if r.model == "msga"}
    for exp in ("heads", "batch_size", "noise"):
        base = {r for r in grid.experiments[exp] if r.variant == BASE_VARIANT}
        assert base == table1_msga, exp
    # distinct runs: table1 15; compute_matched 4 x 3 (msga is table1's); heads, batch size, both noise
    # sweeps: their non-default values x 3 seeds; the fixed-lr arm meets the base run at the base batch
    # (256): 4 x 3; ablation 4 x 3; anchor 1; tune 5 x 4
    assert len(grid.runs) == 15 + 4 * 3 + 6 * 3 + 4 * 3 + 4 * 3 + 4 * 3 + 4 * 3 + 4 * 3 + 1 + 5 * 4
    fixed_lr = {r.id for r in grid.experiments["batch_size_fixed_lr"]}
    assert {"msga/base/seed0", "msga/batch_size=64,lr_scaling=none/seed0"} <= fixed_lr  # lr is already base's
    assert grid.configs["msga/batch_size=64,lr_scaling=none/seed0"]["train"]["lr"] == 0.002
    assert set(grid.configs) == {r.id for r in grid.runs}
    assert grid.configs["msga/heads=4/seed1"]["model"]["heads"] == 4


def test_variant_round_trip_and_resolution(raw):
    params = validate_params(raw)
    for overrides in ({"model.heads": 4}, {"train.batch_size": 64}, {"noise.test_sigma": 0.05},
                      {"noise.train_sigma": 0.1, "noise.test_sigma": 0.1}, {"train.lr": 1e-3, "train.validation": True}, {}):
        assert variant_overrides(variant_name(overrides)) == overrides
    config = resolve_run(params, Run.parse("msga/heads=4,sigma=0.1/seed2"))
    assert config["model"]["heads"] == 4 and config["seed"] == 2
    assert config["noise"] == {"train_sigma": 0.1, "test_sigma": 0.1}
    assert config["run"] == "msga/heads=4,sigma=0.1/seed2"
    with pytest.raises(ParamsError, match="model.heads"):
        resolve_run(params, Run.parse("msga/heads=7/seed0"))


def test_per_model_recipe_overrides_are_applied_and_recorded(raw):
    params = copy.deepcopy(raw)
    params["train"]["per_model"] = {"crossvit": {"lr": 5.0e-4}}
    params = validate_params(params)
    config = resolve_run(params, Run("crossvit", BASE_VARIANT, 0))
    assert config["train"]["lr"] == 5.0e-4 and config["per_model_overrides"] == {"lr": 5.0e-4}
    assert resolve_run(params, Run("msga", BASE_VARIANT, 0))["train"]["lr"] == raw["train"]["lr"]


@pytest.mark.parametrize("text,words", [
    ("train:\n  epochs: 3\n  epochs: 30\n", ["found the key 'epochs' twice", "line 3"]),
    ("a: &x [1, 2]\nb: *x\n", ["alias *x", "not allowed"]),
    # the billion laughs: nine levels of nine aliases; refused at the first alias, at once
    ("a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)),
     ["alias *a", "not allowed"]),
    ("train: [unclosed\n", ["not valid YAML", "line"]),
    ("- just\n- a list\n", ["must hold a mapping"]),
])
@pytest.mark.timeout(30)  # an expanded alias bomb would hang here
def test_params_files_with_duplicate_keys_aliases_or_bad_yaml_are_refused(tmp_path, text, words):
    from msga.config import read_yaml

    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(ParamsError) as exc:
        read_yaml(path)
    for word in words:
        assert word in str(exc.value), (word, str(exc.value))


def test_validation_imports_no_torch():
    import subprocess
    import sys

    code = ("import sys; from msga.cli import main; from msga.config import build_grid, load_params; "
            "build_grid(load_params('params.yaml')); import msga.aggregate, msga.report, msga.runfiles; "
            "print(sorted(m for m in ('torch', 'timm', 'torchvision', 'torchmetrics') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_complete_params_file_starts_afresh_and_a_partial_one_merges(tmp_path):
    from msga.config import merge_files

    partial = tmp_path / "partial.yaml"
    partial.write_text("train:\n  epochs: 2\n")
    merged = merge_files([REPO / "params.yaml", partial])
    assert merged["train"]["epochs"] == 2 and "resnet18" in merged["train"]["per_model"]
    replaced = merge_files([REPO / "params.yaml", REPO / "workflow" / "demo.yaml"])
    assert replaced == yaml.safe_load((REPO / "workflow" / "demo.yaml").read_text())


@pytest.mark.parametrize("entries,expected", [
    (['data={tarball: "2024"}'], {"data": {"tarball": "2024"}}),  # quoted: text, as written
    (["train={epochs: 2, lr: 1.0e-3}"], {"train": {"epochs": 2, "lr": 1.0e-3}}),
    (["train={epochs: 2}", "train={lr: 0.5}", "noise={test_sigma: '0.1'}"],
     {"train": {"epochs": 2, "lr": 0.5}, "noise": {"test_sigma": "0.1"}}),
    (["data="], {"data": None}),
    ([], {}),
    (None, {}),
])
def test_config_arguments_are_read_as_the_user_wrote_them(entries, expected):
    from msga.config import parse_config_args

    assert parse_config_args(entries) == expected


@pytest.mark.parametrize("entry,words", [
    ("train={epochs: 2", "not valid YAML"),
    ("train={epochs: 2, epochs: 3}", "found the key 'epochs' twice"),
    ("epochs", "expected KEY=VALUE"),
])
def test_bad_config_arguments_are_refused_naming_them(entry, words):
    from msga.config import parse_config_args

    with pytest.raises(ParamsError) as exc:
        parse_config_args([entry])
    assert words in str(exc.value) and entry in str(exc.value)


def test_msga_runs_lists_each_distinct_run_once_with_every_experiment_it_serves(capsys):
    grid = build_grid(load_params(REPO / "params.yaml"))
    assert main(["runs", "--params", str(REPO / "params.yaml")]) == 0
    *lines, summary = capsys.readouterr().out.splitlines()
    listed = dict(line.split(None, 1) for line in lines)
    assert list(listed) == [run.id for run in grid.runs] and len(lines) == len(grid.runs)
    serves = {run.id: [e for e, runs in grid.experiments.items() if run in runs] for run in grid.runs}
    assert {run: exps.split(", ") for run, exps in listed.items()} == serves
    shared = grid.shared()
    assert "table1" in shared["msga/base/seed0"] and len(shared["msga/base/seed0"]) > 1  # one job, several uses
    slots = sum(len(runs) for runs in grid.experiments.values())
    assert summary == (f"{len(grid.runs)} distinct runs; {len(shared)} of them serve more than one experiment "
                       f"({slots} experiment slots in all)")
