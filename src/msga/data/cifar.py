"""CIFAR-100: download -> verify md5 -> safe extract -> load -> pack into one tensor file.

Order matters for safety: the archive's md5 is checked before any pickle inside it is read,
members are checked for path traversal before anything is written, and every file appears
under its final name only once it is complete.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import pickle
import shutil
import socket
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path, PurePosixPath

import numpy as np
import torch
from tqdm import tqdm

from msga.io import atomic_output, atomic_path

log = logging.getLogger("msga.fetch")

URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
MD5 = "eb9058c3a382ffc7106e4002c42a8d85"
ARCHIVE_NAME = "cifar-100-python.tar.gz"
FOLDER = "cifar-100-python"
SPLITS = ("train", "test")
MEMBERS = ("train", "test", "meta")
# Per-file md5s of the official archive's members; other archives (the fixture) have none.
MEMBER_MD5 = {
    MD5: {
        "train": "16019d7e3df5f24257cddd939b257f8d",
        "test": "f0ef6b0ae62326f3e7ffdfab6717acfc",
        "meta": "7973b15100ade9c7d40fb424638fde48",
    }
}
GZIP_MAGIC = b"\x1f\x8b"
TRANSIENT_HTTP = {429, 500, 502, 503, 504}
NUM_CLASSES = 100
IMAGE_SHAPE = (3, 32, 32)
OFFLINE_HINT = (
    "alternatives: download cifar-100-python.tar.gz elsewhere and pass --tarball PATH "
    "(or set data.tarball in params.yaml); use a mirror with --url URL (same md5); "
    "or run the offline demo: snakemake --cores all --configfile workflow/demo.yaml"
)


class FetchError(RuntimeError):
    """The archive could not be obtained, verified or extracted; nothing was left behind."""

    def __init__(self, message: str, transient: bool = False):
        super().__init__(message)
        self.transient = transient  # another attempt may succeed (a dropped connection, a 5xx)


def md5sum(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------- download


def download(url: str, dest: str | Path, md5: str | None, timeout: float = 60.0,
             retries: int = 3, backoff: float = 2.0) -> Path:
    """Stream `url` to `dest`, verify md5, rename into place. Leaves no partial file.

    Transient failures (a dropped connection, a timeout, HTTP 5xx or 429) are retried up to
    `retries` attempts in all, waiting backoff, 2*backoff, ... seconds; anything else (404, an HTML
    page instead of the archive, a wrong md5) fails at once, since repeating it cannot help.
    """
    if retries < 1:
        raise ValueError(f"retries must be >= 1, got {retries}")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(1, retries + 1):
        try:
            return _download_once(url, dest, md5, timeout)
        except FetchError as err:
            if not err.transient:
                raise
            if attempt == retries:
                raise FetchError(f"{err} (gave up after {retries} attempt{'s' * (retries > 1)})") from err
            wait = backoff * 2 ** (attempt - 1)
            log.warning("attempt %d of %d failed: %s; retrying in %.0f s", attempt, retries, err, wait)
            time.sleep(wait)
    raise AssertionError("unreachable: the last attempt returns or raises")


def _download_once(url: str, dest: Path, md5: str | None, timeout: float) -> Path:
    try:
        with atomic_path(dest) as tmp:
            _stream(url, tmp, timeout)
            actual = md5sum(tmp)
            if md5 and actual != md5:
                raise FetchError(
                    f"md5 mismatch for {url}: expected {md5}, got {actual}; the downloaded file "
                    "was removed. The server sent different content (a proxy page, a wrong "
                    "mirror or a damaged transfer); retry, or check --url and --md5."
                )
    except FetchError:
        raise
    except (urllib.error.URLError, http.client.HTTPException, socket.timeout, TimeoutError, ConnectionError) as err:
        raise _network_failure(url, err) from err
    except OSError as err:  # the local side: a full disk, a read-only folder
        raise FetchError(f"cannot write the download to {dest.parent}: {err}; nothing was kept") from err
    return dest


def _stream(url: str, tmp: Path, timeout: float) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "msga-fetch"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        kind = response.headers.get_content_type()
        if kind == "text/html":  # a login, proxy or error page served with 200
            raise FetchError(f"{url} served an HTML page (Content-Type {kind}), not the .tar.gz archive; "
                             f"nothing was kept. Check the URL in a browser; {OFFLINE_HINT}")
        total = response.headers.get("Content-Length")
        total = int(total) if total and total.isdigit() else None
        received = 0
        with open(tmp, "wb") as out, tqdm(
            total=total, unit="B", unit_scale=True, desc=f"download {ARCHIVE_NAME}",
            disable=None, leave=False,
        ) as bar:
            while block := response.read(1 << 20):
                if received == 0 and not block.startswith(GZIP_MAGIC):
                    raise FetchError(f"{url} did not send a gzip archive (it starts with {block[:40]!r}); "
                                     f"nothing was kept. Check the URL; {OFFLINE_HINT}")
                out.write(block)
                received += len(block)
                bar.update(len(block))
        if total is not None and received != total:
            raise ConnectionError(f"connection closed after {received} of {total} bytes")


def _network_failure(url: str, err: BaseException) -> FetchError:
    """What went wrong, said plainly, and whether another attempt may help (the server or the
    path to it may recover; a refused or unresolvable host, wrapped in URLError, will not)."""
    reason = getattr(err, "reason", err)
    if isinstance(err, urllib.error.HTTPError):
        return FetchError(f"download of {url} failed: the server answered HTTP {err.code} {err.reason}; "
                          f"{OFFLINE_HINT}", transient=err.code in TRANSIENT_HTTP)
    if isinstance(reason, (socket.timeout, TimeoutError)) or isinstance(err, (socket.timeout, TimeoutError)):
        return FetchError(f"download of {url} timed out (no data for the timeout); nothing was kept; "
                          f"{OFFLINE_HINT}", transient=True)
    if isinstance(err, (ConnectionError, http.client.HTTPException)) and not isinstance(err, urllib.error.URLError):
        return FetchError(f"download of {url} was cut short: {err}; nothing was kept, retry; {OFFLINE_HINT}",
                          transient=True)
    return FetchError(f"cannot reach {url} (no network or host unreachable: {reason}); {OFFLINE_HINT}")


# ---------------------------------------------------------------- safe extraction


def _check_member(member: tarfile.TarInfo) -> str | None:
    """The member's name below the archive folder, or None for folders; raises if unsafe."""
    name = member.name
    path = PurePosixPath(name)
    if path.is_absolute() or name.startswith(("/", "\\")) or ".." in path.parts:
        raise FetchError(f"unsafe archive member {name!r}: it would escape the target folder")
    if member.issym() or member.islnk():
        raise FetchError(f"unsafe archive member {name!r}: links are not allowed in the archive")
    if member.isdir():
        return None
    if not member.isfile():
        raise FetchError(f"unsafe archive member {name!r}: only regular files are allowed")
    parts = [p for p in path.parts if p != "."]
    if len(parts) != 2 or parts[0] != FOLDER:
        raise FetchError(f"unexpected archive member {name!r}: expected {FOLDER}/<file>")
    return parts[1]


def extract(archive: str | Path, out: str | Path, archive_md5: str | None = None) -> Path:
    """Safely extract the archive into out/cifar-100-python; all members are checked first."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    expected = MEMBER_MD5.get(archive_md5 or "", {})
    staging = Path(tempfile.mkdtemp(dir=out, prefix=".extract-"))
    try:
        try:
            with tarfile.open(archive, mode="r:gz") as tar:
                members = tar.getmembers()
                files = {}
                for member in members:  # every member is judged before any byte is written
                    short = _check_member(member)
                    if short is not None:
                        files[short] = member
                missing = [m for m in MEMBERS if m not in files]
                if missing:
                    raise FetchError(f"{archive} lacks {', '.join(f'{FOLDER}/{m}' for m in missing)}")
                target = staging / FOLDER
                target.mkdir()
                for short, member in files.items():
                    with tar.extractfile(member) as src, open(target / short, "wb") as dst:
                        shutil.copyfileobj(src, dst)
        except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
            raise FetchError(f"{archive} is not a readable .tar.gz ({err}); delete it and fetch again") from err
        for short, want in expected.items():
            got = md5sum(target / short)
            if got != want:
                raise FetchError(f"{FOLDER}/{short}: md5 expected {want}, got {got}")
        final = out / FOLDER
        if final.exists():  # swap in the new folder; the old one goes only after the swap
            old = staging / "old"
            os.replace(final, old)
        os.replace(target, final)
        return final
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def fetch(
    out: str | Path,
    url: str | None = URL,
    md5: str | None = MD5,
    tarball: str | Path | None = None,
    timeout: float = 60.0,
    retries: int = 3,
    backoff: float = 2.0,
) -> Path:
    """Obtain the archive (local tarball or download), verify it, extract; returns the folder."""
    out = Path(out)
    if tarball is not None:
        archive = Path(tarball)
        if not archive.is_file():
            raise FetchError(f"tarball {archive} does not exist")
        if md5:
            actual = md5sum(archive)
            if actual != md5:  # a user's own file is reported, never deleted
                raise FetchError(f"md5 mismatch for {archive}: expected {md5}, got {actual}")
    else:
        if not url:
            raise FetchError(f"no --url and no --tarball given; {OFFLINE_HINT}")
        archive = out / ARCHIVE_NAME
        if archive.exists() and md5 and md5sum(archive) == md5:
            pass  # an earlier verified download is reused
        else:
            archive.unlink(missing_ok=True)
            download(url, archive, md5, timeout, retries, backoff)
    return extract(archive, out, md5)


# ---------------------------------------------------------------- loading


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and plain Python values only; anything else is refused."""

    ALLOWED_MODULES = {
        "numpy", "numpy.core.multiarray", "numpy._core.multiarray",
        "numpy.core.numeric", "numpy._core.numeric", "_codecs",
    }

    def find_class(self, module, name):
        if module in self.ALLOWED_MODULES:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR pickle")


def read_pickle(path: str | Path) -> dict:
    with open(path, "rb") as f:
        try:
            obj = _ArrayUnpickler(f, encoding="latin1").load()
        except Exception as err:
            raise FetchError(f"{path} is not a CIFAR pickle: {err}") from err
    if not isinstance(obj, dict):
        raise FetchError(f"{path} holds a {type(obj).__name__}, expected a dict")
    return obj


def _folder(root: str | Path) -> Path:
    root = Path(root)
    return root if root.name == FOLDER else root / FOLDER


def load_split(root: str | Path, split: str) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """(images uint8 (N, 3, 32, 32), fine labels int64 (N,), class names), in file order."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    folder = _folder(root)
    entry = read_pickle(folder / split)
    meta = read_pickle(folder / "meta")
    for key in ("data", "fine_labels"):
        if key not in entry:
            raise FetchError(f"{folder / split} lacks the key {key!r} (keys: {sorted(entry)})")
    if "fine_label_names" not in meta:
        raise FetchError(f"{folder / 'meta'} lacks the key 'fine_label_names'")
    data = np.asarray(entry["data"])
    labels = np.asarray(entry["fine_labels"])
    n = data.shape[0] if data.ndim else 0
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != int(np.prod(IMAGE_SHAPE)):
        raise FetchError(f"{folder / split}: 'data' is {data.dtype} {data.shape}, expected uint8 (N, 3072)")
    if labels.shape != (n,) or (n and (labels.min() < 0 or labels.max() >= NUM_CLASSES)):
        raise FetchError(f"{folder / split}: 'fine_labels' must be {n} integers in [0, {NUM_CLASSES})")
    classes = [str(c) for c in meta["fine_label_names"]]
    if len(classes) != NUM_CLASSES:
        raise FetchError(f"{folder / 'meta'}: {len(classes)} class names, expected {NUM_CLASSES}")
    images = torch.from_numpy(data.reshape(n, *IMAGE_SHAPE).copy())  # (N, 3, 32, 32): rows are channel-major
    return images, torch.from_numpy(labels.astype(np.int64)), classes


def pack(root: str | Path, out: str | Path) -> Path:
    """Both splits in one tensor file: a few hundred MB that reload in well under a second."""
    train_x, train_y, classes = load_split(root, "train")
    test_x, test_y, _ = load_split(root, "test")
    payload = {
        "train_images": train_x, "train_labels": train_y,
        "test_images": test_x, "test_labels": test_y,
        "classes": classes,
    }
    with atomic_output(out) as tmp:
        torch.save(payload, tmp)
    return Path(out)


def load_packed(path: str | Path) -> dict:
    """The packed tensors; weights_only=True so the file cannot run code."""
    path = Path(path)
    if not path.is_file():
        raise FetchError(f"packed data {path} does not exist; run `snakemake data/cifar100.pt` or `msga pack`")
    data = torch.load(path, map_location="cpu", weights_only=True)
    expected = {"train_images", "train_labels", "test_images", "test_labels", "classes"}
    if not isinstance(data, dict) or set(data) != expected:
        raise FetchError(f"{path} is not a packed CIFAR file (keys {sorted(data) if isinstance(data, dict) else type(data)})")
    return data
