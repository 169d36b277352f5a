"""A run's configuration as content: its hash and its key. Apart from msga.grid.resolve, which
builds the grid, because a training job needs these two and nothing of the rest: the code
a run hashes (msga.grid.codedeps) is what its job imports, so what the job does not import cannot
retrain it. Torch-free."""

from __future__ import annotations

import hashlib
import json

from msga.grid.codedeps import run_code_hash


def config_hash(config) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def run_key(config: dict) -> str:
    """What a run trained, by content: its configuration and the code it runs (the training loop
    and its model's own code). Names its folder: another key is another training."""
    return config_hash([config, run_code_hash(config["model"]["name"])])[:12]
