# Helpers of the DAG: params validated once, the grid resolved once, content keys, input functions.
import json
import sys
from functools import cache
from pathlib import Path

from snakemake.exceptions import WorkflowError

from msga import codedeps, folderlock
from msga.config import build_grid, config_hash, dataset, merge, read_yaml, resolve_run, typed, validate_params
from msga.experiments import VARIANT_KEYS
from msga.io import write_text_atomic
from msga.models import list_models
from msga.runs import PATTERN, Run

# One Snakemake at a time in this folder (msga.folderlock): a second one is refused, naming the
# running one, before Snakemake does anything; a lock a dead Snakemake left is cleared. Jobs that
# Snakemake itself runs as subprocesses or on a cluster belong to the running one: not guarded.
if workflow.is_main_process:
    try:
        _note = folderlock.claim()
    except folderlock.FolderBusy as busy:
        raise WorkflowError(f"msga: {busy}") from None
    if _note:
        print(_note, file=sys.stderr)


# Snakemake's own YAML reading keeps the last of two equal keys and expands aliases without
# limit: every params file it merged is read again, strictly, so such a file fails here, named.
for _file in [*workflow.configfiles, *getattr(workflow, "overwrite_configfiles", [])]:
    read_yaml(_file)

# The one validation (schema with its defaults, then the cross-field rules) and the one resolution
# of every run. Everything below, and every job, derives from these.
_CLI_CONFIG = typed(dict(workflow.config_settings.config))  # --config, whose nested values Snakemake leaves as text
PARAMS = validate_params(merge(config, _CLI_CONFIG), source="params (params.yaml + any --configfile and --config)")
GRID = build_grid(PARAMS)
DATASET = dataset(PARAMS)


wildcard_constraints:
    model="|".join(list_models()),
    variant="base|(" + "|".join(VARIANT_KEYS) + ")=[^/,]+(,(" + "|".join(VARIANT_KEYS) + ")=[^/,]+)*",
    seed=r"\d+",


# Staleness is decided by content, never by file times (profiles/default drops the mtime trigger):
# every rule carries as params what its outputs depend on (configuration, data identity, code
# hashes). A DVC checkout or pull, a copy or a move of the repository rewrites file times; none
# of them retrains anything.


def code(files):
    return codedeps.code_hash(tuple(files))


def content_key(*parts) -> str:
    return config_hash(list(parts))


# Params that are text go through functions: Snakemake would read {...} in a plain string as a
# wildcard (a URL holding "{" or "${IFS}" fails the DAG, or worse).


def data_url(wildcards) -> str:
    return PARAMS["data"]["url"]


def local_tarball(wildcards) -> str:
    return PARAMS["data"]["tarball"]  # validation refused braces: Snakemake expands {...} in input paths


def grid_json(wildcards) -> str:
    return GRID.to_json()


# ---------------------------------------------------------------- data


def extraction_folder(wildcards, output) -> str:
    return str(Path(output[0]).parents[1])  # the folder that receives cifar-100-python/


def extracted_root(wildcards, input) -> str:
    return str(Path(input.raw[0]).parents[1])


# ---------------------------------------------------------------- runs


def run_outputs(name):
    """Every run's file `name` (metrics.json, history.jsonl)."""
    return [f"{run.folder()}/{name}" for run in GRID.runs]


@cache
def _run_config(model, variant, seed) -> dict:
    run = Run(model, variant, int(seed))
    # a run outside the grid, asked for by its path, is resolved from its variant the same way
    return GRID.configs.get(run.id) or resolve_run(PARAMS, run)


def run_config_json(wildcards) -> str:
    return json.dumps(_run_config(wildcards.model, wildcards.variant, wildcards.seed), indent=1, sort_keys=True) + "\n"


def run_config_key(wildcards) -> str:
    return config_hash(_run_config(wildcards.model, wildcards.variant, wildcards.seed))


@cache
def _run_code(model) -> str:
    return code(codedeps.run_files(model))


def run_code(wildcards) -> str:
    return _run_code(wildcards.model)


def run_folder(wildcards, output) -> str:
    return str(Path(output.metrics).parent)


# What every result of the grid depends on: each run's configuration and code. A change to
# either reruns the aggregation and the report even when it happened in an earlier invocation.
RESULTS_KEY = content_key(GRID.configs, sorted({_run_code(run.model) for run in GRID.runs}))
