# Helpers of the DAG: validation, the experiment grid as run ids, and input functions.
import hashlib
import json
import sys
from pathlib import Path

from snakemake.utils import validate

from msga.config import (
    VARIANT_KEYS,
    all_runs,
    data_identity,
    format_value,
    resolve_run,
    validate_params,
    variant_overrides,
)
from msga.models import list_models

# msga's validation first: one short message per broken key, cross-field rules included. Then
# Snakemake's own, which also writes the schema's defaults into `config`.
PARAMS = validate_params(config, source="params (params.yaml merged with any --configfile)")
validate(config, schema="../schemas/params.schema.yaml")

# The files Snakemake merged into `config`, in merge order (the configfile directive first, then
# each --configfile), passed on so every job resolves exactly the same params.
_CLI_CONFIGFILES = [str(f) for f in workflow.overwrite_configfiles]
CONFIGFILES = [str(f) for f in workflow.configfiles if str(f) not in _CLI_CONFIGFILES] + _CLI_CONFIGFILES
PARAMS_ARGS = " ".join(f"--params {f}" for f in CONFIGFILES)

# A lock left in .snakemake/locks means another Snakemake is running here, or one was killed:
# Snakemake's lock files hold no process id, so it cannot tell which. Beside a running one, a
# second Snakemake is refused, but first it trips over the running jobs' incomplete outputs with
# advice (--rerun-incomplete) that only makes sense after a kill. Say both cases up front.
if any(Path(".snakemake/locks").glob("*.lock")):
    print(
        "msga: this folder is locked: another Snakemake is running in it, or one was killed.\n"
        "  If one is running: wait for it; this Snakemake will be refused and touches nothing.\n"
        "  If none is (a kill, a crash, a lost machine): run `snakemake --unlock`, then rerun with\n"
        "  --rerun-incomplete; interrupted training runs resume from their last checkpoints.",
        file=sys.stderr,
    )

RUNS = all_runs(PARAMS)
RUN_DIRS = [run.path for run in RUNS]
PACKED = "data/cifar100.pt"
RAW = "data/raw/cifar-100-python"
SYNTHETIC = "data/synthetic/cifar-100-python.tar.gz"



def code_version(*patterns):
    """A hash of the package code a rule runs. As a rule param, a change to that code reruns the
    rule (Snakemake's own code trigger sees only rule bodies); the DVC stages list the same deps."""
    files = sorted(p for pattern in patterns for p in Path("src/msga").glob(pattern))
    return hashlib.sha256(b"".join(p.read_bytes() for p in files)).hexdigest()[:16]


TRAIN_CODE = code_version("train.py", "evaluate.py", "data/loader.py", "models/*.py")
AGGREGATE_CODE = code_version("aggregate.py", "plots.py")
REPORT_CODE = code_version("report.py")


# What the wildcards of a run path may be: a registered model, 'base' or key=value overrides.
MODEL_PATTERN = "|".join(list_models())
_OVERRIDE = "(" + "|".join(VARIANT_KEYS) + ")=[^/,]+"
VARIANT_PATTERN = f"base|{_OVERRIDE}(,{_OVERRIDE})*"


def run_outputs(name):
    """Every run's file `name` (metrics.json, history.jsonl)."""
    return [f"{d}/{name}" for d in RUN_DIRS]


# ---------------------------------------------------------------- data


def tarball_folder(wildcards, output):
    return str(Path(output.tarball).parent)


def fetch_input(wildcards):
    data = PARAMS["data"]
    if data["source"] == "synthetic":
        return {"tarball": SYNTHETIC}
    if data["tarball"]:
        return {"tarball": data["tarball"]}
    return {}


def fetch_args(wildcards, input):
    data = PARAMS["data"]
    if "tarball" in input.keys():
        md5 = "" if data["source"] == "synthetic" else f" --md5 {data['md5']}"  # the fixture's .md5 sits beside it
        return f"--tarball {input.tarball}{md5}"
    return f"--url {data['url']} --md5 {data['md5']} --timeout {data['timeout']} --retries {data['retries']}"


# ---------------------------------------------------------------- training


def run_config_json(wildcards):
    """The resolved configuration of a run, passed as a param so a change reruns that run only."""
    config_ = resolve_run(PARAMS, wildcards.model, variant_overrides(wildcards.variant), int(wildcards.seed))
    return json.dumps(config_, sort_keys=True)


def train_args(wildcards):
    sets = " ".join(
        f"--set {key}={format_value(value)}"
        for key, value in sorted(variant_overrides(wildcards.variant).items())
    )
    run = f"{wildcards.model}/{wildcards.variant}/seed{wildcards.seed}"
    return f"{PARAMS_ARGS} --model {wildcards.model} --seed {wildcards.seed} {sets} --run {run}"
