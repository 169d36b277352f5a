"""The model registry: every model has the same face, (B, 3, 32, 32) -> (B, num_classes) logits.

    build_model("msga", num_classes=100, heads=8)

The models are catalogued in msga.models.catalog; this module and the catalog are torch-free, so
validation, the DAG and the report know the models without importing torch; `build_model`
imports a model's module only when it is built. Tests are parametrized over `list_models()`, so
cataloguing a model is what gets it tested.
"""

from __future__ import annotations

import importlib

from msga.models.catalog import CATALOG, ModelEntry

_REGISTRY = {entry.name: entry for entry in CATALOG}


def list_models() -> list[str]:
    return list(_REGISTRY)


def model_entry(name: str) -> ModelEntry:
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; registered: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def build_model(name: str, num_classes: int = 100, **sizes):
    """Build a registered model; `sizes` are its size arguments (params.yaml models.<name>)."""
    entry = model_entry(name)
    builder = getattr(importlib.import_module(f"msga.models.{entry.module}"), entry.builder)
    return builder(num_classes=num_classes, **sizes)
