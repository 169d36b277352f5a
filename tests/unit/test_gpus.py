"""Each training job's GPU (msga.infra.gpus), with a stated set of GPUs and no GPU needed:
concurrent jobs never share a slot, the GPUs fill one run each before any takes a second, a killed
job's slot is free again at once, a job that finds every slot held waits and then fails with a
message, and a run records the GPU it was given and when it trained."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from msga.infra import gpus
from tests.conftest import REPO

HOLD = ("import sys, time; from pathlib import Path; from msga.infra import gpus\n"
        "slot = gpus.claim(sys.argv[1].split(','), int(sys.argv[2]), Path(sys.argv[3]), float(sys.argv[4]))\n"
        "print(slot.gpu, slot.index, flush=True)\n"
        "time.sleep(float(sys.argv[5]))\n")


def _holder(folder, ids="0,1", per_gpu=1, wait=0.0, hold=30.0) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", HOLD, ids, str(per_gpu), str(folder), str(wait), str(hold)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)


@pytest.mark.parametrize(("visible", "ids"), [("0,1", ["0", "1"]), ("3", ["3"]), ("", []), ("-1", []),
                                              (" 2, 5 ", ["2", "5"])])
def test_the_gpus_are_those_cuda_visible_devices_names(visible, ids):
    assert gpus.machine_gpus({"CUDA_VISIBLE_DEVICES": visible}) == ids


def test_concurrent_jobs_never_share_a_slot_and_fill_every_gpu_before_doubling_up(tmp_path):
    holders = [_holder(tmp_path, per_gpu=2) for _ in range(4)]
    try:
        claimed = sorted(tuple(h.stdout.readline().split()) for h in holders)
        assert claimed == [("0", "0"), ("0", "1"), ("1", "0"), ("1", "1")]
        assert gpus.try_claim(["0", "1"], 1, tmp_path) is None  # every GPU's first slot is held
    finally:
        for h in holders:
            h.kill()
            h.wait()
    slot = gpus.try_claim(["0", "1"], 2, tmp_path)
    assert (slot.gpu, slot.index) == ("0", 0)  # the first GPU's first slot, once free
    second = gpus.try_claim(["0", "1"], 2, tmp_path)
    assert (second.gpu, second.index) == ("1", 0)  # the next job goes to the other GPU, not to a second slot
    slot.release()
    second.release()


def test_a_killed_jobs_slot_is_free_again_at_once(tmp_path):
    holder = _holder(tmp_path, ids="0")
    assert holder.stdout.readline().split() == ["0", "0"]
    assert gpus.try_claim(["0"], 1, tmp_path) is None
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    slot = gpus.try_claim(["0"], 1, tmp_path)
    assert slot is not None and slot.gpu == "0"
    slot.release()


def test_a_job_that_finds_every_slot_held_waits_then_fails_naming_them(tmp_path):
    holder = _holder(tmp_path, ids="0")
    try:
        holder.stdout.readline()
        started = time.monotonic()
        with pytest.raises(gpus.NoFreeSlot, match="every slot of GPUs 0 .* stayed held"):
            gpus.claim(["0"], 1, tmp_path, wait_seconds=1.0)
        assert time.monotonic() - started >= 1.0
    finally:
        holder.kill()
        holder.wait()


def test_a_job_waiting_for_a_slot_takes_it_when_it_frees(tmp_path):
    holder = _holder(tmp_path, ids="0", hold=1.0)
    holder.stdout.readline()
    slot = gpus.claim(["0"], 1, tmp_path, wait_seconds=30)
    assert slot.gpu == "0"
    slot.release()
    holder.wait()


@pytest.mark.parametrize(("requested", "machine", "per_gpu", "capped"), [
    (3, ["0", "1"], 1, True), (2, ["0", "1"], 1, False), (4, ["0", "1"], 2, False), (None, ["0"], 1, False),
    (8, [], 1, False)])  # no GPU: the jobs train on the CPU, as many as Snakemake's cores allow
def test_more_training_jobs_than_slots_are_named(requested, machine, per_gpu, capped):
    problem = gpus.oversubscribed(requested, machine, per_gpu)
    assert (problem is not None) == capped
    if capped:
        assert f"gpu={requested}" in problem and f"= {len(machine) * per_gpu} slot(s)" in problem


def test_a_run_records_the_gpu_its_job_was_given_and_when_it_trained(tmp_path, demo_params, packed_path):
    """msga train on a machine whose GPUs are 4 and 7 (the ids: torch sees no GPU, so it trains on the
    CPU): the job claims GPU 4, the first, and its metrics.json says so, with its start and end."""
    from tests.conftest import run_config

    config = run_config(demo_params, "convnext", {"train.epochs": 1}, name="placed")
    (tmp_path / "config.json").write_text(json.dumps(config))
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "4,7", "MSGA_GPU_SLOTS": str(tmp_path / "slots"),
           "PYTHONPATH": str(REPO / "src")}
    subprocess.run([sys.executable, "-m", "msga.cli", "train", "--config", str(tmp_path / "config.json"), "--data",
                    str(packed_path), "--out", str(tmp_path / "run")], env=env, check=True, capture_output=True)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["gpu"] == "4" and metrics["started_at"] < metrics["ended_at"]
    assert metrics["device"].startswith("cpu")
