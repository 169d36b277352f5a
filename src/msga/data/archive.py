"""Steps 2 and 3 of the data: verify the archive's md5, then extract it safely.

Order matters for safety: the md5 is checked before any member is read, and every member is
judged by name and type before a byte is written; the extracted folder appears only complete.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import zlib
from pathlib import Path, PurePosixPath

from msga.data import FetchError

from msga.data.format import ARCHIVE_NAME, FOLDER, MEMBERS, OFFICIAL_MD5  # noqa: F401 (ARCHIVE_NAME: re-exported)

# Per-file md5s of the official archive's members; other archives (the fixture) have none.
MEMBER_MD5 = {
    OFFICIAL_MD5: {
        "train": "16019d7e3df5f24257cddd939b257f8d",
        "test": "f0ef6b0ae62326f3e7ffdfab6717acfc",
        "meta": "7973b15100ade9c7d40fb424638fde48",
    }
}


def md5sum(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def read_md5_file(path: str | Path) -> str:
    """The first word of an md5 file (`md5sum` writes 'HEX  NAME')."""
    words = Path(path).read_text().split()
    if not words or len(words[0]) != 32 or any(c not in "0123456789abcdef" for c in words[0]):
        raise FetchError(f"{path} does not hold an md5 (32 lowercase hex digits)")
    return words[0]


def verify(archive: str | Path, md5: str) -> str:
    """The archive's md5, if it is the expected one; nothing inside it is read."""
    actual = md5sum(archive)
    if actual != md5:
        raise FetchError(f"md5 mismatch for {archive}: expected {md5}, got {actual}; the file is not the "
                         "archive the params name. Delete it and run again to fetch it anew.")
    return actual


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


