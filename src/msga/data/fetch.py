"""The first three data steps in one call (obtain, verify, extract), for use outside the DAG."""

from __future__ import annotations

from pathlib import Path

from msga.data import FetchError
from msga.data.archive import ARCHIVE_NAME, OFFICIAL_MD5, extract, md5sum, verify
from msga.data.download import OFFLINE_HINT, download


def fetch(out: str | Path, url: str | None = None, md5: str | None = OFFICIAL_MD5, tarball: str | Path | None = None,
          timeout: float = 60.0, retries: int = 3, backoff: float = 2.0) -> Path:
    """Verify and extract a local `tarball` in place, or download `url` into out/ first; returns
    the extracted folder out/cifar-100-python."""
    out = Path(out)
    if tarball is not None:
        archive = Path(tarball)
        if not archive.is_file():
            raise FetchError(f"tarball {archive} does not exist")
    elif url:
        archive = out / ARCHIVE_NAME
        if not (archive.exists() and md5 and md5sum(archive) == md5):  # an earlier verified download is reused
            download(url, archive, md5, timeout, retries, backoff)
    else:
        raise FetchError(f"no URL and no tarball given; {OFFLINE_HINT}")
    if md5:
        verify(archive, md5)
    return extract(archive, out, md5)
