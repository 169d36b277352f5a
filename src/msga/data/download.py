"""Step 1 of the data: obtain the archive, from a URL (a download with retries) or a local file.

Whatever the source, the file appears under its final name only once it is complete and its md5
matches; a failure leaves nothing behind that a rerun could mistake for the archive.
"""

from __future__ import annotations

import http.client
import logging
import os
import shutil
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from msga.data import FetchError
from msga.data.archive import md5sum
from msga.data.format import MAX_ARCHIVE_BYTES, OFFICIAL_ARCHIVE_BYTES
from msga.infra.atomic import atomic_path

log = logging.getLogger("msga.fetch")
# why an archive above MAX_ARCHIVE_BYTES is refused, for the messages that refuse one
_WHY_BOUND = f"the most an archive that extraction accepts can have; CIFAR-100's has {OFFICIAL_ARCHIVE_BYTES:,}"

GZIP_MAGIC = b"\x1f\x8b"
TRANSIENT_HTTP = {429, 500, 502, 503, 504}
OFFLINE_HINT = (
    "alternatives: download cifar-100-python.tar.gz elsewhere and set data.tarball in params.yaml "
    "(or pass the file as --source); use a mirror (data.url, same md5); "
    "or run the offline demo: snakemake --cores all --configfile workflow/demo.yaml"
)


def obtain(source: str, dest: str | Path, md5: str | None, timeout: float = 60.0, retries: int = 3,
           backoff: float = 2.0) -> Path:
    """`source` is a URL (http, https, file) or a local path; `dest` receives a verified copy."""
    if "://" in source:
        return download(source, dest, md5, timeout, retries, backoff)
    return copy_local(Path(source), Path(dest), md5)


def copy_local(source: Path, dest: Path, md5: str | None) -> Path:
    """A user's own archive, copied; the user's file is read, never moved, replaced or deleted."""
    if not source.is_file():
        raise FetchError(f"tarball {source} does not exist (data.tarball / --source); give the path of "
                         "cifar-100-python.tar.gz")
    size = source.stat().st_size
    if size > MAX_ARCHIVE_BYTES:  # before a byte is copied: the copy would fill the disk for nothing
        raise FetchError(f"tarball {source} is {size:,} bytes, more than {MAX_ARCHIVE_BYTES:,} ({_WHY_BOUND}); it "
                         "was left as it is and nothing was copied. Check that it is cifar-100-python.tar.gz.")
    if dest.exists() and os.path.samefile(source, dest):  # already in place: checked, not rewritten
        _check_local_md5(source, md5sum(source), md5)
        return dest
    try:
        with atomic_path(dest) as tmp:
            shutil.copyfile(source, tmp)
            _check_local_md5(source, md5sum(tmp), md5)
    except OSError as err:
        raise FetchError(f"cannot copy {source} to {dest}: {err}; nothing was kept") from err
    return dest


def _check_local_md5(source: Path, actual: str, md5: str | None) -> None:
    if md5 and actual != md5:
        raise FetchError(f"md5 mismatch for {source}: expected {md5}, got {actual}; {source} was left "
                         "as it is. Check data.md5, or that the file is the CIFAR-100 python archive.")


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


def _too_large(url: str, what: str) -> FetchError:
    return FetchError(f"{url} {what} ({_WHY_BOUND}): the download was stopped and nothing was kept. Check the URL; "
                      f"{OFFLINE_HINT}")


def _stream(url: str, tmp: Path, timeout: float) -> None:
    """The response to `tmp`, at most MAX_ARCHIVE_BYTES of it: a larger announced length is refused
    before a byte is written, and a server that sends more than it may is cut off."""
    request = urllib.request.Request(url, headers={"User-Agent": "msga-fetch"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        kind = response.headers.get_content_type()
        if kind == "text/html":  # a login, proxy or error page served with 200
            raise FetchError(f"{url} served an HTML page (Content-Type {kind}), not the .tar.gz archive; "
                             f"nothing was kept. Check the URL in a browser; {OFFLINE_HINT}")
        total = response.headers.get("Content-Length")
        total = int(total) if total and total.isdigit() else None
        if total is not None and total > MAX_ARCHIVE_BYTES:
            raise _too_large(url, f"announces {total:,} bytes (Content-Length), more than {MAX_ARCHIVE_BYTES:,}")
        received = 0
        with open(tmp, "wb") as out, tqdm(
            total=total, unit="B", unit_scale=True, desc=f"download {Path(tmp).name}",
            disable=None, leave=False,
        ) as bar:
            # one byte past the bound tells a file that fits from one that does not
            while block := response.read(min(1 << 20, MAX_ARCHIVE_BYTES + 1 - received)):
                if received == 0 and not block.startswith(GZIP_MAGIC):
                    raise FetchError(f"{url} did not send a gzip archive (it starts with {block[:40]!r}); "
                                     f"nothing was kept. Check the URL; {OFFLINE_HINT}")
                received += len(block)
                if received > MAX_ARCHIVE_BYTES:
                    raise _too_large(url, f"sent more than {MAX_ARCHIVE_BYTES:,} bytes")
                out.write(block)
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


