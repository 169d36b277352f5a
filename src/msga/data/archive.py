"""Steps 2 and 3 of the data: verify the archive's md5, then extract it safely.

Order matters for safety: the md5 is checked before any member is read. Every member is judged by
name, type and declared size before a byte is written, and its bytes are counted again as they
stream (a header can lie); the gzip may decompress to a bounded total, so no bomb fills a disk or
memory. Only the format's members are written, each to a temp file beside its final name; they
replace the old ones once all are complete and verified, and nothing else in the folder is touched.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import tarfile
import zlib
from contextlib import ExitStack, contextmanager
from pathlib import Path, PurePosixPath
from typing import Iterator

from msga.data import FetchError
from msga.data.format import (  # noqa: F401 (ARCHIVE_NAME: re-exported)
    ARCHIVE_NAME, EXTRA_MEMBER_LIMIT, FOLDER, MAX_EXTENDED_HEADER, MAX_TAR_BYTES, MEMBER_LIMITS, MEMBERS, OFFICIAL_MD5,
)
from msga.infra.atomic import WriteFailed, atomic_path

log = logging.getLogger("msga.fetch")
CHUNK = 1 << 20  # bytes per read while a member streams to its file

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


def _size_limit(short: str) -> int:
    return MEMBER_LIMITS.get(short, EXTRA_MEMBER_LIMIT)


@contextmanager
def _reading(archive: Path) -> Iterator[None]:
    """A failure to read the archive, said as such: the archive is damaged, the output is not at fault."""
    try:
        yield
    except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
        raise FetchError(f"{archive} is not a readable .tar.gz ({err}): it is damaged (cut short, or not a "
                         "gzip tar); obtain it again (a download: delete it and rerun)") from err


class _Bounded:
    """The decompressed tar, as tarfile reads it, refusing to yield more than `limit` bytes in all."""

    def __init__(self, raw, limit: int, archive: Path):
        self.raw, self.limit, self.archive, self.count = raw, limit, archive, 0

    def read(self, n: int = -1) -> bytes:
        allowed = self.limit - self.count + 1  # one byte past the limit tells a bomb from an archive that fits
        block = self.raw.read(allowed if n is None or n < 0 else min(n, allowed))
        self.count += len(block)
        if self.count > self.limit:
            raise FetchError(f"{self.archive} decompresses to more than {self.limit:,} bytes, more than CIFAR-100 "
                             "can need (a decompression bomb, or not the CIFAR-100 archive); nothing was extracted")
        return block


_EXTENDED = {tarfile.XHDTYPE: "pax", tarfile.XGLTYPE: "global pax", tarfile.SOLARIS_XHDTYPE: "pax",
             tarfile.GNUTYPE_LONGNAME: "GNU long name", tarfile.GNUTYPE_LONGLINK: "GNU long link"}


class _HeaderChecked(tarfile.TarInfo):
    """A tar header whose extended header, which tarfile would read whole into memory, is judged by
    its declared size first (from the 512 bytes just read), before a byte of it is read."""

    def _proc_member(self, tar):
        if self.type in _EXTENDED and self.size > MAX_EXTENDED_HEADER:
            raise FetchError(f"{tar.name} holds a {_EXTENDED[self.type]} header of {self.size:,} "
                             f"bytes, more than the {MAX_EXTENDED_HEADER:,} such a header can need (it holds a few "
                             "names and numbers); nothing was extracted. Obtain the CIFAR-100 archive again")
        return super()._proc_member(tar)


@contextmanager
def _open_tar(archive: Path) -> Iterator[tarfile.TarFile]:
    """The archive as a tar stream read front to back (no seeking back), its decompression bounded."""
    with _reading(archive):
        raw = gzip.open(archive, "rb")
        try:
            tar = tarfile.open(str(archive), fileobj=_Bounded(raw, MAX_TAR_BYTES, archive), mode="r|",
                               bufsize=CHUNK, tarinfo=_HeaderChecked)
        except BaseException:
            raw.close()
            raise
    with raw, tar:
        yield tar


def _members(tar: tarfile.TarFile, archive: Path) -> Iterator[tuple[tarfile.TarInfo, str]]:
    """(member, its name in the folder) for every file, judged by name, type and declared size as
    its header is read, before any of its bytes are."""
    seen: set[str] = set()
    while True:
        with _reading(archive):
            member = tar.next()
        if member is None:
            return
        short = _check_member(member)
        if short is None:
            continue
        if short in seen:  # tar would let the last copy win: which one is the data is ambiguous
            raise FetchError(f"{archive} holds {FOLDER}/{short} twice; an archive with duplicate members is "
                             "refused. Obtain the CIFAR-100 archive again")
        seen.add(short)
        if member.size > _size_limit(short):
            raise FetchError(f"{archive}: {member.name} declares {member.size:,} bytes, more than the "
                             f"{_size_limit(short):,} a CIFAR-100 archive can need there; nothing was extracted")
        yield member, short


def _survey(archive: Path) -> dict[str, int]:
    """The format members' declared sizes; every member of the archive judged, nothing written."""
    sizes = {}
    with _open_tar(archive) as tar:
        for member, short in _members(tar, archive):
            if short in MEMBERS:
                sizes[short] = member.size
            else:
                log.info("%s: skipping %s, not a file of the format", archive, member.name)
    missing = [m for m in MEMBERS if m not in sizes]
    if missing:
        raise FetchError(f"{archive} lacks {', '.join(f'{FOLDER}/{m}' for m in missing)}")
    return sizes


def _copy(tar: tarfile.TarFile, member: tarfile.TarInfo, dest: Path, archive: Path) -> str:
    """Stream one member into `dest`, never more bytes than its header declared; returns their md5."""
    digest, copied = hashlib.md5(), 0
    with _reading(archive):
        src = tar.extractfile(member)
    with src, open(dest, "wb") as out:
        while True:
            with _reading(archive):
                block = src.read(CHUNK)
            if not block:
                break
            copied += len(block)
            if copied > member.size:
                raise FetchError(f"{archive}: {member.name} holds more bytes than its header declares "
                                 f"({member.size:,}); nothing was extracted")
            digest.update(block)
            out.write(block)
    if copied != member.size:
        raise FetchError(f"{archive} is not a readable .tar.gz: {member.name} is cut short ({copied:,} of "
                         f"{member.size:,} bytes); obtain it again")
    return digest.hexdigest()


def _write_members(archive: Path, folder: Path, expected: dict[str, str], needed: int) -> None:
    """Write the format's members into `folder`: all to temp files first, each checked, then each
    renamed over its old version; on any failure the temp files go and the old files stay.

    Reading errors were turned into FetchError (a damaged archive) where they happen, so an OSError
    that reaches the end is the output's: a full disk, a file size limit, a read-only folder."""
    where = folder
    try:
        with ExitStack() as stack:
            temps = {}
            for short in MEMBERS:
                where = folder / short
                temps[short] = stack.enter_context(atomic_path(where))
            written = set()
            with _open_tar(archive) as tar:
                for member, short in _members(tar, archive):
                    if short not in temps:
                        continue
                    where = folder / short
                    got = _copy(tar, member, temps[short], archive)
                    if short in expected and got != expected[short]:
                        raise FetchError(f"{FOLDER}/{short}: md5 expected {expected[short]}, got {got}; the "
                                         "archive is damaged: obtain it again")
                    written.add(short)
            if written != set(MEMBERS):  # the archive changed since it was surveyed
                raise FetchError(f"{archive} changed while it was extracted; run again")
            where = folder  # closing the stack syncs each temp file and renames it over its member
    except OSError as err:
        raise WriteFailed(where, err, needed) from err


def extract(archive: str | Path, out: str | Path, archive_md5: str | None = None) -> Path:
    """Safely extract the archive's train, test and meta into out/cifar-100-python; other files
    there are left alone. Every member is checked before a byte is written."""
    archive, out = Path(archive), Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise WriteFailed(out, err) from err
    needed = sum(_survey(archive).values())
    folder = out / FOLDER
    created = not folder.exists()
    try:
        _write_members(archive, folder, MEMBER_MD5.get(archive_md5 or "", {}), needed)
    except BaseException:
        if created:  # a folder this call made, left empty by the failure, goes too
            try:
                folder.rmdir()
            except OSError:
                pass
        raise
    return folder
