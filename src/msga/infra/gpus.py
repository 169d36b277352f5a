"""Which GPU a training job trains on when Snakemake runs several jobs at once on one machine.

The machine's GPUs are those CUDA_VISIBLE_DEVICES names, or, where it is unset, every one
`nvidia-smi -L` lists. Each GPU offers `runs_per_gpu` slots. A job claims a free slot with an
exclusive flock on the slot's file and holds it while it trains; the kernel releases a flock with
its process's last descriptor, so a slot is free again the moment its job ends, however it ends
(kill -9 included), and two jobs can never hold one slot: a flock is granted to one process only,
so claims race without harm. Slots fill the GPUs one run each before any GPU takes a second.

On a SLURM cluster (SLURM_JOB_ID set) the scheduler has already given the job its GPU: nothing is
claimed, and the job records the GPU SLURM gave it. Torch-free.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from msga.infra.errors import Failure

log = logging.getLogger("msga.gpus")

SLOTS_ENV = "MSGA_GPU_SLOTS"  # the folder of the slot files; default: one per user in the temp folder
POLL_SECONDS = 2.0


@dataclass(frozen=True)
class Slot:
    gpu: str  # the GPU's id as CUDA_VISIBLE_DEVICES names it
    index: int  # which of the GPU's runs_per_gpu slots
    fd: int  # the flocked file, open while the job lives

    def release(self) -> None:
        os.close(self.fd)


class NoFreeSlot(Failure):
    pass


def machine_gpus(env=os.environ) -> list[str]:
    """The ids of the GPUs jobs may use here: CUDA_VISIBLE_DEVICES's, else nvidia-smi's; [] for none."""
    if "CUDA_VISIBLE_DEVICES" in env:
        return [g.strip() for g in env["CUDA_VISIBLE_DEVICES"].split(",") if g.strip() and g.strip() != "-1"]
    try:
        listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):  # no driver, no GPU: the jobs train on the CPU
        return []
    return re.findall(r"^GPU (\d+):", listed, re.M)


def slots_folder(env=os.environ) -> Path:
    folder = Path(env.get(SLOTS_ENV) or Path(tempfile.gettempdir()) / f"msga-gpu-slots-{os.getuid()}")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def under_slurm(env=os.environ) -> bool:
    return "SLURM_JOB_ID" in env


def try_claim(gpus: list[str], runs_per_gpu: int, folder: Path) -> Slot | None:
    """A free slot, flocked, or None when every slot is held."""
    for index in range(runs_per_gpu):  # a second run on a GPU only once every GPU has one
        for gpu in gpus:
            fd = os.open(folder / f"gpu{gpu}-slot{index}.lock", os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.write(fd, f"pid {os.getpid()}\n".encode())  # who holds it, for a person who looks
            return Slot(gpu, index, fd)
    return None


def claim(gpus: list[str], runs_per_gpu: int, folder: Path, wait_seconds: float) -> Slot:
    """A free slot, waiting for one up to `wait_seconds` (another Snakemake's jobs may hold them all)."""
    deadline = time.monotonic() + wait_seconds
    said = False
    while True:
        slot = try_claim(gpus, runs_per_gpu, folder)
        if slot is not None:
            return slot
        if time.monotonic() >= deadline:
            raise NoFreeSlot(f"every slot of GPUs {', '.join(gpus)} ({runs_per_gpu} run(s) each, {folder}) stayed "
                             f"held for {wait_seconds / 60:.0f} min: other training jobs use them all")
        if not said:
            log.info("every GPU slot is held (GPUs %s, %d run(s) each); waiting for one", ", ".join(gpus), runs_per_gpu)
            said = True
        time.sleep(POLL_SECONDS)


def oversubscribed(requested: int | None, gpus: list[str], runs_per_gpu: int) -> str | None:
    """Why `--resources gpu=requested` asks for more concurrent training jobs than this machine's
    slots, or None when it does not (or when there is no GPU: the jobs train on the CPU)."""
    slots = len(gpus) * runs_per_gpu
    if not gpus or requested is None or requested <= slots:
        return None
    return (f"--resources gpu={requested} asks for {requested} training jobs at once, but this machine has "
            f"{len(gpus)} GPU(s) ({', '.join(gpus)}) x {runs_per_gpu} run(s) per GPU = {slots} slot(s): {slots} "
            "run at a time (devices.runs_per_gpu in params.yaml lets runs share a GPU)")
