"""The DAG under kill -9 and concurrent use, on a two-run grid of the demo's tiny models: the same
command resumes after a crash (Snakemake or DVC), no finished run is retrained, an interrupted
run resumes from its checkpoint and ends with the metrics of an uninterrupted one, and any other
Snakemake or dvc repro started beside a running one is refused without damage."""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.workflow.helpers import ENV, copy_repo, job_counts, run_dir, snakemake, two_run_params

RUNS = ["convnext/base/seed0", "msga/base/seed0"]
TRAIN = ("train_all", "--cores", "2", "--resources", "gpu=1")
HEADLINE = ("acc", "auc", "precision", "recall", "confusion_matrix")
ONE_THREAD = {**ENV, "OMP_NUM_THREADS": "1"}  # as the train rule runs its jobs: same threads, same floats



@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    """A copy of the repository with the two-run grid, its data already fetched and packed."""
    repo = copy_repo(tmp_path_factory.mktemp("prepared"), two_run_params(epochs=4))
    snakemake("data", "--cores", "2", cwd=repo)
    return repo


@pytest.fixture()
def repo(prepared, tmp_path) -> Path:
    copy = tmp_path / "repo"
    shutil.copytree(prepared, copy, symlinks=True)
    return copy


@pytest.fixture(scope="module")
def reference(prepared, tmp_path_factory):
    """Metrics of each run trained without interruption, straight from `msga train`, on demand."""
    cache: dict[str, dict] = {}
    out_root = tmp_path_factory.mktemp("reference")

    def get(name: str) -> dict:
        if name not in cache:
            out = out_root / name
            out.mkdir(parents=True)
            msga = [sys.executable, "-m", "msga.cli"]
            subprocess.run([*msga, "resolve", "--params", "params.yaml", "--run", name, "--out", str(out / "config.json")],
                           cwd=prepared, env=ONE_THREAD, check=True, capture_output=True)
            [packed] = (prepared / "data" / "packed").glob("*.pt")
            subprocess.run([*msga, "train", "--config", str(out / "config.json"), "--data", str(packed), "--out", str(out)],
                           cwd=prepared, env=ONE_THREAD, check=True, capture_output=True)
            cache[name] = json.loads((out / "metrics.json").read_text())
        return cache[name]

    return get


# ---------------------------------------------------------------- helpers


@pytest.fixture()
def start(repo):
    """Starts Snakemake in a session of its own, so the whole process tree can be killed at once;
    whatever a failed test leaves running is killed with it."""
    started = []

    def launch(*args: str) -> subprocess.Popen:
        with open(repo / "snakemake-under-test.log", "w") as log:
            started.append(subprocess.Popen([sys.executable, "-m", "snakemake", *args], cwd=repo, env=ONE_THREAD,
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        return started[-1]

    yield launch
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _wait_for(condition, proc: subprocess.Popen, what: str, timeout: float = 240) -> None:
    deadline = time.time() + timeout
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"snakemake ended (exit {proc.returncode}) before {what}")
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@functools.cache
def _run_dir(repo: Path, name: str) -> Path:
    return run_dir(repo, name)


def _finished(repo: Path) -> list[str]:
    return [n for n in RUNS if (_run_dir(repo, n) / "metrics.json").exists()]


def _checkpointed(repo: Path) -> list[str]:
    return [n for n in RUNS if (_run_dir(repo, n) / "checkpoint.pt").exists()]


def _trainer_pid(repo: Path, name: str) -> int | None:
    """The `msga train` process of run `name` started in `repo` (not its shell, not another test's)."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if b"train" in argv and any(name.encode() in arg for arg in argv) and Path(cwd) == repo:
            return int(pid)
    return None


def _trainer_under_way(repo: Path, proc: subprocess.Popen) -> tuple[str, int]:
    """(run, pid) of the first training job once it has written a checkpoint."""
    _wait_for(lambda: _checkpointed(repo), proc, "a checkpoint")
    [name] = _checkpointed(repo)
    pid = _trainer_pid(repo, name)
    assert pid is not None, f"no msga train process for {name}"
    return name, pid


def _assert_matches_reference(repo: Path, name: str, reference) -> dict:
    metrics = json.loads((_run_dir(repo, name) / "metrics.json").read_text())
    want = reference(name)
    for key in HEADLINE:
        assert metrics[key] == want[key], (name, key)
    return metrics


# ---------------------------------------------------------------- the faults


def test_snakemake_killed_mid_dag_resumes_with_the_same_command(repo, start, reference):
    proc = start(*TRAIN)
    _wait_for(lambda: len(_finished(repo)) == 1 and _checkpointed(repo), proc, "one run finished, one checkpointed")
    os.killpg(proc.pid, signal.SIGKILL)  # snakemake and its job, as a machine losing power or a scheduler would
    proc.wait()
    [done], [cut] = _finished(repo), _checkpointed(repo)
    assert not (_run_dir(repo, cut) / "metrics.json").exists() and list((repo / ".snakemake" / "locks").glob("*.lock"))
    done_mtime = (_run_dir(repo, done) / "metrics.json").stat().st_mtime_ns

    rerun = snakemake(*TRAIN, cwd=repo)  # the very command that was killed: no --unlock, no --rerun-incomplete
    assert f"(pid {proc.pid} on" in rerun.stderr and "is no longer running" in rerun.stderr  # the stale lock, named
    assert job_counts(rerun.stdout + rerun.stderr)["train"] == 1  # only the interrupted run
    assert (_run_dir(repo, done) / "metrics.json").stat().st_mtime_ns == done_mtime
    resumed = _assert_matches_reference(repo, cut, reference)
    assert resumed["resumed_from_epoch"] >= 1
    assert "resuming after epoch" in (repo / "logs" / "train" / cut / f"{_run_dir(repo, cut).name}.log").read_text()
    assert not (_run_dir(repo, cut) / "checkpoint.pt").exists()  # a finished run keeps no checkpoint


def test_training_job_killed_mid_epoch_fails_the_job_and_the_rerun_resumes(repo, start, reference):
    proc = start(*TRAIN)
    victim, pid = _trainer_under_way(repo, proc)
    os.kill(pid, signal.SIGKILL)  # the out-of-memory killer's way: the job alone dies
    assert proc.wait(timeout=120) != 0
    log = (repo / "snakemake-under-test.log").read_text()
    assert "Error in rule train" in log and f"logs/train/{victim}/{_run_dir(repo, victim).name}.log" in log
    assert not (_run_dir(repo, victim) / "metrics.json").exists()
    assert (_run_dir(repo, victim) / "checkpoint.pt").exists()

    finished_before = {n: (_run_dir(repo, n) / "metrics.json").stat().st_mtime_ns for n in _finished(repo)}
    snakemake(*TRAIN, cwd=repo)  # a plain rerun: Snakemake released its lock and cleaned the failed job
    for name, mtime in finished_before.items():
        assert (_run_dir(repo, name) / "metrics.json").stat().st_mtime_ns == mtime
    resumed = _assert_matches_reference(repo, victim, reference)
    assert resumed["resumed_from_epoch"] >= 1


def test_any_other_snakemake_or_dvc_repro_is_refused_while_one_runs(repo, start, reference):
    first = start(*TRAIN)
    _, trainer = _trainer_under_way(repo, first)
    os.kill(trainer, signal.SIGSTOP)  # hold the first Snakemake mid-job while the others try
    locks = sorted(p.name for p in (repo / ".snakemake" / "locks").iterdir())
    [packed] = (repo / "data" / "packed").glob("*.pt")
    packed_mtime = packed.stat().st_mtime_ns
    others = {
        "the same command": [sys.executable, "-m", "snakemake", *TRAIN],
        "a dry run": [sys.executable, "-m", "snakemake", "-n"],
        "a target with nothing to do": [sys.executable, "-m", "snakemake", "data", "--cores", "1"],
        "an unlock": [sys.executable, "-m", "snakemake", "--unlock"],
        "dvc repro": [sys.executable, "-m", "dvc", "repro"],
    }
    for what, cmd in others.items():
        proc = subprocess.run(cmd, cwd=repo, env=ONE_THREAD, capture_output=True, text=True)
        out = proc.stdout + proc.stderr
        assert proc.returncode != 0, what
        assert f"(pid {first.pid} on" in out and "refused and changed nothing" in out, (what, out[-2000:])
        assert "Job stats" not in out, what  # refused before scheduling anything
        assert sorted(p.name for p in (repo / ".snakemake" / "locks").iterdir()) == locks, what  # the live lock stands
    assert packed.stat().st_mtime_ns == packed_mtime
    os.kill(trainer, signal.SIGCONT)
    assert first.wait(timeout=300) == 0, (repo / "snakemake-under-test.log").read_text()[-3000:]
    for name in RUNS:
        _assert_matches_reference(repo, name, reference)
    assert not list((repo / ".snakemake" / "locks").glob("*"))  # released once done


def test_dvc_repro_killed_resumes_with_dvc_repro(repo, reference):
    with open(repo / "dvc-under-test.log", "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "dvc", "repro"], cwd=repo, env=ONE_THREAD, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for(lambda: len(_finished(repo)) == 1 and _checkpointed(repo), proc, "one run finished, one checkpointed")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    [done], [cut] = _finished(repo), _checkpointed(repo)
    done_mtime = (_run_dir(repo, done) / "metrics.json").stat().st_mtime_ns
    again = subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=repo, env=ONE_THREAD, capture_output=True, text=True)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert (_run_dir(repo, done) / "metrics.json").stat().st_mtime_ns == done_mtime
    assert _assert_matches_reference(repo, cut, reference)["resumed_from_epoch"] >= 1
    assert (repo / "reports" / "replication.html").exists()


def test_an_interrupt_stops_the_training_job_at_once_and_the_rerun_resumes(repo, start):
    params = (repo / "params.yaml").read_text().replace("epochs: 4", "epochs: 400", 1)
    (repo / "params.yaml").write_text(params)  # a job that would run for many minutes
    proc = start(*TRAIN)
    victim, pid = _trainer_under_way(repo, proc)
    os.kill(proc.pid, signal.SIGINT)  # Snakemake alone: it would wait for its jobs to end
    assert proc.wait(timeout=60) != 0
    deadline = time.time() + 30
    while Path(f"/proc/{pid}").exists() and time.time() < deadline:
        time.sleep(0.2)
    assert not Path(f"/proc/{pid}").exists(), "the training job outlived the interrupt"
    log = (repo / "logs" / "train" / victim / f"{_run_dir(repo, victim).name}.log").read_text()
    assert "interrupted; nothing half-written was left" in log and "Traceback" not in log
    assert (_run_dir(repo, victim) / "checkpoint.pt").exists() and not (_run_dir(repo, victim) / "metrics.json").exists()
