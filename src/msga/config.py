"""params.yaml -> validated config; an experiment grid -> runs; a run -> its resolved config.

Every consumer (the Snakefile, the CLI, the trainer) goes through `validate_params`, so a bad
key fails the same way everywhere: before any job runs, naming the key and the rule broken.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "params.schema.yaml"

# A variant names the overrides a sweep applies; its short key maps to a dotted key of the
# resolved run config. These are the only keys the grid sweeps, so path names stay short.
VARIANT_KEYS = {"heads": "model.heads", "batch_size": "train.batch_size", "sigma": "noise.sigma"}
SWEEPS = {"heads": "heads", "batch_size": "batch_size", "noise": "sigma"}  # experiment -> variant key
BASE_VARIANT = "base"
CIFAR100_TRAIN_IMAGES = 50_000


class ParamsError(ValueError):
    """A params file or an override breaks the schema or a cross-field rule."""


def load_schema() -> dict:
    """The JSON Schema of params files (workflow/schemas/params.schema.yaml)."""
    if not SCHEMA_PATH.exists():
        raise ParamsError(
            f"schema {SCHEMA_PATH} not found: msga runs from a checkout of the repository "
            "(pip install -e .), which holds workflow/schemas/"
        )
    return yaml.safe_load(SCHEMA_PATH.read_text())


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"params file {path} does not exist; pass --params with the path to params.yaml")
    try:
        params = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ParamsError(f"{path} is not valid YAML: {err}") from err
    if not isinstance(params, dict):
        raise ParamsError(f"{path} must hold a mapping of sections (data, models, train, noise, experiments)")
    return params


def merge(base: dict, update: dict) -> dict:
    """Recursive dict update, as Snakemake merges several --configfile files."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_params(paths: str | Path | list) -> dict:
    """Read, merge (later files win) and validate params files; schema defaults are filled in."""
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    params: dict = {}
    for path in paths:
        params = merge(params, read_yaml(path))
    return validate_params(params, source=" + ".join(str(p) for p in paths))


def _key_of(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "<top level>"


def _fill_defaults(validator_class):
    """A validator that also writes schema defaults into the instance (as snakemake's validate does)."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


_Validator = _fill_defaults(jsonschema.Draft202012Validator)


def validate_params(params: dict, source: str = "params") -> dict:
    """Validate against the schema and the cross-field rules; returns a defaults-filled copy."""
    params = copy.deepcopy(params)
    errors = sorted(_Validator(load_schema()).iter_errors(params), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"  {_key_of(e)}: {_describe(e)}" for e in errors[:10]]
        raise ParamsError(f"{source} is invalid:\n" + "\n".join(lines))
    check_cross_rules(params, source)
    return params


def _describe(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        hint = f" (allowed: {', '.join(allowed)})" if allowed else ""
        return f"{error.message}{hint}"
    return error.message


def check_cross_rules(params: dict, source: str = "params") -> None:
    """Rules JSON Schema cannot state: names that must exist, widths heads must divide."""
    from msga.models import list_models

    registered = set(list_models())
    problems = []
    for name in params["models"]:
        if name not in registered:
            problems.append(f"models.{name}: no such model; registered: {', '.join(sorted(registered))}")
    for exp, spec in params["experiments"].items():
        names = spec["models"] if "models" in spec else [spec["model"]]
        for name in names:
            if name not in params["models"]:
                problems.append(
                    f"experiments.{exp}: model '{name}' has no entry under models "
                    f"(known: {', '.join(params['models'])})"
                )
    heads_spec = params["experiments"]["heads"]
    arch = params["models"].get(heads_spec["model"], {})
    if "heads" not in arch:
        problems.append(f"experiments.heads.model: '{heads_spec['model']}' has no attention heads to sweep")
    for name, arch in params["models"].items():
        if "heads" in arch and "widths" in arch:
            width = arch["widths"][-1]
            heads = [arch["heads"]] + (heads_spec["values"] if name == heads_spec["model"] else [])
            bad = sorted({h for h in heads if width % h})
            if bad:
                problems.append(
                    f"models.{name}.widths[-1]: the attention width {width} is not divisible by "
                    f"head count(s) {bad} (models.{name}.heads / experiments.heads.values); "
                    f"pick a width divisible by all of them, e.g. 240 for 1..12"
                )
    for exp in ("batch_size",):
        for b in params["experiments"][exp]["values"]:
            if b < 2:
                problems.append(f"experiments.{exp}.values: batch size {b} must be at least 2 (batch norm)")
    problems += _recipe_problems(params)
    if problems:
        raise ParamsError(f"{source} is invalid:\n" + "\n".join(f"  {p}" for p in problems))


def _recipe_problems(params: dict) -> list[str]:
    """The recipe against the grid and the data: errors a job would otherwise hit hours in."""
    train, problems = params["train"], []
    for name in train["per_model"]:
        if name not in params["models"]:
            problems.append(f"train.per_model.{name}: no such model under models (known: {', '.join(params['models'])})")
    recipes = {"train": train, **{f"train.per_model.{m}": {**train, **o} for m, o in train["per_model"].items()}}
    for where, recipe in recipes.items():
        if recipe["warmup_epochs"] > recipe["epochs"]:
            problems.append(f"{where}: warmup_epochs ({recipe['warmup_epochs']}) exceeds epochs ({recipe['epochs']}): "
                            "the learning rate would never reach its peak; shorten the warmup")
    data = params["data"]
    n_train = 100 * data["synthetic"]["train_per_class"] if data["source"] == "synthetic" else CIFAR100_TRAIN_IMAGES
    batches = {"train.batch_size": [train["batch_size"]], "experiments.batch_size.values": params["experiments"]["batch_size"]["values"],
               **{f"train.per_model.{m}.batch_size": [o["batch_size"]] for m, o in train["per_model"].items() if "batch_size" in o}}
    for where, sizes in batches.items():
        too_big = [b for b in sizes if b > n_train]
        if too_big:
            problems.append(f"{where}: batch size {too_big} exceeds the {n_train} training images of data.source {data['source']}")
    return problems


# ---------------------------------------------------------------- overrides and variants


def parse_set(items: list[str]) -> dict[str, Any]:
    """`--set key=value` strings -> {dotted key: YAML-typed value}."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ParamsError(f"--set {item!r}: expected key=value, e.g. --set model.heads=4")
        out[key.strip()] = _scalar(value)
    return out


def _scalar(text: str) -> Any:
    """YAML typing, plus floats like 8e-3 that YAML 1.1 would leave as strings."""
    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    return value


def format_value(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def variant_name(overrides: dict[str, Any]) -> str:
    """{dotted key: value} -> 'heads=4' (sorted, comma-joined) or 'base'."""
    short = {dotted: short for short, dotted in VARIANT_KEYS.items()}
    parts = []
    for key in sorted(overrides):
        if key not in short:
            raise ParamsError(f"override {key}: not a sweepable key; known: {', '.join(VARIANT_KEYS.values())}")
        parts.append(f"{short[key]}={format_value(overrides[key])}")
    return ",".join(parts) or BASE_VARIANT


def variant_overrides(variant: str) -> dict[str, Any]:
    """'heads=4' -> {'model.heads': 4}; 'base' -> {}."""
    if variant == BASE_VARIANT:
        return {}
    out = {}
    for part in variant.split(","):
        key, _, value = part.partition("=")
        if key not in VARIANT_KEYS:
            raise ParamsError(f"variant {variant!r}: unknown key {key!r}; known: {', '.join(VARIANT_KEYS)}")
        out[VARIANT_KEYS[key]] = _scalar(value)
    return out


def apply_overrides(params: dict, model: str, overrides: dict[str, Any]) -> dict:
    """Write run overrides (model.*, train.*, noise.*) into a copy of params and revalidate."""
    params = copy.deepcopy(params)
    for dotted, value in overrides.items():
        section, _, rest = dotted.partition(".")
        if section not in ("model", "train", "noise") or not rest:
            raise ParamsError(f"--set {dotted}: keys start with model., train. or noise. (e.g. model.heads)")
        node = params["models"][model] if section == "model" else params[section]
        *parents, leaf = rest.split(".")
        for p in parents:
            if not isinstance(node.get(p), dict):
                raise ParamsError(f"--set {dotted}: {p} is not a section")
            node = node[p]
        node[leaf] = value
    return validate_params(params, source=f"params with overrides {overrides}")


def resolve_run(params: dict, model: str, overrides: dict[str, Any], seed: int) -> dict:
    """The full configuration of one run: what the trainer uses and metrics.json records."""
    if model not in params["models"]:
        raise ParamsError(f"model '{model}' has no entry under models (known: {', '.join(params['models'])})")
    params = apply_overrides(params, model, overrides)
    train = {k: v for k, v in params["train"].items() if k != "per_model"}
    per_model = params["train"]["per_model"].get(model, {})
    train.update(per_model)
    return {
        "model": {"name": model, **params["models"][model]},
        "train": train,
        "per_model_overrides": per_model,
        "noise": dict(params["noise"]),
        "data": data_identity(params),
        "seed": int(seed),
        "overrides": dict(overrides),
    }


def data_identity(params: dict) -> dict:
    """What determines the training data's content (so a change of it reruns training)."""
    data = params["data"]
    if data["source"] == "synthetic":
        return {"source": "synthetic", **data["synthetic"]}
    return {"source": "cifar100", "md5": data["md5"]}


def config_hash(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


# ---------------------------------------------------------------- the experiment grid


@dataclass(frozen=True, order=True)
class Run:
    model: str
    variant: str
    seed: int

    @property
    def path(self) -> str:
        return f"results/runs/{self.model}/{self.variant}/seed{self.seed}"


def _canonical(params: dict, model: str, dotted: str, value: Any) -> dict[str, Any]:
    """Drop an override equal to the default, so the sweep's default point IS the base run."""
    default = resolve_run(params, model, {}, 0)
    section, _, leaf = dotted.partition(".")
    if default[section][leaf] == value:
        return {}
    return {dotted: value}


def experiment_runs(params: dict) -> dict[str, list[Run]]:
    """experiment name -> its runs; the same Run may appear in several experiments."""
    exps = params["experiments"]
    out: dict[str, list[Run]] = {}
    for exp in ("table1", "ablation"):
        out[exp] = [Run(m, BASE_VARIANT, s) for m in exps[exp]["models"] for s in exps[exp]["seeds"]]
    for exp, short in SWEEPS.items():
        spec = exps[exp]
        runs = []
        for value in spec["values"]:
            overrides = _canonical(params, spec["model"], VARIANT_KEYS[short], value)
            runs += [Run(spec["model"], variant_name(overrides), s) for s in spec["seeds"]]
        out[exp] = runs
    return out


def all_runs(params: dict) -> list[Run]:
    """Every distinct run of the grid, sorted."""
    return sorted({run for runs in experiment_runs(params).values() for run in runs})
