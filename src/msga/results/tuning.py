"""The tune experiment: its table (validation ACC per model and learning rate, the winners marked),
the models that inherit a winner, and the winners written into a params file for the user to
review and commit.

The learning rates are picked on the validation split (train.validation); writing them into
train.per_model makes them part of params.yaml, so Table 1's runs and their record say which
learning rate each model trained with, and a rerun trains them. Models that are not tuned but
are another size or a control of a tuned one (msga.grid.rates.lr_sources: the ablation's models, the
compute-matched baselines) get that model's winner too, so no block compares tuned models with
untuned ones. Comments in the file are kept.
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from msga.grid.experiments import TUNE
from msga.grid.params import load_params, validate_params
from msga.grid.rates import lr_sources
from msga.grid.reading import ParamsError, merge, unambiguous
from msga.infra.atomic import write_text_atomic

TUNE_COLUMNS = ["model", "lr", "val_acc_mean", "val_acc_std", "n_seeds", "best", "table1_lr", "params",
                "flops_per_image"]


def tune_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Validation accuracy per model and learning rate (per 256 images), the best one marked, beside
    the learning rate Table 1's runs trained with and the model's costs (a learning rate changes
    no cost, so the tune runs' own serve)."""
    part = runs[runs.experiment == TUNE] if not runs.empty else runs
    if part.empty:
        return pd.DataFrame(columns=TUNE_COLUMNS)
    table1_lr = runs[runs.experiment == "table1"].groupby("model")["lr"].first()
    grouped = part.groupby(["model", "lr"], sort=True)["acc"]
    out = pd.DataFrame({"val_acc_mean": grouped.mean(), "val_acc_std": grouped.std(ddof=1),
                        "n_seeds": grouped.count()}).reset_index()
    best = out.loc[out.groupby("model")["val_acc_mean"].idxmax(), ["model", "lr"]]  # ties: the smaller lr
    out["best"] = out.set_index(["model", "lr"]).index.isin(best.set_index(["model", "lr"]).index)
    out["table1_lr"] = out["model"].map(table1_lr)
    costs = part.groupby("model")[["params", "flops_per_image"]].first()
    out = out.join(costs, on="model")
    return out[TUNE_COLUMNS]


def inherited_rates(params: dict, tried: pd.DataFrame, runs: pd.DataFrame) -> list[dict]:
    """Each model that trains at a tuned model's winner (msga.grid.rates.lr_sources): the winner, and the
    learning rate its base runs trained with (None where none ran), so the report can say whether
    every block compares models tuned alike."""
    best = tried[tried["best"].astype(bool)].set_index("model")["lr"] if not tried.empty else {}
    base = runs[runs.variant == "base"].groupby("model")["lr"].first() if not runs.empty else pd.Series(dtype=float)
    out = []
    for model, source in lr_sources(params, list(best.index) if len(best) else []).items():
        trained = base.get(model)
        out.append({"model": model, "source": source, "winner": float(best[source]),
                    "trained": None if trained is None or pd.isna(trained) else float(trained)})
    return out


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
