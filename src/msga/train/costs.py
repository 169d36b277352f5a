"""A model's parameters and forward FLOPs per image, counted once per model, sizes and code.

Counting FLOPs traces the model (msga.models.cost: about 1.5 s for msga on a CPU), which every
training job paid at its start and `msga models` paid for every model. The count depends only on
the model's name, its sizes and the code that builds and counts it, so it is kept in a small file
named by the hash of all three (paths.COSTS): the next job or command of the same model reads it.
A file that is not a count this code wrote is ignored and counted anew.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from msga.grid.codedeps import run_code_hash
from msga.grid.params import is_finite_number
from msga.grid.paths import COSTS
from msga.infra.atomic import WriteFailed, write_json_atomic

MAX_BYTES = 1_000  # a cost file holds two numbers


def cost_key(name: str, sizes: dict, num_classes: int) -> str:
    """What a count depends on: the model, its sizes, its classes and the code of its runs (cost.py
    included)."""
    text = json.dumps([name, sizes, num_classes, run_code_hash(name)], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _cached(path: Path) -> dict | None:
    try:
        if path.stat().st_size > MAX_BYTES:
            return None
        value = json.loads(path.read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    ok = isinstance(value, dict) and all(is_finite_number(value.get(k)) and value[k] > 0 for k in ("params", "flops"))
    return value if ok else None


def model_costs(name: str, sizes: dict, num_classes: int = 100, model=None, folder: str | Path = COSTS) -> tuple[int, int]:
    """(parameters, forward FLOPs per 32x32 image) of model `name` at `sizes`; `model`, when given,
    is that model already built (counted without building it again)."""
    path = Path(folder) / f"{name}-{cost_key(name, sizes, num_classes)}.json"
    cached = _cached(path)
    if cached is not None:
        return int(cached["params"]), int(cached["flops"])
    from msga.models import build_model
    from msga.models.cost import count_params, forward_flops

    model = model if model is not None else build_model(name, num_classes=num_classes, **sizes)
    counted = {"params": count_params(model), "flops": forward_flops(model)}
    try:
        write_json_atomic(path, counted)
    except (OSError, WriteFailed):  # a read-only folder: the count stands, it is only not kept
        pass
    return counted["params"], counted["flops"]
