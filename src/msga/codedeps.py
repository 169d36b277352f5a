"""Which package files each step of the DAG runs. As a rule param, their hash reruns exactly the
steps whose code changed (Snakemake's own code trigger sees only the rule's shell line); the DVC
stages list the same files as deps, and a test keeps the two in agreement. Torch-free."""

from __future__ import annotations

import hashlib
from pathlib import Path

from msga.models import model_entry

PACKAGE = Path(__file__).resolve().parent  # src/msga

SYNTHESIZE = ("data/synthetic.py", "data/format.py")  # obtaining CIFAR-100 has none: its md5 pins its content
VERIFY = ("data/archive.py", "data/format.py")
EXTRACT = ("data/archive.py", "data/format.py")
PACK = ("data/cifar.py", "data/format.py")
DATA_PIPELINE = (*VERIFY, *EXTRACT, *PACK)  # from a verified archive to the packed tensors: names the data
TRAIN = ("train.py", "evaluate.py", "data/loader.py", "data/augment.py", "models/cost.py", "recipe.py")  # every run; plus its model's files
AGGREGATE = ("aggregate.py", "plots.py", "claims.py", "consistency.py", "metrics.py", "experiments.py", "runfiles.py", "outputs.py", "config.py")
REPORT = ("report.py", "report_page.py", "metrics.py")


def run_files(model: str) -> tuple[str, ...]:
    """The files a training run of `model` executes: the training loop and its model's own code."""
    return (*TRAIN, *(f"models/{f}" for f in model_entry(model).files))


def code_hash(files: tuple[str, ...]) -> str:
    """A short hash of the files' contents (and names, so a move counts)."""
    digest = hashlib.sha256()
    for rel in sorted(set(files)):
        digest.update(rel.encode() + b"\0" + (PACKAGE / rel).read_bytes() + b"\0")
    return digest.hexdigest()[:16]
