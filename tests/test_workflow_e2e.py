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


def test_missing_and_truncated_runs_are_named_and_the_report_still_renders(demo_repo, tmp_path):
    runs = demo_repo / "results" / "runs"
    damage = {  # run file -> what happens to it
        runs / "crossvit" / "base" / "seed0" / "metrics.json": lambda p: p.unlink(),
        runs / "convnext" / "base" / "seed0" / "metrics.json": lambda p: p.write_bytes(p.read_bytes()[:200]),
        runs / "cnn_lstm" / "base" / "seed0" / "history.jsonl": lambda p: p.write_bytes(p.read_bytes()[:-40]),
    }
    saved = tmp_path / "saved"
    for i, (path, hurt) in enumerate(damage.items()):
        saved.mkdir(exist_ok=True)
        shutil.copy2(path, saved / str(i))
        hurt(path)
    try:
        out = tmp_path / "reports"
        shutil.copytree(demo_repo / "reports", out)
        proc = run([sys.executable, "-m", "msga.cli", "aggregate", "--runs", "results/runs", "--out", str(out)], demo_repo)
        for path in damage:  # the log names each run and its file
            name = "/".join(path.relative_to(runs).parts[:3])
            assert f"{name}: {path.relative_to(demo_repo)}" in proc.stdout + proc.stderr, name
        run([sys.executable, "-m", "msga.cli", "report", "--reports", str(out)], demo_repo)
        html = (out / "replication.html").read_text()
        assert "Missing runs" in html
        for name, words in [("crossvit/base/seed0", "is missing"), ("convnext/base/seed0", "metrics.json is unreadable"),
                            ("cnn_lstm/base/seed0", "history.jsonl is unreadable")]:
            assert name in html and words in html, name
        assert "Table 1" in html and "msga" in html  # the finished runs are still reported
    finally:
        for i, path in enumerate(damage):
            shutil.copy2(saved / str(i), path)
