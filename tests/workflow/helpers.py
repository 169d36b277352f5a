"""Helpers of the workflow tests: run Snakemake and DVC as users do, in copies of the repository."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import REPO

BIN = str(Path(sys.executable).parent)
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}
MODELS = ["mlp_mixer", "convnext", "cnn_lstm", "crossvit", "msga"]


def env_for(repo: Path) -> dict:
    """The environment of a command in `repo`: its own src/ first, so the copy's code is what runs
    (an edit there is an edit of the code the DAG hashes and the jobs import)."""
    return {**ENV, "PYTHONPATH": str(repo / "src")} if (repo / "src").is_dir() else ENV


def run(cmd: list[str], cwd: Path, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    """`cmd` in `cwd` with the copy's own code, and `env` added to the environment."""
    proc = subprocess.run(cmd, cwd=cwd, env={**env_for(cwd), **(env or {})}, capture_output=True, text=True)
    if check and proc.returncode:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def snakemake(*args: str, cwd: Path, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "snakemake", *args], cwd, check, env)


def dvc(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "dvc", *args], cwd, check)


def job_counts(output: str) -> dict[str, int]:
    block = output.split("Job stats:")[1].split("\n\n")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", block, re.M)}


def planned_outputs(output: str) -> dict[str, list[list[str]]]:
    """A dry run's jobs: rule -> the outputs of each of its jobs, as `snakemake -n` prints them."""
    jobs: dict[str, list[list[str]]] = {}
    for block in re.finditer(r"^(?:local)?rule (\w+):\n((?:    .*\n)*)", output, re.M):
        files = re.search(r"^    output: (.*)$", block.group(2), re.M)
        if files:
            jobs.setdefault(block.group(1), []).append(files.group(1).split(", "))
    return jobs


def write_outputs(repo: Path, *rules: str) -> list[str]:
    """Every output the plan of `snakemake -n` gives the jobs of `rules`, written as an empty file:
    as far as the DAG can tell, those jobs are done. Returns the files."""
    jobs = planned_outputs(snakemake("-n", "--cores", "1", cwd=repo).stdout)
    files = [f for rule in rules for outputs in jobs.get(rule, []) for f in outputs]
    for f in files:
        (repo / f).parent.mkdir(parents=True, exist_ok=True)
        (repo / f).touch()
    return files


def copy_repo(dest: Path, params: dict | None = None) -> Path:
    """The working tree's tracked and untracked-but-not-ignored files, as a fresh git repo."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout.split()
    for f in files:
        if (REPO / f).is_file():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / f, dest / f)
    if params is not None:
        (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "copy"]):
        subprocess.run(cmd, cwd=dest, check=True, capture_output=True)
    return dest


def run_dir(repo: Path, run: str) -> Path:
    """The folder of run MODEL/VARIANT/seedN in `repo` for the key of its current configuration and
    code (as the copy's own code computes it)."""
    code = ("import sys; from msga.grid.params import load_params; from msga.grid.resolve import build_grid; "
            "from msga.grid.runs import Run; "
            f"g = build_grid(load_params('params.yaml')); print(g.folder(Run.parse({run!r})))")
    out = subprocess.run([sys.executable, "-c", code], cwd=repo, env=env_for(repo), capture_output=True, text=True,
                         check=True).stdout.strip()
    return repo / out


def demo(**train) -> dict:
    params = yaml.safe_load((REPO / "workflow" / "demo.yaml").read_text())
    params["train"].update(train)
    return params


def two_run_params(epochs: int) -> dict:
    """The demo's tiny models on 500 / 100 images, every sweep at its default point: two runs."""
    params = demo(epochs=epochs)
    params["data"]["synthetic"].update(train_per_class=5, test_per_class=1)
    params["train"]["per_model"] = {}  # the recipes of models outside this grid
    params["experiments"] = {
        "table1": {"models": ["convnext", "msga"], "seeds": [0]},
        "heads": {"model": "msga", "values": [params["models"]["msga"]["heads"]], "seeds": [0]},
        "batch_size": {"model": "msga", "values": [params["train"]["batch_size"]], "seeds": [0]},
        "noise": {"model": "msga", "values": [params["noise"]["test_sigma"]], "seeds": [0]},
        "ablation": {"models": ["msga"], "seeds": [0]},
    }
    return params
