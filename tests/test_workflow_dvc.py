"""`dvc repro` from a fresh clone with tiny demo params: it builds everything, then is a no-op."""

from __future__ import annotations

from tests.workflow_helpers import copy_repo, demo, dvc, snakemake


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
