"""params.yaml -> validated params -> the experiment grid -> each run's resolved configuration.

The DAG resolves every run here ONCE and hands the job that configuration as a file; the job
trains exactly it and records it. Aggregation resolves the same grid to tell current runs from
stale ones. Torch-free, so validation and the light commands start fast.
"""

from __future__ import annotations

import copy
import functools
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from msga.data.format import NUM_CLASSES
from msga.experiments import MODEL_SETS, SWEEPS, TUNE
from msga.keys import run_key
from msga.recipe import held_out, scaled_lr
from msga.runs import BASE_VARIANT, Run, variant_name

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "params.schema.yaml"
CIFAR100_TRAIN_IMAGES = 50_000
MAX_PARAMS_BYTES = 1 << 20  # a params file is a few kB; a bigger one is a mistake or an attack


class ParamsError(ValueError):
    """A params file or an override breaks the schema or a cross-field rule."""


# ---------------------------------------------------------------- reading


MAX_DEPTH = 32  # levels of nesting; a params file has five (models.crossvit.depth[0][1])

# How YAML 1.2's core schema reads an untagged plain scalar (what DVC reads params.yaml with); any other
# text is a string. PyYAML reads YAML 1.1, which differs: 010 is octal 8 (1.2: 10), 1:30 is 90 (1.2: the
# text), yes/on are true, 1_000 is 1000, 1e3 is text (1.2: 1000.0).
_CORE_SCHEMA = [(re.compile(pattern), read) for pattern, read in (
    (r"null|Null|NULL|~|", lambda text: None),
    (r"true|True|TRUE", lambda text: True),
    (r"false|False|FALSE", lambda text: False),
    (r"[-+]?[0-9]+", int),
    (r"0o[0-7]+", lambda text: int(text[2:], 8)),
    (r"0x[0-9a-fA-F]+", lambda text: int(text[2:], 16)),
    (r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?", float),
    (r"[-+]?\.(inf|Inf|INF)", lambda text: float(text.replace(".", ""))),
    (r"\.nan|\.NaN|\.NAN", lambda text: math.nan),
)]


def _yaml12(text: str):
    return next((read(text) for pattern, read in _CORE_SCHEMA if pattern.fullmatch(text)), text)


def _same(a, b) -> bool:
    nan = isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
    return type(a) is type(b) and (a == b or nan)


def unambiguous(value) -> str:
    """`value` written so that YAML 1.1 and 1.2 read it alike."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float):
        mantissa, e, exponent = repr(value).partition("e")
        mantissa += "" if "." in mantissa or not math.isfinite(value) else ".0"  # 1.1 floats need a point
        return mantissa + e + exponent  # repr gives the exponent its sign, as 1.1 needs
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value))  # quoted: text


class _StrictLoader(yaml.SafeLoader):
    """YAML without aliases, merge keys, duplicate keys, deep nesting, or scalars YAML versions read apart.

    An alias makes one node count many times (a few lines can expand to gigabytes when validated),
    and a duplicate key silently keeps the last value: in a params file both are mistakes. A plain
    scalar that YAML 1.1 (PyYAML, read here) and YAML 1.2 (DVC's reading of params) take for different
    values (010: 8 or 10) is refused, naming both readings, rather than read as either.
    """

    def __init__(self, stream):
        super().__init__(stream)
        self.depth = 0

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise yaml.composer.ComposerError(
                None, None, f"found the alias *{event.anchor}: YAML aliases are not allowed in params; "
                "write the value out", event.start_mark)
        if self.depth >= MAX_DEPTH:
            raise yaml.composer.ComposerError(
                None, None, f"nests deeper than {MAX_DEPTH} levels; a params file nests five", event.start_mark)
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def compose_scalar_node(self, anchor):
        event = self.peek_event()
        node = super().compose_scalar_node(anchor)
        if event.style is None and event.implicit[0]:  # plain and untagged: its type is the reader's guess
            self._check_plain(node)
        return node

    def _check_plain(self, node) -> None:
        def refuse(problem: str):
            raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark)

        if node.tag == "tag:yaml.org,2002:merge":
            refuse("found a merge key (<<): merge keys are not allowed in params; write the keys out")
        if node.tag not in self.yaml_constructors:
            refuse(f"{node.value!r} is a YAML 1.1 {node.tag.rsplit(':', 1)[-1]}, which params do not use; quote it")
        old, new = self.yaml_constructors[node.tag](self, node), _yaml12(node.value)
        if not _same(old, new):
            written = dict.fromkeys((unambiguous(new), unambiguous(old)))
            refuse(f"{node.value} reads as {old!r} in YAML 1.1 (PyYAML) but as {new!r} in YAML 1.2 (DVC): write "
                   f"{' or '.join(written)}, whichever is meant")

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, (str, int, float, bool)) or key is None:
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        "while reading a mapping", node.start_mark,
                        f"found the key {key!r} twice; keep one", key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"params file {path} does not exist; pass the path of a params file such as params.yaml")
    if path.stat().st_size > MAX_PARAMS_BYTES:
        raise ParamsError(f"{path} is {path.stat().st_size} bytes; a params file is a few kB (limit {MAX_PARAMS_BYTES})")
    try:
        with open(path, encoding="utf-8") as stream:  # read from the file, its errors name it, not "<unicode string>"
            params = yaml.load(stream, Loader=_StrictLoader)  # noqa: S506 (a safe loader)
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ParamsError(f"{path} is not valid YAML: {err}") from err
    except RecursionError:  # a backstop: MAX_DEPTH stops nesting long before Python's stack would
        raise ParamsError(f"{path} nests too deeply to be read; a params file nests five levels") from None
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


def parse_config_args(entries: list[str] | None) -> dict:
    """`snakemake --config KEY=VALUE ...` as the user wrote it: each VALUE read as YAML, strictly,
    so a quoted value stays text ('data={tarball: "2024"}' gives the text 2024) and 2 is a number.
    Snakemake's own reading gives every nested value as text, its quotes gone, so the type the
    user chose cannot be told from it. Later entries win key by key, as in Snakemake."""
    out: dict = {}
    for entry in entries or []:
        key, sep, text = entry.partition("=")
        if not sep or not key:
            raise ParamsError(f"--config {entry!r}: expected KEY=VALUE, e.g. 'train={{epochs: 2}}'")
        try:
            value = yaml.load(text, Loader=_StrictLoader) if text else None  # noqa: S506 (a safe loader)
        except yaml.YAMLError as err:
            raise ParamsError(f"--config {entry!r}: its value is not valid YAML: {err}") from None
        out = merge(out, {key: value})
    return out


SECTIONS = ("data", "models", "train", "noise", "experiments")  # what a complete params file holds


def merge_files(paths: list) -> dict:
    """Params files merged in order, later ones winning key by key; a COMPLETE file (one with every
    section, as workflow/demo.yaml) starts afresh, so nothing of an earlier file (an experiment or a
    per-model recipe the complete one leaves out) leaks into it."""
    params: dict = {}
    for path in paths:
        text = read_yaml(path)
        params = dict(text) if all(section in text for section in SECTIONS) else merge(params, text)
    return params


def load_params(paths: str | Path | list) -> dict:
    """Read, merge (merge_files) and validate params files."""
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    return validate_params(merge_files(paths), source=" + ".join(str(p) for p in paths))


# ---------------------------------------------------------------- validation


@functools.cache
def load_schema() -> dict:
    """The JSON Schema of params files (workflow/schemas/params.schema.yaml)."""
    if not SCHEMA_PATH.exists():
        raise ParamsError(f"schema {SCHEMA_PATH} not found: msga runs from a checkout of the repository "
                          "(pip install -e .), which holds workflow/schemas/")
    return yaml.safe_load(SCHEMA_PATH.read_text())


def _is_integer(checker, value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # 2.0 is not an integer here


def _is_number(checker, value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@functools.cache
def _ecma_regex(pattern: str) -> re.Pattern:
    """A schema pattern as ECMA-262 reads it (JSON Schema's dialect): its `$` is the end of the text, where
    Python's `$` also matches before a final newline (which let "MD5\\n" pass ^[0-9a-f]{32}$)."""
    return re.compile(re.sub(r"(?<!\\)\$", r"\\Z", pattern))


def _pattern(validator, pattern, instance, schema):
    if validator.is_type(instance, "string") and not _ecma_regex(pattern).search(instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


def _validator_class():
    """Draft 2020-12 with strict integers, finite numbers and ECMA-262 patterns, filling the schema's
    defaults in.

    Defaults are written before a mapping's own properties are checked, so a default is
    validated like a written value; the schema is the one place defaults live.
    """
    base = jsonschema.Draft202012Validator
    types = base.TYPE_CHECKER.redefine_many({"integer": _is_integer, "number": _is_number})
    check_properties = base.VALIDATORS["properties"]

    def properties_with_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from check_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(base, {"properties": properties_with_defaults, "pattern": _pattern},
                                        type_checker=types)


@functools.cache
def _validator():
    return _validator_class()(load_schema())


def validate_params(params: dict, source: str = "params") -> dict:
    """The schema (defaults filled in), then the cross-field rules; returns a validated copy."""
    params = copy.deepcopy(params)
    errors = sorted(_validator().iter_errors(params), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"  {_key_of(e)}: {_describe(e)}" for e in errors[:10]]
        more = f"\n  ... and {len(errors) - 10} more" if len(errors) > 10 else ""
        raise ParamsError(f"{source} is invalid:\n" + "\n".join(lines) + more)
    problems = cross_field_problems(params)
    if problems:
        raise ParamsError(f"{source} is invalid:\n" + "\n".join(f"  {p}" for p in problems))
    return params


def _key_of(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "<top level>"


def _describe(error: jsonschema.ValidationError) -> str:
    value = error.instance
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        return error.message + (f" (allowed: {', '.join(allowed)})" if allowed else "")
    if error.validator == "pattern" and "description" in error.schema:
        return f"{error.message}: {error.schema['description']}"
    if error.validator == "type" and isinstance(value, float) and not math.isfinite(value):
        return f"{value} is not a finite number"
    if error.validator == "type" and error.validator_value == "integer" and isinstance(value, float) and value.is_integer():
        return f"{value} is not of type 'integer' (write {int(value)}, without a decimal point)"
    return error.message


def cross_field_problems(params: dict) -> list[str]:
    """Rules JSON Schema cannot state: names that must exist, widths head counts must divide, the
    recipe against the grid and the data."""
    from msga.models import list_models

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


def _recipes(params: dict) -> dict[str, dict]:
    """Where a recipe is set -> the recipe in force there (train, then each model's entry)."""
    train = params["train"]
    return {"train": train, **{f"train.per_model.{m}": {**train, **o} for m, o in train["per_model"].items()}}


def lr_sources(params: dict, tuned) -> dict[str, str]:
    """Each model of params that is not tuned itself -> the tuned model whose winning learning rate
    it trains at: the tuned model built from the same architecture file (msga for its ablation
    controls, convnext for convnext_flops; where several are, the one named after the file), and
    only where the two train with the same recipe but for the learning rate (an lr picked for one
    recipe says nothing about another: the anchor keeps its own).

    Why inherit rather than tune these models too: inheriting costs no run, where tuning the four
    ablation models and the four compute-matched ones would add 8 x the grid's learning rates; and
    for the ablation it is the fairer choice, since a control tuned on its own would differ from
    msga in two things, its component and its learning rate. For a compute-matched baseline it is
    an approximation: its winner at its larger size may differ from its Table 1 twin's."""
    from msga.models import model_entry

    def module(model: str) -> str | None:
        try:
            return model_entry(model).module
        except KeyError:
            return None

    def recipe(model: str) -> dict:
        train = {k: v for k, v in params["train"].items() if k != "per_model"}
        return {k: v for k, v in {**train, **params["train"]["per_model"].get(model, {})}.items() if k != "lr"}

    tuned = [t for t in tuned if t in params["models"]]
    out = {}
    for model in params["models"]:
        if model in tuned or module(model) is None:
            continue
        siblings = [t for t in tuned if module(t) == module(model)]
        source = siblings[0] if len(siblings) == 1 else next((t for t in siblings if t == module(model)), None)
        if source is not None and recipe(model) == recipe(source):
            out[model] = source
    return out


def _recipe_of(params: dict, model: str) -> dict:
    return _recipes(params).get(f"train.per_model.{model}", params["train"])


def _validation_problems(params: dict) -> list[str]:
    """The validation split (train.validation, and every run of the tune experiment) holds out a tenth of
    each class, at least one image: the synthetic fixture must keep images to train on, a batch's worth."""
    data = params["data"]
    uses = {where: recipe for where, recipe in _recipes(params).items() if recipe["validation"]}
    if enabled(params, TUNE):
        uses |= {f"experiments.{TUNE} ({m})": _recipe_of(params, m) for m in params["experiments"][TUNE]["models"]}
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
    for where, recipe in _recipes(params).items():
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
    n_train = 100 * data["synthetic"]["train_per_class"] if data["source"] == "synthetic" else CIFAR100_TRAIN_IMAGES
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


# ---------------------------------------------------------------- one run


def dataset(params: dict) -> dict:
    """What the training data IS, by content: the archive (its md5, or the fixture's recipe and
    generator code) and the code that turns it into tensors. Its id names the packed data, so
    different data, the demo's and the real, never share a file; `archive` names the archive, which
    the code does not change."""
    from msga.codedeps import code_hash, data_pipeline_files, step_files

    data, pipeline = params["data"], code_hash(data_pipeline_files())[:8]
    if data["source"] == "synthetic":
        s = data["synthetic"]
        generator = code_hash(step_files("synthesize"))
        archive = f"synthetic-{s['train_per_class']}x{s['test_per_class']}-seed{s['seed']}-{generator[:8]}"
        return {"id": f"{archive}-{pipeline}", "archive": archive, "source": "synthetic", **s,
                "generator": generator, "pipeline": pipeline}
    archive = f"cifar100-{data['md5'][:12]}"
    return {"id": f"{archive}-{pipeline}", "archive": archive, "source": "cifar100", "md5": data["md5"],
            "pipeline": pipeline}


def resolve_run(params: dict, run: Run | str, overrides: dict[str, Any] | None = None) -> dict:
    """The complete configuration of one run: what its job trains and its metrics.json records.

    `overrides` (dotted keys: model.*, train.*, noise.*) default to the run's own variant. The
    recipe is params' train section, then the model's train.per_model entry, then the run's own
    train.* overrides; validated together, so a run cannot break a rule a params file could not.
    """
    from msga.runs import variant_overrides

    run = Run.parse(run) if isinstance(run, str) else run
    if run.model not in params["models"]:
        raise ParamsError(f"model '{run.model}' has no entry under models (known: {', '.join(params['models'])})")
    per_model = dict(params["train"]["per_model"].get(run.model, {}))
    overrides = variant_overrides(run.variant) if overrides is None else overrides
    if overrides:  # params themselves were validated by the caller; overridden ones are checked again
        params = _with_overrides(params, run.model, overrides)
    train = {k: v for k, v in params["train"].items() if k != "per_model"} | params["train"]["per_model"].get(run.model, {})
    return {
        "run": run.id,
        "model": {"name": run.model, **params["models"][run.model]},
        "train": train,
        "per_model_overrides": per_model,
        "noise": dict(params["noise"]),
        "data": dataset(params),
        "seed": run.seed,
        "overrides": dict(overrides),
    }


def _with_overrides(params: dict, model: str, overrides: dict[str, Any]) -> dict:
    """Write a run's overrides into a copy of params and revalidate: model.* into the model's
    sizes, train.* into its train.per_model entry (so they win over it), noise.* into noise."""
    params = copy.deepcopy(params)
    for dotted, value in overrides.items():
        section, _, leaf = dotted.partition(".")
        if section not in ("model", "train", "noise") or not leaf or "." in leaf:
            raise ParamsError(f"override {dotted}: keys are model.<key>, train.<key> or noise.<key> (e.g. model.heads)")
        if section == "model":
            node = params["models"][model]
        elif section == "train":
            node = params["train"]["per_model"].setdefault(model, {})
        else:
            node = params["noise"]
        node[leaf] = value
    return validate_params(params, source=f"params with the overrides of a run of {model}: {overrides}")


def config_differences(recorded: dict, current: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two configurations, as 'key: old -> new'."""
    out = []
    for key in sorted(set(recorded) | set(current), key=str):
        old, new = recorded.get(key, "<absent>"), current.get(key, "<absent>")
        if isinstance(old, dict) and isinstance(new, dict):
            out += config_differences(old, new, f"{prefix}{key}.")
        elif old != new:
            out.append(f"{prefix}{key}: {old!r} -> {new!r}")
    return out


# ---------------------------------------------------------------- the grid


@dataclass
class Grid:
    """Every run of params' experiments, each resolved once."""

    params: dict
    experiments: dict[str, list[Run]] = field(default_factory=dict)  # the same Run may be in several
    configs: dict[str, dict] = field(default_factory=dict)  # run id -> resolved configuration

    @property
    def runs(self) -> list[Run]:
        return sorted({run for runs in self.experiments.values() for run in runs})

    def key(self, run: Run) -> str:
        return run_key(self.configs[run.id])

    def folder(self, run: Run, root: str = "results/runs") -> str:
        return run.folder(self.key(run), root)

    def shared(self) -> dict[str, list[str]]:
        """Run id -> the experiments it serves, for runs that serve more than one."""
        out: dict[str, list[str]] = {}
        for exp, runs in self.experiments.items():
            for run in runs:
                out.setdefault(run.id, []).append(exp)
        return {run: exps for run, exps in out.items() if len(exps) > 1}

    def to_json(self) -> str:
        return json.dumps({"params": self.params, "dataset": dataset(self.params),
                           "experiments": {e: [r.id for r in runs] for e, runs in self.experiments.items()},
                           "configs": self.configs}, sort_keys=True, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Grid:
        raw = json.loads(text)
        return cls(raw["params"], {e: [Run.parse(r) for r in ids] for e, ids in raw["experiments"].items()},
                   raw["configs"])


def enabled(params: dict, experiment: str) -> bool:
    spec = params["experiments"].get(experiment)
    return spec is not None and spec.get("enabled", True)


def _as_trained(config: dict) -> str:
    """A run's configuration as training sees it: the effective learning rate, not how it was
    written (lr and lr_scaling), and not the run's name."""
    train = {k: v for k, v in config["train"].items() if k not in ("lr", "lr_scaling")}
    return json.dumps({**config, "run": None, "overrides": None, "per_model_overrides": None,
                       "train": {**train, "effective_lr": scaled_lr(config["train"])}}, sort_keys=True)


def build_grid(params: dict) -> Grid:
    """Resolve every run of the enabled experiments. An override equal to the base configuration
    is dropped, and a run that trains exactly as another run (same configuration as training sees
    it) IS that run: a sweep's default point is the base run, one job serves Table 1 and the
    sweeps, and a fixed-learning-rate arm meets the base run at the base batch size."""
    grid = Grid(params)
    exps = params["experiments"]
    bases: dict[str, dict] = {}
    trained: dict[str, Run] = {}  # configuration as trained -> the run that trains it

    def base(model: str) -> dict:
        if model not in bases:
            bases[model] = resolve_run(params, Run(model, BASE_VARIANT, 0), {})
        return bases[model]

    def add(exp: str, model: str, seed: int, overrides: dict) -> None:
        kept = {k: v for k, v in overrides.items() if _at(base(model), k) != v}
        run = Run(model, variant_name(kept), seed)
        config = grid.configs.get(run.id) or resolve_run(params, run, kept)
        run = trained.setdefault(_as_trained(config), run)  # an earlier run that trains the same, if any
        grid.experiments.setdefault(exp, []).append(run)
        grid.configs.setdefault(run.id, config)

    for exp in MODEL_SETS:
        if enabled(params, exp):
            for model in exps[exp]["models"]:
                for seed in exps[exp]["seeds"]:
                    add(exp, model, seed, {})
    for exp, sweep in SWEEPS.items():
        if enabled(params, exp):
            for value in exps[exp]["values"]:
                for seed in exps[exp]["seeds"]:
                    model = exps[exp]["model"]
                    add(exp, model, seed, sweep.overrides(value, scaled_lr(base(model)["train"])))
    if enabled(params, TUNE):
        for model in exps[TUNE]["models"]:
            for lr in exps[TUNE]["values"]:
                for seed in exps[TUNE]["seeds"]:
                    add(TUNE, model, seed, {"train.lr": lr, "train.validation": True})
    return grid


def _at(config: dict, dotted: str):
    """A run configuration's value at model.*, train.* or noise.*."""
    section, _, leaf = dotted.partition(".")
    return config[section].get(leaf)
