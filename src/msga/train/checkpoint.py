"""A run folder's files that training replaces: the checkpoint after every epoch (SHA-256 checked,
resumed from), and the check that every file it would replace or delete is this project's."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import zipfile
from pathlib import Path

import torch

from msga.grid.paths import CHECKPOINT, HISTORY, METRICS, PREDICTIONS, PROGRESS, TRAINING_LOCK
from msga.infra.atomic import atomic_output
from msga.infra.errors import Failure

log = logging.getLogger("msga.train")

CHECKPOINT_MAGIC = b"msga checkpoint 1\n"  # what marks a checkpoint as this project's, and so safe to replace
DIGEST_BYTES = 32  # the SHA-256 trailer of a checkpoint file


class ForeignFile(Failure):
    """A file this project would write is there, but another program wrote it: it is left alone."""


def save_checkpoint(path: Path, state: dict) -> None:
    """A magic line, torch.save's bytes, then their SHA-256, written atomically.

    torch.load does not notice a flipped byte inside a tensor (it would resume from silently
    damaged weights); the digest makes any damage, truncation included, detectable at load. The
    magic line tells this project's checkpoints from a file of the same name that is not one.
    """
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getbuffer()
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(CHECKPOINT_MAGIC)
            f.write(payload)
            f.write(hashlib.sha256(payload).digest())


def load_checkpoint(path: Path, expected_hash: str, run: str, archive_md5: str | None = None) -> dict | None:
    """The checkpoint of this very configuration and data, or None (absent, stale or unreadable)."""
    if not path.exists():
        return None
    try:
        blob = memoryview(path.read_bytes())[len(CHECKPOINT_MAGIC):]
        payload, digest = blob[:-DIGEST_BYTES], blob[-DIGEST_BYTES:]
        if len(blob) <= DIGEST_BYTES or hashlib.sha256(payload).digest() != digest:
            raise ValueError("its SHA-256 does not match: the file is truncated or corrupted")
        state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as err:  # truncated or corrupted: start over rather than resume from garbage
        log.warning("%s: checkpoint %s is unreadable (%s); starting from scratch", run, path, err)
        return None
    if not isinstance(state, dict) or state.get("config_hash") != expected_hash:
        log.warning("%s: checkpoint %s belongs to another configuration; starting from scratch", run, path)
        return None
    if archive_md5 is not None and state.get("archive_md5") != archive_md5:
        log.warning("%s: checkpoint %s was trained on other data (archive md5 %s, now %s); starting from scratch",
                    run, path, state.get("archive_md5"), archive_md5)
        return None
    return state


def _is_json_object_with(path: Path, keys: set) -> bool:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(value, dict) and keys <= value.keys()


def _is_history(path: Path) -> bool:
    try:
        lines = path.read_text().splitlines()
        return bool(lines) and all(isinstance(r := json.loads(line), dict) and "epoch" in r for line in lines)
    except (OSError, ValueError):
        return False


def _is_predictions(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:  # names only: nothing in it is loaded
            return set(archive.namelist()) == {"probs.npy", "labels.npy"}
    except (OSError, zipfile.BadZipFile):
        return False


def _is_checkpoint(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(len(CHECKPOINT_MAGIC)) == CHECKPOINT_MAGIC


def _is_training_lock(path: Path) -> bool:
    head = path.read_bytes()[:8]
    return head == b"" or head.startswith(b"pid ")  # what `exclusive` writes into it


# Every file a training job replaces or deletes in its folder, with what marks it as this project's.
OWN_FILES = {
    CHECKPOINT: _is_checkpoint,
    PROGRESS: lambda p: _is_json_object_with(p, {"epoch", "epochs", "seconds", "time"}),
    HISTORY: _is_history,
    PREDICTIONS: _is_predictions,
    METRICS: lambda p: _is_json_object_with(p, {"run", "config_hash", "config"}),
    TRAINING_LOCK: _is_training_lock,
}


def check_ours(out_dir: Path, run: str) -> None:
    """Refuse to train into a folder where a file named like one of ours was not written by this
    project: it would be replaced or deleted. Nothing is written before this check."""
    for name, is_ours in OWN_FILES.items():
        path = Path(out_dir) / name
        try:
            foreign = path.exists() and not (path.is_file() and is_ours(path))
        except OSError:  # unreadable (permissions): it cannot be told ours, so it is not replaced
            foreign = True
        if foreign:
            raise ForeignFile(f"{run}: {path} is not a file this project wrote, so it was left as it is and nothing "
                              "was trained. Move it elsewhere (or train into another folder), then run again.")
