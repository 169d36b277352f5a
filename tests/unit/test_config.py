"""params.yaml: schema, cross-field rules, and the experiment grid."""

from __future__ import annotations

import copy

import pytest
import yaml

from msga.cli import main
from msga.grid.params import load_params, validate_params
from msga.grid.reading import ParamsError
from msga.grid.resolve import build_grid, resolve_run
from msga.grid.runs import BASE_VARIANT, Run, variant_name, variant_overrides
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
    "weight_decay_all as text": (_set("train", "weight_decay_all", "yes"), ["train.weight_decay_all", "'boolean'"]),
    "rotation past 180 degrees": (_set("train", "augment", {"rotate_degrees": 270}),
                                  ["train.augment.rotate_degrees", "maximum of 180"]),
    "negative rotation": (_set("train", "augment", {"rotate_degrees": -15}),
                          ["train.augment.rotate_degrees", "minimum of 0"]),
    "negative noise": (_set("noise", "train_sigma", -0.1), ["noise.train_sigma", "minimum of 0"]),
    "zero heads in the sweep": (_set("experiments", "heads", "values", [0]), ["experiments.heads.values.0", "minimum"]),
    "negative seed": (_set("experiments", "table1", "seeds", [-1]), ["experiments.table1.seeds.0", "minimum of 0"]),
    "label smoothing of 1.5": (_set("train", "label_smoothing", 1.5), ["train.label_smoothing", "maximum of 1"]),
    "unknown optimizer": (_set("train", "optimizer", "adam"), ["train.optimizer", "is not one of"]),
    "even kernel": (_set("models", "msga", "kernels", [2, 3]), ["models.msga.kernels.0", "is not one of"]),
    "malformed md5": (_set("data", "md5", "xyz"), ["data.md5", "does not match"]),
    "an md5 with a trailing newline": (_set("data", "md5", "eb9058c3a382ffc7106e4002c42a8d85\n"),
                                       ["data.md5", "does not match", "32 lowercase hex digits and nothing else"]),
    "a url with a space": (_set("data", "url", "https://example.org/cifar 100.tar.gz"),
                           ["data.url", "without spaces or control characters", "%20"]),
    "a url with a control character": (_set("data", "url", "https://example.org/cifar\x1b[2J.tar.gz"), ["data.url"]),
    "a url with a trailing newline": (_set("data", "url", "https://example.org/cifar.tar.gz\n"), ["data.url"]),
    "a url of another scheme": (_set("data", "url", "ftp://example.org/cifar.tar.gz"), ["data.url", "does not match"]),
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
    "batch larger than the training set": (_set("experiments", "batch_size", "values", [64, 60_000]),
                                           ["experiments.batch_size.values", "[60000]", "50000 training images"]),
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
    # numbers that pass a lower bound and crash a job: overflow, a zero-wide layer, an allocation without end
    "a timeout of 1e300": (_set("data", "timeout", 1e300), ["data.timeout", "maximum of 86400"]),
    "msga mlp_ratio of 1e-300": (_set("models", "msga", "mlp_ratio", 1e-300),
                                 ["models.msga.mlp_ratio", "minimum of 0.25"]),
    "mixer mlp_ratio of 1e300": (_set("models", "mlp_mixer", "mlp_ratio", [1e300, 2.0]),
                                 ["models.mlp_mixer.mlp_ratio.0", "maximum of 16"]),
    "crossvit mlp_ratio of 0": (_set("models", "crossvit", "mlp_ratio", [3.0, 3.0, 0.0]),
                                ["models.crossvit.mlp_ratio.2", "minimum of 0.25"]),
    "crossvit depth [[0, 0, 0]]": (_set("models", "crossvit", "depth", [[0, 0, 0]]),
                                   ["models.crossvit.depth.0.0", "minimum of 1", "models.crossvit.depth.0.1"]),
    "crossvit depth of four": (_set("models", "crossvit", "depth", [[1, 1, 1, 1]]),
                               ["models.crossvit.depth.0", "too long"]),
    "crossvit of 100 blocks": (_set("models", "crossvit", "depth", [[1, 1, 1]] * 100),
                               ["models.crossvit.depth", "too long"]),
    "cnn_lstm hidden of 1e10": (_set("models", "cnn_lstm", "hidden", 10**10),
                                ["models.cnn_lstm.hidden", "maximum of 2048"]),
    "cnn_lstm of 1000 layers": (_set("models", "cnn_lstm", "layers", 1000),
                                ["models.cnn_lstm.layers", "maximum of 16"]),
    "mixer embed_dim of 1e9": (_set("models", "mlp_mixer", "embed_dim", 10**9),
                               ["models.mlp_mixer.embed_dim", "maximum"]),
    "mixer depth of 1e9": (_set("models", "mlp_mixer", "depth", 10**9), ["models.mlp_mixer.depth", "maximum of 64"]),
    "crossvit embed_dim of 1e9": (_set("models", "crossvit", "embed_dim", [96, 10**9]),
                                  ["models.crossvit.embed_dim.1", "maximum of 2048"]),
    "msga stem of 1e9": (_set("models", "msga", "stem", 10**9), ["models.msga.stem", "maximum of 2048"]),
    "msga attn_depth of 1e9": (_set("models", "msga", "attn_depth", 10**9),
                               ["models.msga.attn_depth", "maximum of 64"]),
    "msga widths of 1e9": (_set("models", "msga", "widths", [96, 10**9, 240]), ["models.msga.widths.1", "maximum"]),
    "msga depths of 1e9": (_set("models", "msga", "depths", [2, 10**9, 2]), ["models.msga.depths.1", "maximum of 64"]),
    "msga heads of 1e9": (_set("models", "msga", "heads", 10**9), ["models.msga.heads", "maximum of 64"]),
    "msga_single of 100 branches": (_set("models", "msga_single", "kernels", [5] * 100),
                                    ["models.msga_single.kernels", "too long"]),
    "convnext dims of 1e9": (_set("models", "convnext", "dims", [40, 80, 160, 10**9]),
                             ["models.convnext.dims.3", "maximum"]),
    "convnext depths of 1e9": (_set("models", "convnext", "depths", [2, 2, 10**9, 2]),
                               ["models.convnext.depths.2", "maximum"]),
    "resnet18 widths of 1e9": (_set("models", "resnet18", "widths", [64, 128, 256, 10**9]),
                               ["models.resnet18.widths.3", "maximum"]),
    "an msga MLP left no channel": (lambda p: p["models"]["msga"].update(widths=[3, 192, 240], mlp_ratio=0.25),
                                    ["models.msga.mlp_ratio: 0.25 times the narrowest block's width 3", "no channel"]),
    "a heads sweep of 1e9": (_set("experiments", "heads", "values", [10**9]),
                             ["experiments.heads.values.0", "maximum"]),
    "grad clip of 1e9": (_set("train", "grad_clip", 1e9), ["train.grad_clip", "maximum of 1000"]),
    "min_lr of 1e9": (_set("train", "min_lr", 1e9), ["train.min_lr", "maximum of 100"]),
    "a milestone of 1e9": (_set("train", "milestones", [1e9]), ["train.milestones.0", "maximum of 10000"]),
    "eval batch of 1e9": (_set("train", "eval_batch_size", 10**9), ["train.eval_batch_size", "maximum of 65536"]),
    "synthetic seed of 2**40": (_set("data", "synthetic", "seed", 2**40), ["data.synthetic.seed", "maximum"]),
    "validation holding out every synthetic image": (
        lambda p: p["data"].update(source="synthetic", synthetic={"train_per_class": 1}),
        ["data.synthetic.train_per_class: 1 images per class", "experiments.tune (msga)", "none is left to train on"]),
    "validation on, per model, holding out every image": (
        lambda p: (p["data"].update(source="synthetic", synthetic={"train_per_class": 1}),
                   p["experiments"]["tune"].update(enabled=False), p["train"].update(batch_size=64),
                   p["train"]["per_model"].update(msga={"validation": True})),
        ["data.synthetic.train_per_class", "train.per_model.msga", "none is left"]),
    "a batch larger than what validation leaves": (
        lambda p: p["data"].update(source="synthetic", synthetic={"train_per_class": 3}),
        ["experiments.tune (msga): batch size 256 exceeds the 200 images left to train on"]),
}


@pytest.mark.parametrize("case", BAD_PARAMS)
def test_bad_params_name_the_key_and_the_rule(raw, case):
    edit, words = BAD_PARAMS[case]
    message = _invalid(raw, edit)
    for word in words:
        assert word in message, (word, message)


def _numbers(node, where: str = "schema"):
    """(place, subschema) for every integer or number the schema declares, $defs included."""
    if isinstance(node, dict):
        types = node.get("type", [])
        if {"integer", "number"} & set([types] if isinstance(types, str) else types):
            yield where, node
        for key, value in node.items():
            yield from _numbers(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _numbers(value, f"{where}[{i}]")


def test_every_number_in_the_schema_has_both_bounds():
    """A value past a bound crashes a job hours in or allocates without end; a number without an upper
    bound is a new such value waiting. Enumerations bound themselves."""
    from msga.grid.params import load_schema

    found = list(_numbers(load_schema()))
    assert len(found) > 30  # the walk reaches the $defs and the sections
    unbounded = [where for where, node in found if "enum" not in node and "const" not in node and not (
        {"minimum", "exclusiveMinimum"} & set(node) and {"maximum", "exclusiveMaximum"} & set(node))]
    assert unbounded == []


def _lists(node, where: str = "schema"):
    if isinstance(node, dict):
        if node.get("type") == "array":
            yield where, node
        for key, value in node.items():
            yield from _lists(value, f"{where}.{key}")


def test_every_list_of_model_sizes_has_a_length_bound():
    """A list whose length sizes a model (kernels: branches, crossvit depth: blocks) has a maximum length."""
    from msga.grid.params import load_schema

    grids = ("seeds", "sweep_int", "sweep_sigma", "model_set", "milestones")  # what a run is, not what it builds
    sized = [(where, node) for where, node in _lists(load_schema())
             if where.startswith("schema.$defs.") and where.split(".")[2] not in grids]
    assert len(sized) > 10 and [where for where, node in sized if "maxItems" not in node] == []


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


def test_the_anchor_trains_with_its_literature_recipe():
    """weiaicunzai/pytorch-cifar100 (train.py, utils.py): SGD momentum 0.9, lr 0.1, batch 128,
    weight decay 5e-4 on all parameters, x0.2 at 60/120/160 of 200 epochs, one warmup epoch,
    crop (pad 4) + flip + RandomRotation(15), plain cross-entropy."""
    train = resolve_run(load_params(REPO / "params.yaml"), Run("resnet18", BASE_VARIANT, 0))["train"]
    assert {k: train[k] for k in ("optimizer", "nesterov", "lr", "lr_scaling", "batch_size", "weight_decay",
                                  "weight_decay_all", "epochs", "schedule", "milestones", "gamma", "warmup_epochs",
                                  "label_smoothing", "grad_clip")} == {
        "optimizer": "sgd", "nesterov": False, "lr": 0.1, "lr_scaling": "none", "batch_size": 128,
        "weight_decay": 5e-4, "weight_decay_all": True, "epochs": 200, "schedule": "step", "milestones": [60, 120, 160],
        "gamma": 0.2, "warmup_epochs": 1, "label_smoothing": 0.0, "grad_clip": 0.0}
    assert train["augment"] == {"crop_flip": True, "rotate_degrees": 15.0, "trivial_augment": False,
                                "mixup_alpha": 0.0, "cutmix_alpha": 0.0, "mix_prob": 1.0, "switch_prob": 0.5}


@pytest.mark.parametrize("text,words", [
    ("train:\n  epochs: 3\n  epochs: 30\n", ["found the key 'epochs' twice", "line 3"]),
    ("a: &x [1, 2]\nb: *x\n", ["alias *x", "not allowed"]),
    # the billion laughs: nine levels of nine aliases; refused at the first alias, at once
    ("a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)),
     ["alias *a", "not allowed"]),
    ("train: [unclosed\n", ["not valid YAML", "line"]),
    ("- just\n- a list\n", ["must hold a mapping"]),
    # 50,000 levels in 100 kB: Python's stack would overflow long before
    ("data: " + "[" * 50_000 + "]" * 50_000 + "\n", ["nests deeper than 32 levels", "line 1"]),
    ("data:\n  source: synthetic\ntrain:\n  <<: {epochs: 3}\n", ["found a merge key (<<): merge keys are not allowed", "line 4"]),
    # plain scalars that YAML 1.1 (PyYAML) and YAML 1.2 (DVC's params) read apart
    ("train:\n  epochs: 010\n", ["010 reads as 8 in YAML 1.1", "as 10 in YAML 1.2", "write 10 or 8", "line 2"]),
    ("data:\n  timeout: 1:30\n", ["1:30 reads as 90", "write \"1:30\" or 90"]),
    ("train:\n  lr: 1e-3\n", ["1e-3 reads as '1e-3' in YAML 1.1", "write 0.001 or \"1e-3\""]),
    ("train:\n  lr: 1e300\n", ["write 1.0e+300 or \"1e300\""]),
    ("train:\n  nesterov: yes\n", ["yes reads as True in YAML 1.1", "as 'yes' in YAML 1.2"]),
    ("train:\n  batch_size: 1_024\n", ["1_024 reads as 1024", "write \"1_024\" or 1024"]),
    ("train:\n  epochs: 0o10\n", ["0o10 reads as '0o10' in YAML 1.1", "write 8 or \"0o10\""]),
])
@pytest.mark.timeout(30)  # an expanded alias bomb would hang here
def test_params_files_with_duplicate_keys_aliases_or_bad_yaml_are_refused(tmp_path, text, words):
    from msga.grid.reading import read_yaml

    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(ParamsError) as exc:
        read_yaml(path)
    for word in words:
        assert word in str(exc.value), (word, str(exc.value))


def test_both_yaml_versions_read_the_shipped_params_alike():
    """The refusal above costs the shipped files nothing: every plain scalar in them reads the same."""
    from msga.grid.reading import read_yaml

    for name in ("params.yaml", "workflow/demo.yaml"):
        assert read_yaml(REPO / name) == yaml.safe_load((REPO / name).read_text())


@pytest.mark.parametrize("text,words", [
    ("{epochs: 010}", ["{epochs: 010}", "010 reads as 8 in YAML 1.1"]),
    ("{epochs: 2, epochs: 3}", ["found the key 'epochs' twice"]),
    ("{<<: {epochs: 3}}", ["merge keys are not allowed"]),
])
def test_config_overrides_are_read_as_strictly_as_files(text, words):
    from msga.grid.reading import parse_config_args

    with pytest.raises(ParamsError) as exc:
        parse_config_args([f"train={text}"])
    for word in words:
        assert word in str(exc.value), (word, str(exc.value))
    assert parse_config_args(["train={epochs: 2}", "data={url: 'https://x/a.tar.gz?b=1'}"]) == {
        "train": {"epochs": 2}, "data": {"url": "https://x/a.tar.gz?b=1"}}


def test_a_deeply_nested_params_file_is_one_clear_line_from_msga_validate(tmp_path, capsys):
    path = tmp_path / "deep.yaml"
    path.write_text("data: " + "[" * 50_000 + "]" * 50_000 + "\n")
    with pytest.raises(SystemExit) as exc:
        main(["validate", "--params", str(path)])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "nests deeper than 32 levels" in err and str(path) in err
    assert "Traceback" not in err and "RecursionError" not in err



def test_a_complete_params_file_starts_afresh_and_a_partial_one_merges(tmp_path):
    from msga.grid.reading import merge_files

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
    from msga.grid.reading import parse_config_args

    assert parse_config_args(entries) == expected


@pytest.mark.parametrize("entry,words", [
    ("train={epochs: 2", "not valid YAML"),
    ("train={epochs: 2, epochs: 3}", "found the key 'epochs' twice"),
    ("epochs", "expected KEY=VALUE"),
])
def test_bad_config_arguments_are_refused_naming_them(entry, words):
    from msga.grid.reading import parse_config_args

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
