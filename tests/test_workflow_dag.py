"""The DAG on the real params: a dry run builds it, lint passes, bad params fail first."""

from __future__ import annotations

import yaml

from msga.config import all_runs, load_params
from tests.conftest import REPO
from tests.workflow_helpers import copy_repo, job_counts, snakemake




def test_dry_run_builds_the_full_dag_one_job_per_distinct_run(tmp_path):
    repo = copy_repo(tmp_path)  # a clean tree: outputs in the working copy would shrink the DAG
    proc = snakemake("-n", "--cores", "1", cwd=repo)
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


def test_yaml_syntax_error_in_params_names_the_line(tmp_path):
    repo = copy_repo(tmp_path)
    with open(repo / "params.yaml", "a") as f:
        f.write("extra: [unclosed\n")
    proc = snakemake("-n", cwd=repo, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "params.yaml is not valid YAML" in out and "line" in out
    assert "Job stats" not in out
