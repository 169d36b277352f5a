"""`dvc repro` from a fresh clone with a two-run grid of tiny models: it builds everything, then is a no-op."""

from __future__ import annotations

import pytest

from tests.workflow_helpers import copy_repo, dvc, snakemake, two_run_params

pytestmark = pytest.mark.slow


def test_dvc_repro_from_a_fresh_clone(tmp_path):
    params = two_run_params(epochs=1)  # every stage of the DAG; the demo's full grid runs in test_workflow_e2e
    (tmp_path / "fresh").mkdir()
    repo = copy_repo(tmp_path / "fresh", params)
    dvc("repro", cwd=repo)
    assert (repo / "reports" / "replication.html").exists()
    assert (repo / "dvc.lock").exists()
    again = dvc("repro", cwd=repo)
    assert "Running stage" not in again.stdout
    assert "Nothing to be done" in snakemake("-n", "--cores", "1", cwd=repo).stdout
