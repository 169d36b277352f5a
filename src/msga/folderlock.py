"""One Snakemake at a time in a folder; a lock whose owner is gone is cleared by the next one.

Snakemake's own lock files hold no process id, so it cannot tell a running Snakemake's lock from
one a killed Snakemake left, and its unlock deletes every lock in the folder, a running one's
included. Every Snakemake started here (the Snakefile calls `claim` while it is read, before
Snakemake does anything) first takes an exclusive flock on .snakemake/msga.lock and keeps it
until its process ends: the kernel releases it however the process ends, kill -9 included. So:
- the flock is free: no Snakemake of this workflow is alive here; any lock in .snakemake/locks
  was left by a dead one and is removed, and the command goes on (the workflow profile reruns
  incomplete jobs; training resumes from its checkpoint);
- the flock is held: another Snakemake is running; this one is refused before it touches
  anything, with the running one's pid, host, start time and command (from OWNER).
Torch-free.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from msga.errors import Failure

STATE = Path(".snakemake")
LOCK = STATE / "msga.lock"
OWNER = STATE / "msga-owner.json"  # who holds (or last held) the flock, for messages
SNAKEMAKE_LOCKS = STATE / "locks"

_held: int | None = None  # the open, flocked file descriptor of this process; never closed on purpose


class FolderBusy(Failure):
    pass


def claim(folder: str | Path = ".") -> str | None:
    """Take the folder for this process. Returns a note to print when a dead Snakemake's locks were
    cleared; raises FolderBusy, naming the running Snakemake, when one holds the folder."""
    global _held
    if _held is not None:
        return None
    folder = Path(folder)
    (folder / STATE).mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by child processes
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise FolderBusy(_busy_message(folder)) from None
    except OSError as err:  # a filesystem without flock: go on unguarded, and say so
        os.close(fd)
        return f"msga: cannot lock {folder / LOCK} ({err.strerror}); running without the one-Snakemake-at-a-time guard"
    _held = fd
    previous = read_owner(folder)
    _write_owner(folder)
    stale = sorted((folder / SNAKEMAKE_LOCKS).glob("*.lock"))
    if not stale:
        return None
    for path in stale:
        path.unlink(missing_ok=True)
    who = _describe(previous) if previous else "a Snakemake"
    return (f"msga: {who} left {len(stale)} lock file(s) in {folder / SNAKEMAKE_LOCKS} and is no longer running "
            "(killed, or its machine lost); they were removed. Interrupted jobs run again; training runs resume "
            "from their last checkpoints.")


def read_owner(folder: str | Path = ".") -> dict:
    try:
        owner = json.loads((Path(folder) / OWNER).read_text())
        return owner if isinstance(owner, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_owner(folder: Path) -> None:
    owner = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
             "command": " ".join(sys.argv)[:500]}
    tmp = folder / OWNER.with_name(f"{OWNER.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(owner) + "\n")
    os.replace(tmp, folder / OWNER)


def _describe(owner: dict) -> str:
    return (f"the Snakemake started {owner.get('started', '?')} (pid {owner.get('pid', '?')} on "
            f"{owner.get('host', '?')}: {owner.get('command', '?')})")


def _busy_message(folder: Path) -> str:
    owner = read_owner(folder)
    who = _describe(owner) if owner else "another Snakemake"
    return (f"{who} is running in {folder.resolve()}. This command was refused and changed nothing. Wait for it to "
            f"finish (or stop it: kill {owner.get('pid', '<pid>')}); then run your command again.")


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
