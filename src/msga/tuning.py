"""The tune experiment's winners, written into a params file for the user to review and commit.

The learning rates are picked on the validation split (train.validation); writing them into
train.per_model makes them part of params.yaml, so Table 1's runs and their record say which
learning rate each model trained with, and a rerun trains them. Models that are not tuned but
are another size or a control of a tuned one (config.lr_sources: the ablation's models, the
compute-matched baselines) get that model's winner too, so no block compares tuned models with
untuned ones. Comments in the file are kept.
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from msga.config import ParamsError, load_params, lr_sources, merge, unambiguous, validate_params
from msga.io import write_text_atomic


def winners(tune_csv: str | Path) -> dict[str, float]:
    """Each tuned model's best learning rate (per 256 images), from reports/tune.csv."""
    path = Path(tune_csv)
    if not path.is_file():
        raise ParamsError(f"{path} does not exist: run the tune experiment and `msga aggregate` first")
    table = pd.read_csv(path)
    if table.empty:
        raise ParamsError(f"{path} holds no tune runs: enable experiments.tune and run the DAG")
    best = table[table["best"].astype(bool)]
    return {str(m): float(lr) for m, lr in zip(best["model"], best["lr"])}


def inherited(params: dict, best: dict[str, float]) -> dict[str, tuple[str, float]]:
    """Each untuned model that trains at a tuned model's winner -> (that model, its winner)."""
    return {model: (source, best[source]) for model, source in lr_sources(params, best).items()}


def apply(params_path: str | Path, best: dict[str, float]) -> list[str]:
    """Set train.per_model.<model>.lr to each winner in the params file, and to its source's winner
    for each model that inherits one; returns what changed. The edited params are validated before
    the file is replaced."""
    from ruamel.yaml import YAML

    yaml = YAML()  # round trip: comments and layout stay
    yaml.representer.add_representer(float, _yaml11_float)
    path = Path(params_path)
    doc = yaml.load(path.read_text())
    per_model = doc["train"].setdefault("per_model", {})
    rates = {model: (lr, "") for model, lr in best.items()}
    rates |= {model: (lr, f" ({source}'s winner)")
              for model, (source, lr) in inherited(load_params(path), best).items()}
    changes = []
    for model, (lr, why) in sorted(rates.items()):
        entry = per_model.setdefault(model, {})
        if entry.get("lr") != lr:
            changes.append(f"train.per_model.{model}.lr: {entry.get('lr', 'train.lr')} -> {lr:g}{why}")
            entry["lr"] = lr
    out = io.StringIO()
    yaml.dump(doc, out)
    import yaml as pyyaml

    validate_params(merge({}, pyyaml.safe_load(out.getvalue())), source=f"{path} with the tuned learning rates")
    if changes:
        write_text_atomic(path, out.getvalue())
    return changes


def _yaml11_float(representer, value: float):
    """A float that YAML 1.1 readers (PyYAML, Snakemake) and 1.2 readers (DVC) read alike: 1e-06 would
    be text to the first; 1.0e-06 is a number to both."""
    return representer.represent_scalar("tag:yaml.org,2002:float", unambiguous(value))
