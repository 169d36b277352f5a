# Helpers of the DAG: params validated once, the grid resolved once, content keys, input functions.
import json
import os
import sys
from functools import cache
from pathlib import Path

from snakemake.exceptions import WorkflowError

from msga import codedeps, folderlock, interrupt, outputs
from msga.config import (build_grid, dataset, merge, merge_files, parse_config_args, resolve_run,
                         validate_params)
from msga.io import write_text_atomic
from msga.keys import config_hash, run_key
from msga.models import list_models
from msga.runs import ID_PATTERN, PATTERN, RUNS_ROOT, VARIANT_KEYS, Run

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
    interrupt.install()  # Ctrl-C stops the running training jobs too, their checkpoints kept


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


# Staleness by content, never by file times or Snakemake's records (a fresh clone after `dvc pull`
# has neither right): each output's path names what it was made from, a run's folder the key of
# its configuration and code (msga.runs), the data its id, the aggregation and the report a stamp
# of their inputs' keys and their code. Done means the path for the current content exists. A job
# asks for its inputs only when it must run, so no file time of an input ever triggers one. A job
# whose outputs all exist runs all the same when it is forced or was left incomplete (must_run):
# then it asks for its real inputs, which are made first if they are not there. Shell commands
# take their paths from params, never from `input`, which is empty for a job that need not run.


def code(files):
    return codedeps.code_hash(tuple(files))


def content_key(*parts) -> str:
    return config_hash(list(parts))


def missing(*paths) -> bool:
    return not all(Path(p).exists() for p in paths)


def _same_path(a: str, b: str) -> bool:
    return os.path.normpath(os.path.relpath(a)) == os.path.normpath(os.path.relpath(b))


def upstream(rule: str) -> set[str]:
    """The rules whose jobs a job of `rule` may wait for, itself included; forcing one reruns it."""
    data_rules = {r.name for r in workflow.rules if Path(r.snakefile).name == "data.smk"}
    train = {"train", "run_config", *data_rules}
    return {"train": train, "aggregate": {"aggregate", "grid", *train},
            "report": {"report", "aggregate", "grid", *train}}[rule]


def forced(rule: str, outputs) -> bool:
    """Whether this run of Snakemake may force the job of `rule` that makes `outputs`, or one it
    depends on. --force forces only the targets: this job if it is one. --forceall forces every job;
    --forcerun the jobs of the rules it names and what depends on them, so a job of a named rule, or
    of a rule downstream of one, asks for its inputs, and no other job does. So `--forcerun report`
    does not make the training runs ask for data that may not be there, and retrain."""
    settings = workflow.dag_settings
    if settings.forceall or (settings.forcerun and set(settings.forcerun) & upstream(rule)):
        return True
    targets = set(settings.targets) if settings.forcetargets else set()
    return rule in targets or any(_same_path(t, o) for t in targets for o in outputs)


def incomplete(outputs) -> bool:
    """Whether Snakemake marked any of `outputs` incomplete: its job was killed after writing them
    and before Snakemake recorded it as done. The profile's rerun-incomplete runs such a job again."""
    marked = getattr(workflow.persistence, "_filter_incomplete_keys", None)  # every persistence backend's query
    return True if marked is None else bool(marked([str(o) for o in outputs]))  # unknown: ask for the inputs


def must_run(rule: str, outputs) -> bool:
    """Whether the job of `rule` that makes `outputs` runs in this invocation of Snakemake."""
    return missing(*outputs) or forced(rule, outputs) or incomplete(outputs)


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
    """Every run's file `name` (metrics.json, history.jsonl), in its folder for the current key."""
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
    return f"{run_folder(wildcards)}/config.json"


def train_inputs(wildcards) -> dict:
    """The run's configuration and the data, when the run must train."""
    folder = run_folder(wildcards)
    if not must_run("train", [f"{folder}/{name}" for name in ("metrics.json", "history.jsonl", "predictions.npz")]):
        return {}
    return {"config": run_config_file(wildcards), "data": PACKED}


def warn_without_gpu() -> None:
    """Before training starts on a machine without a GPU: the estimated time, and the demo instead.
    Not when the jobs go to a cluster (--executor slurm): they train on its GPU nodes."""
    pending = {Run(job.wildcards.model, job.wildcards.variant, int(job.wildcards.seed)).id
               for job in workflow.dag.needrun_jobs() if job.rule.name == "train"}
    configs = [GRID.configs[run] for run in sorted(pending) if run in GRID.configs]
    if configs and workflow.is_main_process:
        from msga.forecast import no_gpu_warning

        warning = no_gpu_warning(configs, PARAMS, local=workflow.local_exec)
        if warning:
            print(warning, file=sys.stderr)


# ---------------------------------------------------------------- aggregation and report


GRID_KEY = content_key(GRID.to_json())
GRID_FILE = f"results/grids/{GRID_KEY}.json"
PAPER = "workflow/resources/paper_table1.csv"
NOTEBOOK = "workflow/notebooks/replication.ipynb"
AGGREGATE_KEY = content_key(GRID_KEY, sorted(RUN_KEYS.items()), code(codedeps.step_files("aggregate")),
                            Path(PAPER).read_text())
AGGREGATE_STAMP = f"{outputs.STAMPS}/aggregate/{AGGREGATE_KEY}"
REPORT_KEY = content_key(AGGREGATE_KEY, code(codedeps.step_files("report")), Path(NOTEBOOK).read_text())
REPORT_STAMP = f"{outputs.STAMPS}/report/{REPORT_KEY}"
AGGREGATES = outputs.aggregate_outputs()
REPORT = ["reports/replication.ipynb", "reports/replication.html"]


def grid_json(wildcards) -> str:
    return GRID.to_json()


def aggregate_inputs(wildcards) -> dict:
    if not must_run("aggregate", [*AGGREGATES, AGGREGATE_STAMP]):
        return {}
    return {"grid": GRID_FILE, "metrics": run_outputs("metrics.json"), "histories": run_outputs("history.jsonl"),
            "paper": PAPER}


def report_inputs(wildcards) -> dict:
    if not must_run("report", [*REPORT, REPORT_STAMP]):
        return {}
    return {"aggregates": [*AGGREGATES, AGGREGATE_STAMP], "notebook": NOTEBOOK}
