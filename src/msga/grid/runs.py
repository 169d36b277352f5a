"""A run of the grid: (model, variant, seed). Its id, its variant's name and their parsing live
here and nowhere else; its folder's pattern is msga.grid.paths'. Torch-free.

A run's files live in results/runs/MODEL/VARIANT/seedN/KEY/, KEY naming the content of what it
trained (its configuration and its code): a changed configuration is trained into a new folder
and the old results stay; whether a run is done is whether its folder for the current key is
complete, which needs neither file times nor Snakemake's records (a fresh clone after `dvc pull`
has neither).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from msga.grid.paths import ID_PATTERN, RUNS_ROOT, run_folder

# What a run's variant may override: its short name in run paths (heads=4) -> the dotted keys of
# the run's configuration it sets, all to the same value.
VARIANT_KEYS = {
    "heads": ("model.heads",),
    "batch_size": ("train.batch_size",),
    "lr_scaling": ("train.lr_scaling",),
    "sigma": ("noise.train_sigma", "noise.test_sigma"),  # the same noise in training and at test
    "test_sigma": ("noise.test_sigma",),
    "lr": ("train.lr",),
    "val": ("train.validation",),
}
# The columns of the run table that say where a run sits in the sweeps: column -> dotted key; every
# key a variant may set, named by its leaf (train.validation: validation).
COORDINATES = {dotted.rpartition(".")[2]: dotted for keys in VARIANT_KEYS.values() for dotted in keys}
BASE_VARIANT = "base"  # the run at the configuration params.yaml gives, no sweep override
_ID = re.compile(r"^(?P<model>[A-Za-z0-9_]+)/(?P<variant>[^/\s]+)/seed(?P<seed>[0-9]+)$")


class RunIdError(ValueError):
    pass


@dataclass(frozen=True, order=True)
class Run:
    model: str
    variant: str
    seed: int

    @property
    def id(self) -> str:
        return ID_PATTERN.format(model=self.model, variant=self.variant, seed=self.seed)

    def folder(self, key: str, root: str = RUNS_ROOT) -> str:
        """The folder of this run trained with the configuration and code that `key` names."""
        return run_folder(self.id, key, root)

    def base_folder(self, root: str = RUNS_ROOT) -> str:
        """The folder holding one subfolder per key this run was ever trained with."""
        return f"{root}/{self.id}"

    @classmethod
    def parse(cls, text: str) -> Run:
        """'msga/heads=4/seed0' -> Run('msga', 'heads=4', 0)."""
        match = _ID.match(text.strip().strip("/"))
        if not match:
            raise RunIdError(f"{text!r} is not a run id: expected MODEL/VARIANT/seedN, e.g. msga/heads=4/seed0")
        return cls(match["model"], match["variant"], int(match["seed"]))


def format_value(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def variant_name(overrides: dict[str, Any]) -> str:
    """{dotted key: value} -> 'heads=4' or 'lr=0.001,val=True' (parts sorted) or 'base'.

    A variant key that sets several dotted keys (sigma: train and test noise) names them only
    when all are overridden to one value; what no key names is an error.
    """
    remaining = dict(overrides)
    parts = []
    for short, keys in VARIANT_KEYS.items():  # sigma before test_sigma: the wider name first
        if all(k in remaining for k in keys) and len({repr(remaining[k]) for k in keys}) == 1:
            parts.append(f"{short}={format_value(remaining[keys[0]])}")
            for k in keys:
                del remaining[k]
    if remaining:
        known = "; ".join(f"{short} sets {' and '.join(keys)}" for short, keys in VARIANT_KEYS.items())
        raise RunIdError(f"overrides {sorted(remaining)}: no variant key names them ({known})")
    return ",".join(sorted(parts)) or BASE_VARIANT


def variant_overrides(variant: str) -> dict[str, Any]:
    """'heads=4' -> {'model.heads': 4}; 'base' -> {}. For runs named by hand; the DAG never parses
    values back from text, it looks runs up in the grid."""
    if variant == BASE_VARIANT:
        return {}
    out = {}
    for part in variant.split(","):
        short, sep, text = part.partition("=")
        if not sep or short not in VARIANT_KEYS:
            raise RunIdError(f"variant {variant!r}: {part!r} is not KEY=VALUE with KEY one of {', '.join(VARIANT_KEYS)}")
        value = yaml.safe_load(text)
        if isinstance(value, str):  # YAML 1.1 leaves 8e-3 a string
            try:
                value = float(value)
            except ValueError:
                pass
        out.update({key: value for key in VARIANT_KEYS[short]})
    return out
