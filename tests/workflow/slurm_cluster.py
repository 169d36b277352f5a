"""A one-node SLURM cluster on this machine, for the tests that run the DAG through sbatch.

Debian's `slurmctld slurmd slurm-client munge` packages give the daemons; this module gives them a
configuration and runs them for the length of a `with` block:

- munged runs as the munge user with its own key and socket in a fresh folder under /tmp;
- slurmctld and slurmd run as root in the foreground, their state, spool, logs and pid files in
  that folder, on free ports;
- the configuration must be /etc/slurm/slurm.conf (and gres.conf beside it): the executor's job
  step drops SLURM_CONF before it calls srun, so the machine-wide file is the only one every
  command inside a job reads. One node with this machine's CPUs and one GPU whose device file is
  /dev/null (a GPU given by count alone drains the node), a CPU and a GPU partition, no
  accounting (so no slurmdbd, and `sacct` does not work: the status command must be squeue), and
  MinJobAge long enough that every finished job stays in `scontrol show job` for the checks.

On leaving the block, even after an error or a timeout: every job is cancelled, the daemons are
stopped, /etc/slurm is as it was (a file that existed is put back byte for byte, one that did not
is removed) and the folder is deleted. Every step has a hard time limit, so nothing here can hang.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

INSTALL = "apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge"
ETC = Path("/etc/slurm")
WRITTEN = ("slurm.conf", "gres.conf")  # the only files written outside the cluster's own folder
SBIN = os.pathsep.join(["/usr/sbin", "/usr/bin", "/sbin", "/bin"])
DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("munge", "sinfo", "sbatch", "srun", "squeue", "scontrol", "scancel")
MIN_JOB_AGE = 3600  # seconds a finished job stays queryable: squeue sees it, the test reads its record
COMMAND_TIMEOUT = 20  # seconds for any one scheduler command
START_TIMEOUT = 60  # seconds for the daemons to come up and the node to be idle
LOCK_TIMEOUT = 300  # seconds to wait for another test cluster on this machine to finish


def missing_binaries() -> list[str]:
    path = os.pathsep.join([os.environ.get("PATH", ""), SBIN])
    return [name for name in (*DAEMONS, *CLIENTS) if shutil.which(name, path=path) is None]


def require_slurm() -> None:
    """Fail, never skip, when the machine cannot host the test cluster: CI installs SLURM."""
    missing = missing_binaries()
    if missing:
        pytest.fail(f"SLURM is not installed here ({', '.join(missing)} not found). The SLURM tests need "
                    f"Debian's packages, as .ci/run installs them: `{INSTALL}` (as root, after apt-get update).",
                    pytrace=False)
    if os.geteuid() != 0:
        pytest.fail("The SLURM tests need root: they write /etc/slurm/slurm.conf and start munged, slurmctld "
                    "and slurmd (all stopped and removed afterwards).", pytrace=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _running(names: tuple[str, ...]) -> list[str]:
    """Processes on this machine with one of these names, as 'name (pid)'."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                comm = (proc / "comm").read_text().strip()
                if comm in names:
                    found.append(f"{comm} ({proc.name})")
    return found


def _mem_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise RuntimeError("no MemTotal in /proc/meminfo")


def parse_jobs(text: str) -> list[dict[str, str]]:
    """`scontrol show job -d -o` (one job a line, `Key=Value` fields) -> one dict a job."""
    jobs = []
    for line in text.splitlines():
        if line.startswith("JobId="):
            fields = [token.partition("=") for token in line.split()]
            jobs.append({key: value for key, eq, value in fields if eq})
    return jobs


@dataclass
class SlurmCluster:
    """What a test needs of the running cluster: its partitions, its records, its logs."""

    root: Path
    cpu_partition: str = "msga_cpu"
    gpu_partition: str = "msga_gpu"
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def command(self, *args: str, timeout: float = COMMAND_TIMEOUT, check: bool = True) -> str:
        proc = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "PATH": os.pathsep.join([os.environ.get("PATH", ""), SBIN])})
        if check and proc.returncode:
            raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
        return proc.stdout

    def jobs(self) -> list[dict[str, str]]:
        """The scheduler's record of every job this cluster ran or runs (MinJobAge keeps them all)."""
        return parse_jobs(self.command("scontrol", "show", "job", "-d", "-o"))

    def log(self, daemon: str) -> str:
        path = self.root / f"{daemon}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # ------------------------------------------------------------ start

    def write_config(self) -> dict[str, str]:
        munge_socket = self.root / "munge" / "munge.socket.2"
        node_mem = min(4096, _mem_mb() * 3 // 4)
        slurm_conf = f"""\
# A one-node test cluster of the msga tests; removed when the test ends.
ClusterName=msgatest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket={munge_socket}
CredType=cred/munge
StateSaveLocation={self.root}/state
SlurmdSpoolDir={self.root}/spool
SlurmctldPidFile={self.root}/slurmctld.pid
SlurmdPidFile={self.root}/slurmd.pid
SlurmctldLogFile={self.root}/slurmctld.log
SlurmdLogFile={self.root}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
GresTypes=gpu
MinJobAge={MIN_JOB_AGE}
ReturnToService=2
NodeName=localhost NodeAddr=127.0.0.1 CPUs={os.cpu_count()} RealMemory={node_mem} Gres=gpu:1 State=UNKNOWN
PartitionName={self.cpu_partition} Nodes=localhost Default=YES MaxTime=INFINITE State=UP
PartitionName={self.gpu_partition} Nodes=localhost MaxTime=INFINITE State=UP
"""
        # A GPU given by Count= alone drains the node: name a device file that every machine has.
        # no_gpu_env: the job's CUDA_VISIBLE_DEVICES stays as submitted, so on a machine with a real
        # GPU a test can still keep training on the CPU, where it is deterministic.
        gres_conf = ("# The test cluster's one GPU: a name for the scheduler, no device behind it.\n"
                     "Name=gpu File=/dev/null Flags=no_gpu_env\n")
        return {"slurm.conf": slurm_conf, "gres.conf": gres_conf}

    def start_munge(self) -> None:
        munge = self.root / "munge"
        key = munge / "munge.key"
        munge.mkdir(mode=0o755)
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        shutil.chown(munge, "munge", "munge")
        shutil.chown(key, "munge", "munge")
        self.spawn("munged", ["/usr/sbin/munged", "--foreground", f"--socket={munge / 'munge.socket.2'}",
                              f"--key-file={key}", f"--pid-file={munge / 'munged.pid'}",
                              f"--seed-file={munge / 'munged.seed'}", f"--log-file={munge / 'munged.log'}"],
                   user="munge", group="munge")
        self.wait_for(lambda: subprocess.run(["munge", "-n", f"--socket={munge / 'munge.socket.2'}"],
                                             capture_output=True, timeout=COMMAND_TIMEOUT).returncode == 0,
                      "munged to answer on its socket")

    def start_slurm(self) -> None:
        (self.root / "state").mkdir()
        (self.root / "spool").mkdir()
        self.spawn("slurmctld", ["slurmctld", "-D", "-i"])
        self.spawn("slurmd", ["slurmd", "-D", "-N", "localhost"])
        self.wait_for(lambda: self.command("sinfo", "-h", "-N", "-o", "%T", check=False).split() == ["idle"] * 2,
                      "the node to be idle in both partitions (sinfo)")

    def spawn(self, name: str, argv: list[str], **kwargs) -> None:
        out = open(self.root / f"{name}.out", "w")  # the daemon's own messages before its log opens
        with out:
            self.processes[name] = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=self.root,
                                                    start_new_session=True, **kwargs)

    def wait_for(self, ready, what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            for name, proc in self.processes.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited ({proc.returncode}) while waiting for {what}:\n"
                                       f"{self.diagnostics()}")
            with contextlib.suppress(subprocess.TimeoutExpired):
                if ready():
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out after {START_TIMEOUT} s waiting for {what}:\n{self.diagnostics()}")
            time.sleep(0.5)

    def diagnostics(self) -> str:
        tails = []
        for name in (*(f"{d}.out" for d in DAEMONS), "slurmctld.log", "slurmd.log"):
            path = self.root / name
            if path.exists():
                tails.append(f"--- {name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-15:]))
        return "\n".join(tails)

    # ------------------------------------------------------------ stop

    def cancel_jobs(self) -> None:
        if "slurmctld" not in self.processes or self.processes["slurmctld"].poll() is not None:
            return
        active = ("-t", "PENDING,RUNNING,SUSPENDED,COMPLETING,CONFIGURING")
        ids = self.command("squeue", "-h", "-o", "%i", *active).split()
        if ids:
            self.command("scancel", *ids, check=False)
        deadline = time.monotonic() + START_TIMEOUT
        while self.command("squeue", "-h", "-o", "%i", *active, check=False).split():
            if time.monotonic() > deadline:
                raise RuntimeError(f"jobs still active {START_TIMEOUT} s after scancel")
            time.sleep(1)

    def stop_daemons(self) -> None:
        for name in reversed(list(self.processes)):  # slurmd, slurmctld, then munged
            proc = self.processes[name]
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=COMMAND_TIMEOUT)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=COMMAND_TIMEOUT)


@contextlib.contextmanager
def _etc_slurm_lock():
    """Only one test cluster at a time on a machine: they share /etc/slurm. The lock is a flock on
    that folder itself, so it writes nothing and dies with its holder."""
    created = not ETC.exists()
    if created:
        ETC.mkdir(parents=True)
    fd = os.open(ETC, os.O_RDONLY)
    try:
        deadline = time.monotonic() + LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"another test cluster held {ETC} for {LOCK_TIMEOUT} s") from None
                time.sleep(1)
        yield created
    finally:
        os.close(fd)


@contextlib.contextmanager
def slurm_cluster():
    """Start the cluster; yield a SlurmCluster; on exit stop it and remove everything it wrote."""
    require_slurm()
    with _etc_slurm_lock() as created_etc:
        others = _running(("slurmctld", "slurmd"))
        if others:
            pytest.fail(f"SLURM daemons already run on this machine ({', '.join(others)}); the test cluster "
                        f"would replace their {ETC / 'slurm.conf'}. Stop them or run the SLURM tests elsewhere.",
                        pytrace=False)
        root = Path(tempfile.mkdtemp(prefix="msga-slurm-", dir="/tmp"))
        root.chmod(0o755)  # munged, as the munge user, must reach its folder inside
        cluster = SlurmCluster(root)
        saved = {name: (ETC / name).read_bytes() for name in WRITTEN if (ETC / name).exists()}
        errors = []
        try:
            for name, text in cluster.write_config().items():
                (ETC / name).write_text(text)
            cluster.start_munge()
            cluster.start_slurm()
            yield cluster
        finally:
            for step in (cluster.cancel_jobs, cluster.stop_daemons):
                try:
                    step()
                except Exception as e:  # every step runs; the first failure is raised at the end
                    errors.append(f"{step.__name__}: {e}")
            for name in WRITTEN:
                try:
                    if name in saved:
                        (ETC / name).write_bytes(saved[name])
                    else:
                        (ETC / name).unlink(missing_ok=True)
                except OSError as e:
                    errors.append(f"restoring {ETC / name}: {e}")
            shutil.rmtree(root, ignore_errors=True)
            if created_etc:
                with contextlib.suppress(OSError):
                    ETC.rmdir()
            if errors:
                raise RuntimeError("stopping the test cluster: " + "; ".join(errors))
