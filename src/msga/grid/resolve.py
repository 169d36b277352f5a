"""Validated params -> the experiment grid -> each run's resolved configuration.

The DAG resolves every run here ONCE and hands the job that configuration as a file; the job
trains exactly it and records it. Aggregation resolves the same grid to tell current runs from
stale ones. Torch-free, so validation and the light commands start fast.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from msga.grid.codedeps import code_hash, data_pipeline_files, step_files
from msga.grid.experiments import MODEL_SETS, SWEEPS, TUNE, enabled
from msga.grid.keys import run_key
from msga.grid.params import validate_params
from msga.grid.paths import RUNS_ROOT
from msga.grid.reading import ParamsError
from msga.grid.recipe import scaled_lr
from msga.grid.runs import BASE_VARIANT, Run, variant_name, variant_overrides

# ---------------------------------------------------------------- one run


def dataset(params: dict) -> dict:
    """What the training data IS, by content: the archive (its md5, or the fixture's recipe and
    generator code) and the code that turns it into tensors. Its id names the packed data, so
    different data, the demo's and the real, never share a file; `archive` names the archive, which
    the code does not change."""
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

    def folder(self, run: Run, root: str = RUNS_ROOT) -> str:
        return run.folder(self.key(run), root)

    def serves(self) -> dict[Run, list[str]]:
        """Each run -> the experiments it serves, in the grid's order of experiments; sorted by run."""
        out: dict[Run, list[str]] = {}
        for exp, runs in self.experiments.items():
            for run in runs:
                out.setdefault(run, []).append(exp)
        return dict(sorted(out.items()))

    def shared(self) -> dict[str, list[str]]:
        """Run id -> the experiments it serves, for runs that serve more than one."""
        return {run.id: exps for run, exps in self.serves().items() if len(exps) > 1}

    def to_json(self) -> str:
        """The grid as the aggregation reads it: params without the devices section, which no result
        depends on (a change of runs per GPU re-aggregates nothing)."""
        params = {k: v for k, v in self.params.items() if k != "devices"}
        return json.dumps({"params": params, "dataset": dataset(self.params),
                           "experiments": {e: [r.id for r in runs] for e, runs in self.experiments.items()},
                           "configs": self.configs}, sort_keys=True, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Grid:
        raw = json.loads(text)
        return cls(raw["params"], {e: [Run.parse(r) for r in ids] for e, ids in raw["experiments"].items()},
                   raw["configs"])


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
        kept = {k: v for k, v in overrides.items() if setting(base(model), k) != v}
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


def setting(config: dict, dotted: str):
    """A run configuration's value at model.*, train.* or noise.*."""
    section, _, leaf = dotted.partition(".")
    return config[section].get(leaf)
