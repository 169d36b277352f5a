# Helpers of the DAG: params validated once, the grid resolved once, content keys, input functions.
# Whether a job must run is staleness.smk's.
import json
import os
import sys
from functools import cache
from pathlib import Path

from snakemake.exceptions import WorkflowError

from msga.data.format import FOLDER, MEMBERS
from msga.grid import codedeps, paths
from msga.grid.experiments import SWEEPS
from msga.grid.keys import config_hash, run_key
from msga.grid.params import validate_params
from msga.grid.paths import ID_PATTERN, RUN_PATTERN, RUNS_ROOT
from msga.grid.reading import merge, merge_files, parse_config_args
from msga.grid.resolve import build_grid, dataset, resolve_run
from msga.grid.runs import VARIANT_KEYS, Run
from msga.infra import folderlock, gpus
from msga.infra.atomic import write_text_atomic
from msga.models import list_models

# One Snakemake at a time in this folder (msga.infra.folderlock): a second one is refused, naming the
# running one, before Snakemake does anything; a lock a dead Snakemake left is cleared. Jobs that
# Snakemake itself runs as subprocesses or on a cluster belong to the running one: not guarded.
# The one side effect of including the rules.
if workflow.is_main_process:
    try:
        _note = folderlock.claim()
    except folderlock.FolderBusy as busy:
        raise WorkflowError(f"msga: {busy}") from None
    if _note:
        print(_note, file=sys.stderr)


# The params files are read again here, not taken from Snakemake's merged `config`: Snakemake's YAML
# reading keeps the last of two equal keys and expands aliases without limit (each file is read
# strictly, so such a file fails, named), and it merges a complete params file such as
# workflow/demo.yaml INTO params.yaml, so the demo would inherit what it leaves out (a per-model
# recipe, an experiment). merge_files lets a complete file start afresh.
_CLI_FILES = [str(f) for f in workflow.overwrite_configfiles]  # --configfile, in order; they come last
_FILES = [str(f) for f in workflow.configfiles if str(f) not in _CLI_FILES] + _CLI_FILES
_CLI_CONFIG = parse_config_args(workflow.config_settings.config_args)  # --config, read as written
# The one validation (schema with its defaults, then the cross-field rules) and the one resolution
# of every run. Everything below, and every job, derives from these.
PARAMS = validate_params(merge(merge_files(_FILES), _CLI_CONFIG),
                         source=f"params ({' + '.join(_FILES)}{' + --config' if _CLI_CONFIG else ''})")
GRID = build_grid(PARAMS)
DATASET = dataset(PARAMS)


wildcard_constraints:
    model="|".join(list_models()),
    variant="base|(" + "|".join(VARIANT_KEYS) + ")=[^/,]+(,(" + "|".join(VARIANT_KEYS) + ")=[^/,]+)*",
    seed=r"\d+",
    key=r"[0-9a-f]{12}",


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


# ---------------------------------------------------------------- data


def extraction_folder(wildcards, output) -> str:
    return str(Path(output[0]).parents[1])  # the folder that receives cifar-100-python/


def extracted_root(wildcards, input) -> str:
    return str(Path(input.raw[0]).parents[1])


# ---------------------------------------------------------------- runs


RUN_KEYS = {run.id: GRID.key(run) for run in GRID.runs}


def run_outputs(name):
    """Every run's file `name` (paths.METRICS, paths.HISTORY), in its folder for the current key."""
    return [f"{run.folder(RUN_KEYS[run.id])}/{name}" for run in GRID.runs]


def _run(wildcards) -> Run:
    return Run(wildcards.model, wildcards.variant, int(wildcards.seed))


@cache
def _run_config(model, variant, seed) -> dict:
    run = Run(model, variant, int(seed))
    # a run outside the grid, asked for by its path, is resolved from its variant the same way
    return GRID.configs.get(run.id) or resolve_run(PARAMS, run)


def run_config_json(wildcards) -> str:
    config_ = _run_config(wildcards.model, wildcards.variant, wildcards.seed)
    if run_key(config_) != wildcards.key:
        raise WorkflowError(f"{_run(wildcards).id}: key {wildcards.key} is not its current key {run_key(config_)}; "
                            "ask for the run through its current folder (msga runs lists them)")
    return json.dumps(config_, indent=1, sort_keys=True) + "\n"


def run_folder(wildcards) -> str:
    return _run(wildcards).folder(wildcards.key)


def run_config_file(wildcards) -> str:
    return f"{run_folder(wildcards)}/{paths.RUN_CONFIG}"


def train_inputs(wildcards) -> dict:
    """The run's configuration and the data, when the run must train."""
    folder = run_folder(wildcards)
    if not must_run("train", [f"{folder}/{name}" for name in paths.RUN_OUTPUTS]):
        return {}
    return {"config": run_config_file(wildcards), "data": PACKED}


def place_training_jobs() -> None:
    """Before any job: at most as many training jobs at once as this machine has GPU slots (its
    GPUs x devices.runs_per_gpu; each job claims one, msga.infra.gpus), whatever --resources gpu=N
    asked. Not on a cluster (the scheduler places its jobs) nor on a machine without a GPU."""
    machine = gpus.machine_gpus()
    if not workflow.local_exec or not machine:
        return
    requested = workflow.global_resources.get("gpu").value
    per_gpu = PARAMS["devices"]["runs_per_gpu"]
    problem = gpus.oversubscribed(requested, machine, per_gpu)
    if problem:
        print(f"msga: {problem}", file=sys.stderr)
    if requested is None or problem:
        workflow.register_resource("gpu", len(machine) * per_gpu)


def warn_without_gpu() -> None:
    """Before training starts on a machine without a GPU: the estimated time, and the demo instead.
    Not when the jobs go to a cluster (--executor slurm): they train on its GPU nodes."""
    pending = {Run(job.wildcards.model, job.wildcards.variant, int(job.wildcards.seed)).id
               for job in workflow.dag.needrun_jobs() if job.rule.name == "train"}
    configs = [GRID.configs[run] for run in sorted(pending) if run in GRID.configs]
    if configs and workflow.is_main_process:
        from msga.timing.forecast import no_gpu_warning

        warning = no_gpu_warning(configs, PARAMS, local=workflow.local_exec)
        if warning:
            print(warning, file=sys.stderr)


# ---------------------------------------------------------------- aggregation and report


GRID_KEY = content_key(GRID.to_json())
GRID_FILE = f"{paths.GRIDS}/{GRID_KEY}.json"
PAPER = paths.PAPER_TABLE
NOTEBOOK = paths.NOTEBOOK
AGGREGATE_KEY = content_key(GRID_KEY, sorted(RUN_KEYS.items()), code(codedeps.step_files("aggregate")),
                            Path(PAPER).read_text())
AGGREGATE_STAMP = f"{paths.STAMPS}/aggregate/{AGGREGATE_KEY}"
REPORT_KEY = content_key(AGGREGATE_KEY, code(codedeps.step_files("report")), Path(NOTEBOOK).read_text())
REPORT_STAMP = f"{paths.STAMPS}/report/{REPORT_KEY}"
AGGREGATES = paths.aggregate_outputs(SWEEPS)
REPORT = list(paths.REPORT)


def grid_json(wildcards) -> str:
    return GRID.to_json()


def aggregate_inputs(wildcards) -> dict:
    if not must_run("aggregate", [*AGGREGATES, AGGREGATE_STAMP]):
        return {}
    return {"grid": GRID_FILE, "metrics": run_outputs(paths.METRICS), "histories": run_outputs(paths.HISTORY),
            "paper": PAPER}


def report_inputs(wildcards) -> dict:
    if not must_run("report", [*REPORT, REPORT_STAMP]):
        return {}
    return {"aggregates": [*AGGREGATES, AGGREGATE_STAMP], "notebook": NOTEBOOK}
