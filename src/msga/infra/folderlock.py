"""One Snakemake at a time in a folder; a lock whose owner is gone is cleared by the next one.

Snakemake's own lock files hold no process id, so it cannot tell a running Snakemake's lock from
one a killed Snakemake left, and its unlock deletes every lock in the folder, a running one's
included. Every Snakemake started here (the Snakefile calls `claim` while it is read, before
Snakemake does anything) first takes an exclusive flock on .snakemake/msga.lock and keeps it
until its process ends: the kernel releases it however the process ends, kill -9 included.

The holder also records itself in OWNER (host, pid, the process's start time, command) and
refreshes a heartbeat there while it lives. That record is the second, checkable guard, for where
the flock cannot see every holder: a shared filesystem whose flocks are local to each host (NFS
`local_lock`, Lustre `localflock`), or one without flock at all. An owner counts as alive when
- on this host: its pid runs and started when the record says (a reused pid is not it);
- on another host: its heartbeat is younger than STALE_AFTER (that process cannot be checked).
So:
- the owner is alive, or the flock is held: another Snakemake is running; this one is refused
  before it touches anything, naming the running one;
- otherwise any lock in .snakemake/locks was left by a dead Snakemake and is removed, and the
  command goes on (the workflow profile reruns incomplete jobs; training resumes from its
  checkpoint).
Torch-free.
"""

from __future__ import annotations

import atexit
import fcntl
import json
import os
import socket
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from msga.infra.errors import Failure

STATE = Path(".snakemake")
LOCK = STATE / "msga.lock"
OWNER = STATE / "msga-owner.json"  # who holds (or last held) the folder
SNAKEMAKE_LOCKS = STATE / "locks"
HEARTBEAT = 20.0  # seconds between the holder's refreshes of OWNER
STALE_AFTER = 120.0  # seconds without a refresh after which an owner on another host counts as gone

_held: int | None = None  # the open, flocked file descriptor of this process; never closed on purpose


class FolderBusy(Failure):
    pass


def claim(folder: str | Path = ".") -> str | None:
    """Take the folder for this process. Returns a note to print when a dead Snakemake's locks were
    cleared (or the folder cannot be flocked); raises FolderBusy, naming the running Snakemake, when
    one holds the folder."""
    global _held
    if _held is not None:
        return None
    folder = Path(folder).resolve()  # Snakemake may change directory (-d) before this process exits
    (folder / STATE).mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by child processes
    note = None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise FolderBusy(_busy_message(folder, read_owner(folder))) from None
    except OSError as err:  # a filesystem without flock: the owner record alone guards
        os.close(fd)
        fd = None
        note = f"msga: cannot flock {folder / LOCK} ({err.strerror}); only the owner record guards this folder"
    previous = read_owner(folder)
    if previous and alive(previous):
        if fd is not None:
            os.close(fd)
        raise FolderBusy(_busy_message(folder, previous))
    _held = fd if fd is not None else -1
    try:
        _write_owner(folder, _me())
    except OSError as err:  # a full or read-only disk: Snakemake will say more; the flock still guards
        return f"msga: cannot record this Snakemake in {folder / OWNER} ({err.strerror}); only the flock guards"
    _keep_alive(folder)
    stale = sorted((folder / SNAKEMAKE_LOCKS).glob("*.lock"))
    if not stale:
        return note
    for path in stale:
        path.unlink(missing_ok=True)
    who = _describe(previous) if previous else "a Snakemake"
    cleared = (f"msga: {who} left {len(stale)} lock file(s) in {folder / SNAKEMAKE_LOCKS} and is no longer running "
               "(killed, or its machine lost); they were removed. Interrupted jobs run again; training runs resume "
               "from their last checkpoints.")
    return f"{note}\n{cleared}" if note else cleared


def read_owner(folder: str | Path = ".") -> dict:
    try:
        owner = json.loads((Path(folder) / OWNER).read_text())
        return owner if isinstance(owner, dict) else {}
    except (OSError, ValueError):
        return {}


def running_owner(folder: str | Path = ".") -> dict:
    """The owner record of the Snakemake holding the folder now, or {} when none is alive."""
    owner = read_owner(folder)
    return owner if owner and alive(owner) else {}


def alive(owner: dict, now: float | None = None) -> bool:
    """Whether the process an owner record names still runs (see the module's docstring)."""
    if owner.get("ended"):
        return False
    if owner.get("host") != socket.gethostname():
        heartbeat = owner.get("heartbeat")
        return isinstance(heartbeat, (int, float)) and (now or time.time()) - heartbeat < STALE_AFTER
    pid = owner.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0 or pid == os.getpid():
        return False
    started = process_start(pid)
    return started is not None and started == owner.get("process_start")


def process_start(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22): with the pid,
    it names one process, whatever later reuses the pid. None when no such process runs."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # the command name may hold spaces and parentheses
    if fields[0] in ("Z", "X"):  # killed and not yet reaped: gone
        return None
    return int(fields[19])


def _me() -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname(), "process_start": process_start(os.getpid()),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"), "command": " ".join(sys.argv)[:500],
            "heartbeat": time.time()}


def _write_owner(folder: Path, owner: dict) -> None:
    tmp = folder / OWNER.with_name(f"{OWNER.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(owner) + "\n")
    os.replace(tmp, folder / OWNER)


def _keep_alive(folder: Path) -> None:
    """Refresh the heartbeat while this process lives; mark the record ended when it exits. One
    lock orders the two writers, so no late heartbeat undoes the end mark."""
    owner = read_owner(folder)
    writing, ended = threading.Lock(), threading.Event()

    def beat() -> None:
        while not ended.wait(HEARTBEAT):
            with writing:
                if ended.is_set():
                    return
                try:
                    _write_owner(folder, {**owner, "heartbeat": time.time()})
                except OSError:  # a full or vanished disk: the flock still guards this host
                    pass

    def end() -> None:
        with writing:
            ended.set()
            try:
                if read_owner(folder).get("pid") == owner["pid"]:
                    _write_owner(folder, {**owner, "heartbeat": time.time(), "ended": True})
            except OSError:
                pass

    threading.Thread(target=beat, name="msga-folder-heartbeat", daemon=True).start()
    atexit.register(end)


def _describe(owner: dict) -> str:
    return (f"the Snakemake started {owner.get('started', '?')} (pid {owner.get('pid', '?')} on "
            f"{owner.get('host', '?')}: {owner.get('command', '?')})")


def _busy_message(folder: Path, owner: dict) -> str:
    who = _describe(owner) if owner else "another Snakemake"
    if owner and owner.get("host") != socket.gethostname():
        wait = (f"Wait for it to finish (or stop it on {owner.get('host')}); if that machine is gone, the folder "
                f"is free {STALE_AFTER:.0f} s after its last heartbeat. Then run your command again.")
    else:
        wait = f"Wait for it to finish (or stop it: kill {owner.get('pid', '<pid>')}); then run your command again."
    return f"{who} is running in {folder.resolve()}. This command was refused and changed nothing. {wait}"


@contextmanager
def exclusive(path: str | Path, what: str) -> Iterator[None]:
    """Hold an exclusive flock on `path` for the block, or raise FolderBusy naming the holder.

    Two processes training the same run (a job orphaned by a killed Snakemake, and its rerun)
    would write one checkpoint in turns; the second is refused instead.
    """
    path = Path(path)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            raise FolderBusy(f"{what} is already under way in {holder}; this one was refused and changed nothing. "
                             "Wait for it, or stop it, then run again.") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%H:%M:%S')}".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the flock
