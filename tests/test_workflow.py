"""The DAG as users run it: dry runs and lint on the full params, then the whole demo DAG end to
end through Snakemake and through DVC, in throwaway copies of the repository."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from msga.config import all_runs, load_params
from tests.conftest import REPO

BIN = str(Path(sys.executable).parent)
ENV = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}
MODELS = ["mlp_mixer", "convnext", "cnn_lstm", "crossvit", "msga"]


def run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True)
    if check and proc.returncode:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def snakemake(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "snakemake", *args], cwd, check)


def dvc(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "dvc", *args], cwd, check)


def job_counts(output: str) -> dict[str, int]:
    block = output.split("Job stats:")[1].split("\n\n")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", block, re.M)}


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


def demo(**train) -> dict:
    params = yaml.safe_load((REPO / "workflow" / "demo.yaml").read_text())
    params["train"].update(train)
    return params


# ---------------------------------------------------------------- fast checks on the real params


def test_dry_run_builds_the_full_dag_one_job_per_distinct_run():
    proc = snakemake("-n", "--cores", "1", cwd=REPO)
    counts = job_counts(proc.stdout)
    assert counts["train"] == len(all_runs(load_params(REPO / "params.yaml"))) == 63
    assert counts["fetch"] == counts["pack"] == counts["aggregate"] == counts["report"] == 1


def test_lint_passes():
    proc = snakemake("--lint", cwd=REPO)
    assert "Congratulations" in proc.stdout + proc.stderr


def test_bad_params_fail_before_any_job_naming_the_key(tmp_path):
    bad = yaml.safe_load((REPO / "params.yaml").read_text())
    bad["train"]["epochz"] = bad["train"].pop("epochs")
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    proc = snakemake("-n", "--configfile", str(path), cwd=REPO, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "train: Additional properties" in out and "'epochz' was unexpected" in out
    assert "Job stats" not in out


# ---------------------------------------------------------------- the whole DAG


@pytest.fixture(scope="module")
def demo_repo(tmp_path_factory) -> Path:
    """A copy of the repo with the demo params as params.yaml, after one full snakemake run."""
    repo = copy_repo(tmp_path_factory.mktemp("demo"), demo())
    snakemake("--cores", "2", cwd=repo)
    return repo


def test_snakemake_renders_the_report_with_table1_and_figures(demo_repo):
    html = (demo_repo / "reports" / "replication.html").read_text()
    assert "Table 1" in html and "Claims audit" in html and "SYNTHETIC" in html
    for model in MODELS:
        assert model in html
    assert html.count("data:image/png;base64") >= 6  # figures embedded, one self-contained file
    assert "report.table1(" not in html  # no code cells
    table1 = (demo_repo / "reports" / "table1.csv").read_text()
    assert all(m in table1 for m in MODELS)


def test_second_snakemake_run_does_nothing(demo_repo):
    proc = snakemake("--cores", "2", cwd=demo_repo)
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_dvc_repro_after_snakemake_retrains_nothing_then_is_a_noop(demo_repo):
    metrics = sorted((demo_repo / "results" / "runs").rglob("metrics.json"))
    before = {p: p.stat().st_mtime_ns for p in metrics}
    first = dvc("repro", cwd=demo_repo)
    assert "Running stage 'train'" in first.stdout
    assert {p: p.stat().st_mtime_ns for p in metrics} == before  # Snakemake found every run up to date
    second = dvc("repro", cwd=demo_repo)
    assert "Running stage" not in second.stdout and "up to date" in second.stdout
    shown = dvc("metrics", "show", cwd=demo_repo).stdout
    assert "table1.msga.acc" in shown


def test_missing_run_still_renders_and_is_named(demo_repo, tmp_path):
    victim = demo_repo / "results" / "runs" / "crossvit" / "base" / "seed0" / "metrics.json"
    saved = tmp_path / "metrics.json"
    shutil.copy2(victim, saved)
    victim.unlink()
    try:
        out = tmp_path / "reports"
        shutil.copytree(demo_repo / "reports", out)
        run([sys.executable, "-m", "msga.cli", "aggregate", "--runs", "results/runs", "--out", str(out)], demo_repo)
        run([sys.executable, "-m", "msga.cli", "report", "--reports", str(out)], demo_repo)
        html = (out / "replication.html").read_text()
        assert "Missing runs" in html and "crossvit/base/seed0" in html
    finally:
        shutil.copy2(saved, victim)


def test_dvc_repro_from_a_fresh_clone(tmp_path):
    params = demo(epochs=1)
    params["data"]["synthetic"].update(train_per_class=8, test_per_class=2)
    (tmp_path / "fresh").mkdir()
    repo = copy_repo(tmp_path / "fresh", params)
    dvc("repro", cwd=repo)
    assert (repo / "reports" / "replication.html").exists()
    assert (repo / "dvc.lock").exists()
    again = dvc("repro", cwd=repo)
    assert "Running stage" not in again.stdout
    assert "Nothing to be done" in snakemake("-n", "--cores", "1", cwd=repo).stdout
