"""The rules of a params file that JSON Schema cannot state: names that must exist, widths that head
counts must divide, the recipe against the grid and the data. Torch-free."""

from __future__ import annotations

from msga.data.format import NUM_CLASSES, split_sizes
from msga.grid.experiments import TUNE, enabled
from msga.grid.recipe import held_out
from msga.models import list_models


def cross_field_problems(params: dict) -> list[str]:
    """Rules JSON Schema cannot state: names that must exist, widths head counts must divide, the
    recipe against the grid and the data."""
    registered = set(list_models())
    exps = params["experiments"]
    problems = []
    for name in params["models"]:
        if name not in registered:
            problems.append(f"models.{name}: no such model; registered: {', '.join(sorted(registered))}")
    for exp, spec in exps.items():
        for name in spec["models"] if "models" in spec else [spec["model"]]:
            if name not in params["models"]:
                problems.append(f"experiments.{exp}: model '{name}' has no entry under models "
                                f"(known: {', '.join(params['models'])})")
    swept_heads: dict[str, list[int]] = {}
    if "heads" in exps:
        model = exps["heads"]["model"]
        if "heads" not in params["models"].get(model, {"heads": 0}):
            problems.append(f"experiments.heads.model: '{model}' has no attention heads to sweep")
        swept_heads[model] = exps["heads"]["values"]
    for name, arch in params["models"].items():
        if "heads" in arch and "widths" in arch and arch.get("attn_depth", 1):
            width = arch["widths"][-1]
            bad = sorted({h for h in [arch["heads"], *swept_heads.get(name, [])] if width % h})
            if bad:
                problems.append(
                    f"models.{name}.widths[-1]: the attention width {width} is not divisible by head count(s) "
                    f"{bad} (models.{name}.heads / experiments.heads.values); pick a width divisible by all of "
                    "them, e.g. 240 for 1..12")
        if "num_heads" in arch and "embed_dim" in arch:
            for i, (dim, heads) in enumerate(zip(arch["embed_dim"], arch["num_heads"])):
                if dim % heads:
                    problems.append(f"models.{name}.embed_dim[{i}]: {dim} is not divisible by num_heads[{i}] = {heads}")
        problems += _mlp_width_problems(name, arch)
    return problems + _recipe_problems(params) + _validation_problems(params)


def _mlp_width_problems(name: str, arch: dict) -> list[str]:
    """msga's block MLPs are int(width * mlp_ratio) wide: at least one channel in every block."""
    if not {"widths", "depths", "attn_depth", "mlp_ratio"} <= set(arch):
        return []
    used = [w for w, d in zip(arch["widths"], arch["depths"]) if d] + [arch["widths"][-1]] * bool(arch["attn_depth"])
    if used and int(min(used) * arch["mlp_ratio"]) < 1:
        return [f"models.{name}.mlp_ratio: {arch['mlp_ratio']} times the narrowest block's width {min(used)} leaves "
                "its MLP no channel; raise mlp_ratio or the width"]
    return []


def _validation_problems(params: dict) -> list[str]:
    """The validation split (train.validation, and every run of the tune experiment) holds out a tenth of
    each class, at least one image: the synthetic fixture must keep images to train on, a batch's worth."""
    data = params["data"]
    uses = {where: recipe for where, recipe in recipes(params).items() if recipe["validation"]}
    if enabled(params, TUNE):
        uses |= {f"experiments.{TUNE} ({m})": recipe_of(params, m) for m in params["experiments"][TUNE]["models"]}
    if data["source"] != "synthetic" or not uses:
        return []  # CIFAR-100: 450 of each class's 500 images are left
    per_class = data["synthetic"]["train_per_class"]
    fit = NUM_CLASSES * (per_class - held_out(per_class))
    if not fit:
        return [f"data.synthetic.train_per_class: {per_class} images per class, and the validation split of "
                f"{', '.join(uses)} holds out {held_out(per_class)} of each class: none is left to train on; use 2 "
                "or more"]
    return [f"{where}: batch size {recipe['batch_size']} exceeds the {fit} images left to train on beside the "
            f"validation split (data.synthetic.train_per_class {per_class})"
            for where, recipe in uses.items() if recipe["batch_size"] > fit]


def _recipe_problems(params: dict) -> list[str]:
    """The recipe against the grid and the data: errors a job would otherwise hit hours in."""
    train, exps, problems = params["train"], params["experiments"], []
    for name in train["per_model"]:
        if name not in params["models"]:
            problems.append(f"train.per_model.{name}: no such model under models (known: {', '.join(params['models'])})")
    for where, recipe in recipes(params).items():
        if recipe["warmup_epochs"] > recipe["epochs"]:
            problems.append(f"{where}: warmup_epochs ({recipe['warmup_epochs']}) exceeds epochs ({recipe['epochs']}): "
                            "the learning rate would never reach its peak; shorten the warmup")
        if recipe["min_lr"] > recipe["lr"]:
            problems.append(f"{where}: min_lr ({recipe['min_lr']}) exceeds lr ({recipe['lr']}): the cosine would "
                            "rise instead of decay; lower min_lr")
        late = [m for m in recipe["milestones"] if m >= recipe["epochs"]]
        if recipe["schedule"] == "step" and late:
            problems.append(f"{where}: milestones {late} are not before the last epoch ({recipe['epochs']})")
    data = params["data"]
    n_train = split_sizes(data)["train"]
    batches = {"train.batch_size": [train["batch_size"]],
               **{f"experiments.{e}.values": exps[e]["values"] for e in ("batch_size", "batch_size_fixed_lr") if e in exps},
               **{f"train.per_model.{m}.batch_size": [o["batch_size"]] for m, o in train["per_model"].items() if "batch_size" in o}}
    for where, sizes in batches.items():
        if [b for b in sizes if b < 2]:
            problems.append(f"{where}: batch sizes below 2 {[b for b in sizes if b < 2]}: batch norm needs 2 images")
        too_big = [b for b in sizes if b > n_train]
        if too_big:
            problems.append(f"{where}: batch size {too_big} exceeds the {n_train} training images of data.source "
                            f"{data['source']}")
    if data["tarball"] and set(data["tarball"]) & {"{", "}"}:
        problems.append(f"data.tarball: {data['tarball']!r} holds a brace, which Snakemake reads as a wildcard in "
                        "every input path; rename the file or link it under a name without braces")
    if data["source"] == "cifar100" and not data["md5"]:
        problems.append("data.md5: the archive's md5 is needed (it identifies the data and is checked before "
                        "anything is unpickled); run `md5sum` on your archive and set it")
    return problems


def recipes(params: dict) -> dict[str, dict]:
    """Where a recipe is set -> the recipe in force there (train, then each model's entry)."""
    train = params["train"]
    return {"train": train, **{f"train.per_model.{m}": {**train, **o} for m, o in train["per_model"].items()}}


def recipe_of(params: dict, model: str) -> dict:
    return recipes(params).get(f"train.per_model.{model}", params["train"])
