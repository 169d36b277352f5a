"""Which package files each step of the DAG runs, derived from the import graph. As a rule param
or a part of an output's name, their hash reruns exactly the steps whose code changed
(Snakemake's own code trigger sees only the rule's shell line); the DVC stages list the same
files as deps, and a test keeps the two equal. Torch-free: the graph is read from the sources
(ast), nothing is imported.

A step's files are its entry modules (what its `msga` command calls; the command line itself,
src/msga/cli.py, only parses arguments and dispatches) and every msga module they import,
transitively, with the packages' __init__.py files that importing runs. Imports inside functions
count too: whether a step calls that function is not known statically, so the set errs on the
side of rerunning. The one import not in the sources, a model's module (msga.models.build_model
imports it by name), is added per run: a run depends on its own model's code, never on another's.
"""

from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path

from msga.models import list_models, model_entry

PACKAGE = Path(__file__).resolve().parents[1]  # src/msga

# What each step's command calls (src/msga/cli.py). Obtaining CIFAR-100 has none: its md5 pins
# the archive's content.
STEPS = {
    "synthesize": ("data/synthetic.py",),  # msga synth: the fixture archive
    "verify": ("data/archive.py",),  # msga verify
    "extract": ("data/archive.py",),  # msga extract
    "pack": ("data/cifar.py",),  # msga pack
    "train": ("train/loop.py", "data/cifar.py"),  # msga train: load_packed, train_run; and the run's model
    "aggregate": ("results/aggregate.py",),  # msga aggregate
    "report": ("report/notebook.py", "report/sections.py"),  # msga report, and the notebook it runs (a test checks)
}
DATA_PIPELINE = ("verify", "extract", "pack")  # from a verified archive to the packed tensors: names the data
# The models' catalog is data: a run hashes its own entry (what builds it), not the file, so adding
# or editing another model's entry retrains nothing else.
CATALOG = "models/catalog.py"
# The code by which the DAG names every output (workflow/rules/common.smk): the grid, each run's
# configuration and key, the dataset id, the aggregation's files. Snakemake needs no trigger for
# it (a change renames the outputs, and the new names are missing), but a DVC stage reruns
# Snakemake only when one of its deps changed, so every stage lists it.
DAG = ("grid/resolve.py", "grid/paths.py")
# Modules that name, guard or record a step's work but cannot change what it computes: the code
# hashing itself, keys, and msga.infra (the folder lock, provenance, failure messages, Ctrl-C
# handling, atomic writes). A step's hash leaves them out, so an edit of one (an error message,
# the lock's heartbeat) reruns nothing; the modules they import are still followed. Outputs they
# name are renamed by the DAG code (DAG, above), whose files every DVC stage lists in full.
NO_EFFECT = frozenset({"grid/codedeps.py", "grid/keys.py",
                       *(f"infra/{path.name}" for path in (PACKAGE / "infra").glob("*.py"))})
DVC_STAGES = {"data": ("synthesize", *DATA_PIPELINE), "train": ("train",), "aggregate": ("aggregate",),
              "report": ("report",)}

_parsed: dict[tuple, frozenset[str]] = {}  # (file, mtime, size) -> the modules it imports


def module_file(package: Path, module: str) -> str | None:
    """'msga.data.loader' -> 'data/loader.py'; a package -> its __init__.py; None if not msga's."""
    parts = module.split(".")
    if parts[0] != "msga":
        return None
    rel = "/".join(parts[1:])
    for candidate in (f"{rel}.py", f"{rel}/__init__.py" if rel else "__init__.py"):
        if (package / candidate).is_file():
            return candidate
    return None


def _dotted(rel: str) -> str:
    """'data/loader.py' -> 'msga.data.loader'; 'models/__init__.py' -> 'msga.models'."""
    parts = ["msga", *rel.removesuffix(".py").split("/")]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(package: Path, rel: str) -> frozenset[str]:
    """The modules `rel` names in its import statements (anywhere in it), absolute; for
    `from X import name`, also X.name, which is a module when name is a submodule."""
    path = package / rel
    stat = path.stat()
    cache_key = (str(path), stat.st_mtime_ns, stat.st_size)
    if cache_key not in _parsed:
        names = set()
        for node in ast.walk(ast.parse(path.read_bytes(), filename=str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = absolute_module(rel, node.module, node.level)
                names.add(base)
                names.update(f"{base}.{alias.name}" for alias in node.names)
        _parsed[cache_key] = frozenset(names)
    return _parsed[cache_key]


def absolute_module(rel: str, module: str | None, level: int) -> str:
    """The module `from <level dots><module> import ...` in file `rel` names."""
    if not level:
        return module or ""
    package = _dotted(rel).split(".")
    if not rel.endswith("__init__.py"):
        package = package[:-1]  # a module's relative imports start from its package
    return ".".join([*package[:len(package) - level + 1], *([module] if module else [])])


def closure(entries: tuple[str, ...], package: Path | None = None) -> tuple[str, ...]:
    """The files (relative to src/msga) that importing `entries` runs: they, the msga modules they
    import, transitively, and each one's enclosing packages' __init__.py."""
    package = package or PACKAGE
    seen: set[str] = set()
    todo = [_dotted(rel) for rel in entries]
    while todo:
        parts = todo.pop().split(".")
        for depth in range(1, len(parts) + 1):  # msga, msga.data, msga.data.loader: each one runs
            rel = module_file(package, ".".join(parts[:depth]))
            if rel and rel not in seen:
                seen.add(rel)
                todo.extend(sorted(_imports(package, rel)))
    return tuple(sorted(seen))


def step_files(step: str) -> tuple[str, ...]:
    """The files a step of the DAG runs that can change what it computes (a training run: see run_files)."""
    return tuple(f for f in closure(STEPS[step]) if f not in NO_EFFECT)


def data_pipeline_files() -> tuple[str, ...]:
    return tuple(sorted({f for step in DATA_PIPELINE for f in step_files(step)}))


def run_files(model: str) -> tuple[str, ...]:
    """The files a training run of `model` runs: the training loop's and its model module's, the
    catalog left out (run_code_hash hashes the run's own entry instead)."""
    files = closure((*STEPS["train"], f"models/{model_entry(model).module}.py"))
    return tuple(f for f in files if f != CATALOG and f not in NO_EFFECT)


def run_code_hash(model: str) -> str:
    """The code a training run of `model` runs: its files and its catalog entry's build fields."""
    entry = model_entry(model)
    build = json.dumps({"module": entry.module, "builder": entry.builder}, sort_keys=True)
    return hashlib.sha256((code_hash(run_files(model)) + build).encode()).hexdigest()[:16]


def dvc_stage_files(stage: str) -> tuple[str, ...]:
    """The files under src/msga that dvc.yaml's `stage` lists as deps: the code its steps hash
    (for training, every model's runs and the catalog) and the code that names the DAG's outputs."""
    files = set(closure(DAG))
    for step in DVC_STAGES[stage]:
        files.update({CATALOG, *(f for m in list_models() for f in run_files(m))} if step == "train"
                     else step_files(step))
    return tuple(sorted(files))


def code_hash(files: tuple[str, ...]) -> str:
    """A short hash of the files' contents (and names, so a move counts)."""
    digest = hashlib.sha256()
    for rel in sorted(set(files)):
        digest.update(rel.encode() + b"\0" + (PACKAGE / rel).read_bytes() + b"\0")
    return digest.hexdigest()[:16]
