"""One registry, one face: every model maps (B, 3, 32, 32) float -> (B, num_classes) logits.

    build_model("msga", num_classes=100, heads=8)

A model is registered with the row of the paper's Table 1 it stands for; tests are
parametrized over `list_models()`, so registering a model is what gets it tested.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch.nn as nn


@dataclass(frozen=True)
class ModelEntry:
    name: str
    paper_row: str  # the row of Table 1 (or the ablation) this model replicates
    builder: Callable[..., nn.Module]


_REGISTRY: dict[str, ModelEntry] = {}


def register(name: str, paper_row: str):
    def wrap(builder: Callable[..., nn.Module]):
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = ModelEntry(name, paper_row, builder)
        return builder

    return wrap


def list_models() -> list[str]:
    return list(_REGISTRY)


def model_entry(name: str) -> ModelEntry:
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; registered: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def build_model(name: str, num_classes: int = 100, **overrides) -> nn.Module:
    """Build a registered model; `overrides` are its size arguments (params.yaml models.<name>)."""
    return model_entry(name).builder(num_classes=num_classes, **overrides)


# Registration happens on import; the order is the order of Table 1, then the ablations.
from msga.models import mlp_mixer, convnext, cnn_lstm, crossvit, msga  # noqa: E402,F401
