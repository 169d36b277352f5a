"""Atomic file writes: a reader sees the old file or the complete new one, never a half."""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from msga.infra.errors import Failure

log = logging.getLogger("msga.io")


def _writer_tag() -> str:
    """Who writes a temp file: this host (and, where Linux shows it, this pid namespace, so two
    containers sharing a host name and a folder cannot mistake each other's pids), with no dots."""
    host = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname()) or "host"
    try:
        return f"{host}-{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return host


def _alive(pid: int) -> bool:
    """Whether process `pid` still runs here; a zombie (killed, not yet reaped by its parent) writes nothing."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()  # "PID (COMMAND) STATE ...": the command may hold ")"
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[:1] != ["Z"]


def remove_dead_writers_temps(path: str | Path) -> list[Path]:
    """Remove the temp files of `path` that earlier writers on this host left when they died
    (kill -9, out of memory: no `finally` ran). A temp file is named .NAME.WRITER.PID.RANDOM.tmp;
    one whose writer is alive, runs elsewhere, or is this process (another thread) is left alone,
    as is any file not named so."""
    path = Path(path)
    prefix, tag, removed = f".{path.name}.", _writer_tag(), []
    try:
        names = [entry.name for entry in os.scandir(path.parent)]
    except OSError:
        return removed
    for name in names:
        if not (name.startswith(prefix) and name.endswith(".tmp")):
            continue
        fields = name[len(prefix):-len(".tmp")].split(".")
        if len(fields) != 3 or fields[0] != tag or not fields[1].isdigit():
            continue
        pid = int(fields[1])
        if pid == os.getpid() or _alive(pid):
            continue
        try:
            os.unlink(path.parent / name)
        except OSError:  # gone already (another run cleaned it), or not ours to remove: the write goes on
            continue
        log.info("removed %s, left by an earlier writer (pid %d) that died", path.parent / name, pid)
        removed.append(path.parent / name)
    return removed


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path beside `path`; rename it over `path` only if the block succeeds.

    The temp file lives in the same directory so the final os.replace is atomic on POSIX.
    On any failure (a full disk included) the temp file is removed and `path` is untouched.
    A writer killed outright cannot remove its temp file: its name carries the writer's host and
    pid, so the next write of the same `path` removes it once that writer is gone.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_writers_temps(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{_writer_tag()}.{os.getpid()}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; the final file gets the usual mode
    try:
        yield tmp
        with open(tmp, "rb") as f:  # the bytes reach the disk before the name does
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


class WriteFailed(Failure):
    """An output could not be written (a full disk, a read-only folder); the old file is intact."""

    def __init__(self, path: Path, err: BaseException, needed: int | None = None):
        space = f"; about {needed / 1e6:,.0f} MB are needed there" if needed else ""
        super().__init__(
            f"could not write {path}: {err}. Nothing was half-written: {path.name} is as it was before "
            f"(its previous version, if any, is intact). Free disk space (df -h {path.parent}{space}) or fix "
            "the folder's permissions, then rerun; a training run resumes from its last checkpoint."
        )
        self.path = path


@contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """atomic_path for the files this project produces: a failed write becomes one clear WriteFailed.

    torch.save reports a failed write (ENOSPC, EFBIG) as a plain RuntimeError from its C++ writer,
    numpy and open() as OSError; both mean the same thing to the user.
    """
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            yield tmp
    except WriteFailed:
        raise
    except OSError as err:
        raise WriteFailed(path, err) from err
    except RuntimeError as err:
        if type(err) is not RuntimeError:  # our own errors (FetchError, NonFiniteLoss) pass untouched
            raise
        raise WriteFailed(path, err) from err


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(text)


STAMP_NAME = re.compile(r"[0-9a-f]{16}")  # a stamp is named by a content key (config.config_hash)
STAMP_MARKER = "msga stamp"  # the first words of every stamp this project writes


def _stamp_text(name: str) -> str:
    return f"{STAMP_MARKER} {name}: the outputs beside it were made from the content of this key\n"


def is_stamp(path: Path) -> bool:
    """Whether `path` is a stamp this project wrote: named by a key and holding the marker (or, as
    stamps were first written, its own name and nothing else)."""
    if not (STAMP_NAME.fullmatch(path.name) and path.is_file() and not path.is_symlink()):
        return False
    try:
        if path.stat().st_size > 200:
            return False
        text = path.read_text()
    except (OSError, UnicodeDecodeError):
        return False
    return text == _stamp_text(path.name) or text == f"{path.name}\n"


def write_stamp(path: str | Path) -> None:
    """Mark a step's outputs as made from the content the stamp's name (a key) names, replacing the
    stamps of earlier contents in its folder. Only stamps this project wrote (is_stamp) are removed:
    any other file there, a user's notes or a table, stays."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for old in path.parent.iterdir():
        if old.name != path.name and is_stamp(old):
            old.unlink(missing_ok=True)
    write_text_atomic(path, _stamp_text(path.name))


def write_json_atomic(path: str | Path, obj) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n")  # JSON has no NaN
