"""DVC as a team uses it, with a two-run grid of tiny models: `dvc repro` from a fresh clone builds
everything and is then a no-op; results pushed to a remote reach a colleague's fresh clone by
`dvc pull` without retraining (neither DVC nor Snakemake plans any work there); experiments are
compared with `dvc metrics diff` and `dvc plots diff`, without warnings."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.workflow.helpers import copy_repo, dvc, env_for, run, snakemake, two_run_params


def _git(*args: str, cwd) -> None:
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd)


@pytest.fixture(scope="module")
def repro(tmp_path_factory):
    """A repository after `dvc repro` of the two-run grid, its dvc.lock committed."""
    repo = copy_repo(tmp_path_factory.mktemp("team") / "repo", two_run_params(epochs=1))
    dvc("repro", cwd=repo)
    _git("add", "dvc.lock", cwd=repo)
    _git("commit", "-qm", "results", cwd=repo)
    return repo


def test_dvc_repro_builds_everything_then_is_a_noop(repro):
    assert (repro / "reports" / "replication.html").exists()
    again = dvc("repro", cwd=repro)
    assert "Running stage" not in again.stdout
    assert "Nothing to be done" in snakemake("-n", "--cores", "1", cwd=repro).stdout


def test_a_colleague_pulls_the_results_and_nothing_is_planned(repro, tmp_path):
    remote = tmp_path / "remote"
    dvc("remote", "add", "-d", "team", str(remote), cwd=repro)
    _git("commit", "-qam", "a remote", cwd=repro)
    dvc("push", cwd=repro)
    clone = tmp_path / "colleague"
    run(["git", "clone", "-q", str(repro), str(clone)], tmp_path)
    dvc("pull", cwd=clone)
    for name in ("reports/replication.html", "reports/table1.csv", "reports/metrics.json"):
        assert (clone / name).read_bytes() == (repro / name).read_bytes(), name
    for metrics in (repro / "results" / "runs").rglob("metrics.json"):
        assert (clone / metrics.relative_to(repro)).read_bytes() == metrics.read_bytes()
    status = dvc("status", cwd=clone)
    assert "up to date" in status.stdout.lower()
    assert "Running stage" not in dvc("repro", cwd=clone).stdout
    assert "Nothing to be done" in snakemake("-n", "--cores", "1", cwd=clone).stdout  # file times play no part


def test_experiments_compare_by_metrics_and_plots_without_warnings(repro, tmp_path):
    exp = dvc("exp", "run", "-S", "train.epochs=2", cwd=repro)
    assert "Running stage 'train'" in exp.stdout
    diff = dvc("metrics", "diff", "HEAD", "--all", cwd=repro)
    assert "table1.msga.acc" in diff.stdout
    plots = subprocess.run([sys.executable, "-m", "dvc", "plots", "diff", "HEAD", "-o", str(tmp_path / "plots")], cwd=repro,
                           env=env_for(repro), capture_output=True, text=True)
    assert plots.returncode == 0, plots.stderr
    assert "failed to load" not in plots.stdout + plots.stderr and "WARNING" not in plots.stdout + plots.stderr
    assert (tmp_path / "plots" / "index.html").exists()
