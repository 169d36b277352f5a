"""The DAG on a SLURM cluster through profiles/slurm, as users run it there, on a one-node cluster
started on this machine (tests/workflow/slurm_cluster.py): every training run is one sbatch job that asks
for and gets one GPU, and the results equal those of a local run of the same DAG.

The cluster has no accounting database, so the test profile (the shipped one with its placeholders
filled in) uses squeue as the status command; it pins the training threads to 1, as a local run
with the rule's own `threads: 1` does, because CPU training is bit-identical for the same thread
count. The grid is the two-run one of the other workflow tests: the whole demo through the queue
(its 11 training jobs one after another on the one GPU) would take several times as long."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from msga.grid.params import validate_params
from msga.grid.resolve import build_grid
from tests.conftest import REPO
from tests.workflow.helpers import copy_repo, env_for, two_run_params
from tests.workflow.slurm_cluster import ETC, WRITTEN, require_slurm, slurm_cluster

ACCOUNT = "msga-test"
SNAKEMAKE_TIMEOUT = 480  # seconds for each whole DAG; about 150 s through the queue here
METRICS = ("acc", "auc", "precision", "recall", "top5", "per_class_recall", "confusion_matrix")
REMOTE_RULES = {"synthesize", "verify", "extract", "pack", "aggregate", "report"}  # besides train
CPU_ONLY = {"CUDA_VISIBLE_DEVICES": ""}  # both runs train on the CPU, where training is deterministic


def _profile(dest: Path, cluster) -> Path:
    """profiles/slurm with this cluster's account, partitions and status command, one training
    thread, and the small memory of the test node; every other setting as shipped."""
    shipped = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    profile = copy.deepcopy(shipped)
    profile["default-resources"].update(slurm_account=ACCOUNT, slurm_partition=cluster.cpu_partition, mem_mb=500)
    profile["set-resources"]["train"].update(slurm_partition=cluster.gpu_partition, cpus_per_task=1, mem_mb=1000)
    profile["set-threads"]["train"] = 1
    profile["slurm-status-command"] = "squeue"  # no slurmdbd here: sacct cannot answer
    profile["slurm-init-seconds-before-status-checks"] = 2  # short jobs: poll soon (MinJobAge is an hour)
    dest.mkdir(parents=True)
    (dest / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return dest


def _launch(repo: Path, *args: str) -> subprocess.Popen:
    with open(repo / "snakemake-under-test.log", "w") as log:
        return subprocess.Popen([sys.executable, "-m", "snakemake", *args], cwd=repo, env={**env_for(repo), **CPU_ONLY},
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _finish(proc: subprocess.Popen, repo: Path, deadline: float) -> str:
    """Wait for a launched Snakemake until the deadline; kill its whole session if it is not done."""
    try:
        proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        _kill(proc)
    out = (repo / "snakemake-under-test.log").read_text(errors="replace")
    assert proc.returncode == 0, f"snakemake in {repo} failed or timed out ({proc.returncode}):\n{out[-5000:]}"
    return out


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)  # the SLURM executor ignores SIGTERM while it waits
        proc.wait(timeout=30)


def _time(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


def test_the_slurm_profile_keeps_every_setting_of_the_default_profile():
    """--workflow-profile profiles/slurm replaces profiles/default: what the default profile
    promises (content-based staleness, resuming after a crash, the commands and logs shown) must
    hold on the cluster too."""
    default = yaml.safe_load((REPO / "profiles" / "default" / "config.yaml").read_text())
    slurm = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    assert {key: slurm.get(key) for key in default} == default
    assert slurm["executor"] == "slurm" and slurm["slurm-status-command"] in ("sacct", "squeue")
    train = slurm["set-resources"]["train"]
    assert train["gpu"] == 1 and train["slurm_partition"] != slurm["default-resources"]["slurm_partition"]


@pytest.mark.slurm
@pytest.mark.timeout(900)
def test_each_training_run_is_one_sbatch_job_with_a_gpu_and_the_results_equal_a_local_run(tmp_path):
    params = two_run_params(epochs=2)
    grid = build_grid(validate_params(copy.deepcopy(params)))
    runs = grid.runs
    assert len(runs) == 2
    on_slurm = copy_repo((tmp_path / "slurm").resolve(), params)
    local = copy_repo((tmp_path / "local").resolve(), params)

    with slurm_cluster() as cluster:
        profile = _profile(tmp_path / "profile", cluster)
        deadline = time.monotonic() + SNAKEMAKE_TIMEOUT
        started = [_launch(local, "--cores", "2"), _launch(on_slurm, "--workflow-profile", str(profile))]
        try:
            slurm_out = _finish(started[1], on_slurm, deadline)
            _finish(started[0], local, deadline)
        finally:
            for proc in started:
                _kill(proc)
        ids = [line.split("SLURM run ID:")[1].strip() for line in slurm_out.splitlines() if "SLURM run ID:" in line]
        assert len(ids) == 1, f"Snakemake did not run with the SLURM executor:\n{slurm_out[-3000:]}"
        jobs = [job for job in cluster.jobs() if job["JobName"] == ids[0]]

    # the scheduler's own record of every job of this run: one per rule that is not local
    assert jobs, f"the scheduler ran no job of this Snakemake run:\n{slurm_out[-3000:]}"
    for job in jobs:
        assert (job["JobState"], job["ExitCode"], job["Account"]) == ("COMPLETED", "0:0", ACCOUNT), job
    train = [job for job in jobs if job["Comment"].startswith("rule_train_")]
    others = [job for job in jobs if not job["Comment"].startswith("rule_train_")]
    # one sbatch job per training run, each run exactly once
    assert sorted(job["Comment"] for job in train) == sorted(
        f"rule_train_wildcards_{run.model}_{run.variant}_{run.seed}_{grid.key(run)}" for run in runs)
    for job in train:
        assert job.get("TresPerJob") == "gres:gpu:1", job  # asked for one GPU
        assert job["JOB_GRES"] == "gpu:1", job  # and was given it
        assert job["Partition"] == cluster.gpu_partition, job
    assert sorted(job["Comment"] for job in others) == sorted(f"rule_{rule}" for rule in REMOTE_RULES)
    for job in others:
        assert "gpu" not in job.get("TresPerJob", "") and job["JOB_GRES"] == "(null)", job
        assert job["Partition"] == cluster.cpu_partition, job
    # the node has one GPU: the training jobs ran one after another, though CPUs were free for both
    spans = sorted((_time(job["StartTime"]), _time(job["EndTime"])) for job in train)
    assert all(later[0] >= earlier[1] for earlier, later in zip(spans, spans[1:])), spans

    # the same DAG run locally trained the same numbers
    for run in runs:
        there = json.loads((on_slurm / grid.folder(run) / "metrics.json").read_text())
        here = json.loads((local / grid.folder(run) / "metrics.json").read_text())
        assert there["device"].startswith("cpu") and here["device"].startswith("cpu")
        assert there["config"] == here["config"]
        for metric in METRICS:
            assert there[metric] == here[metric], (run.id, metric)
    html = (on_slurm / "reports" / "replication.html").read_text()
    assert "Table 1" in html and all(run.model in html for run in runs)
    assert (on_slurm / "reports" / "table1.csv").read_text() == (local / "reports" / "table1.csv").read_text()


def _etc_files() -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in ETC.iterdir() if p.is_file()} if ETC.is_dir() else {}


@pytest.mark.slurm
@pytest.mark.timeout(300)
def test_a_failing_test_still_cancels_the_jobs_stops_the_cluster_and_restores_etc_slurm(tmp_path):
    require_slurm()
    planted = not (ETC / "slurm.conf").exists()
    if planted:  # a configuration that was there before must come back as it was
        (ETC / "slurm.conf").write_text("# a site's own configuration\n")
    try:
        before = _etc_files()
        pid_file = tmp_path / "job.pid"
        with pytest.raises(RuntimeError, match="a failure inside the test"):
            with slurm_cluster() as cluster:
                daemons = [proc.pid for proc in cluster.processes.values()]
                root = cluster.root
                assert (ETC / "slurm.conf").read_bytes() != before["slurm.conf"]
                cluster.command("sbatch", "--parsable", "-p", cluster.gpu_partition, "--gpus=1",
                                f"--output={tmp_path / 'job.out'}", "--wrap", f"echo $$ > {pid_file}; exec sleep 600")
                waited = time.monotonic() + 60
                while not (pid_file.exists() and pid_file.read_text().strip()):
                    assert time.monotonic() < waited, "the job did not start within 60 s"
                    time.sleep(0.5)
                job_pid = int(pid_file.read_text())
                assert Path(f"/proc/{job_pid}").exists()
                raise RuntimeError("a failure inside the test")
        assert not Path(f"/proc/{job_pid}").exists(), "the running job outlived the cluster"
        assert not [pid for pid in daemons if Path(f"/proc/{pid}").exists()], "a daemon outlived the cluster"
        assert not root.exists()
        assert _etc_files() == before, f"{ETC} differs from before the cluster ({', '.join(WRITTEN)} written)"
    finally:
        if planted:
            (ETC / "slurm.conf").unlink(missing_ok=True)
