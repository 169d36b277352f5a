"""The whole demo DAG end to end through Snakemake, then DVC on the same tree, in a copy of the
repository: the report renders, reruns do nothing, a missing run is named."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from tests.workflow_helpers import MODELS, copy_repo, demo, dvc, run, snakemake




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
