"""The data path from a URL to tensors, over a real loopback HTTP server."""

from __future__ import annotations

import io
import re
import shutil
import socket
import tarfile

import numpy as np
import pytest
import torch

from msga.cli import main
from msga.data import FetchError
from msga.data.archive import extract, md5sum
from msga.data.cifar import load_packed, load_split, pack
from msga.data.fetch import fetch
from msga.data.synthetic import make_split
from tests.conftest import SEED, TEST_PER_CLASS, TRAIN_PER_CLASS


def _run(argv) -> int:
    with pytest.raises(SystemExit) as exc:
        main(argv)
        raise SystemExit(0)
    return exc.value.code


def _tree(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def test_download_verify_extract_pixel_for_pixel(tmp_path, http_dir, fixture_archive):
    folder, base = http_dir
    archive, md5 = fixture_archive
    shutil.copy(archive, folder / archive.name)
    out = tmp_path / "raw"
    assert _run(["fetch", "--out", str(out), "--url", f"{base}/{archive.name}", "--md5", md5]) == 0
    # what the fixture wrote, regenerated from its seed
    rng = np.random.default_rng(SEED)
    expected = {"train": make_split(TRAIN_PER_CLASS, rng, "synthetic_train"),
                "test": make_split(TEST_PER_CLASS, rng, "synthetic_test")}
    for split, want in expected.items():
        images, labels, _ = load_split(out, split)
        assert images.dtype == torch.uint8 and images.shape == (len(want["fine_labels"]), 3, 32, 32)
        assert labels.dtype == torch.int64
        assert torch.equal(images.flatten(1), torch.from_numpy(want["data"]))
        assert labels.tolist() == want["fine_labels"]
    packed = load_packed(pack(out, tmp_path / "cifar100.pt", "fixture", md5))
    assert packed["dataset"] == {"id": "fixture", "archive_md5": md5}
    assert torch.equal(packed["test_images"], load_split(out, "test")[0])


def test_wrong_md5_names_both_and_leaves_nothing(tmp_path, http_dir, fixture_archive, capsys):
    folder, base = http_dir
    archive, md5 = fixture_archive
    shutil.copy(archive, folder / archive.name)
    out = tmp_path / "raw"
    wrong = "0" * 32
    assert _run(["fetch", "--out", str(out), "--url", f"{base}/{archive.name}", "--md5", wrong]) == 1
    err = capsys.readouterr().err
    assert wrong in err and md5 in err and "removed" in err
    assert _tree(out) == []


def test_corrupted_download_is_rejected_and_removed(tmp_path, http_dir, fixture_archive, capsys):
    folder, base = http_dir
    archive, md5 = fixture_archive
    (folder / archive.name).write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    out = tmp_path / "raw"
    assert _run(["fetch", "--out", str(out), "--url", f"{base}/{archive.name}", "--md5", md5]) == 1
    assert "md5 mismatch" in capsys.readouterr().err
    assert _tree(out) == []


def test_corrupted_local_tarball_leaves_no_extracted_files(tmp_path, fixture_archive):
    archive, _ = fixture_archive
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(archive.read_bytes()[:5000])
    out = tmp_path / "raw"
    with pytest.raises(FetchError, match="not a readable .tar.gz"):
        fetch(out, tarball=bad, md5=None)
    assert _tree(out) == []
    assert bad.exists()  # a user's own file is reported, never deleted


def _tar_with(tmp_path, member: tarfile.TarInfo, payload: bytes = b"x") -> str:
    path = tmp_path / "evil.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        ok = tarfile.TarInfo("cifar-100-python/meta")
        ok.size = 1
        tar.addfile(ok, io.BytesIO(b"m"))
        if member.isfile():
            member.size = len(payload)
            tar.addfile(member, io.BytesIO(payload))
        else:
            tar.addfile(member)
    return str(path)


@pytest.mark.parametrize("name,kind", [
    ("../escaped", "file"),
    ("/tmp/msga-absolute-escape", "file"),
    ("cifar-100-python/../../escaped", "file"),
    ("cifar-100-python/train", "symlink"),
    ("cifar-100-python/test", "hardlink"),
])
def test_path_traversal_is_rejected_and_nothing_is_written(tmp_path, name, kind):
    member = tarfile.TarInfo(name)
    if kind == "symlink":
        member.type, member.linkname = tarfile.SYMTYPE, "/etc/passwd"
    elif kind == "hardlink":
        member.type, member.linkname = tarfile.LNKTYPE, "../../outside"
    archive = _tar_with(tmp_path, member)
    target = tmp_path / "deep" / "target"
    before = _tree(tmp_path)
    with pytest.raises(FetchError, match="unsafe archive member"):
        extract(archive, target)
    assert _tree(target) == []
    assert set(_tree(tmp_path)) - set(before) <= {"deep", "deep/target"}


def test_no_network_names_the_alternatives(tmp_path, capsys):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "raw"
    assert _run(["fetch", "--out", str(out), "--url", f"http://127.0.0.1:{port}/x.tar.gz", "--md5", "0" * 32]) == 1
    err = capsys.readouterr().err
    assert "cannot reach" in err and "data.tarball" in err and "data.url" in err and "demo.yaml" in err
    assert _tree(out) == []


def test_http_404_is_reported(tmp_path, http_dir, capsys):
    _, base = http_dir
    assert _run(["fetch", "--out", str(tmp_path / "raw"), "--url", f"{base}/missing.tar.gz", "--md5", "0" * 32]) == 1
    assert "HTTP 404" in capsys.readouterr().err


def test_pickle_with_wrong_keys_is_rejected(tmp_path, fixture_archive):
    import pickle

    archive, md5 = fixture_archive
    fetch(tmp_path, tarball=archive, md5=md5)
    (tmp_path / "cifar-100-python" / "test").write_bytes(pickle.dumps({"images": np.zeros((2, 3072), np.uint8)}))
    with pytest.raises(FetchError, match="lacks the key 'data'"):
        load_split(tmp_path, "test")


def test_pickle_that_would_run_code_is_refused(tmp_path, fixture_archive):
    import pickle

    archive, md5 = fixture_archive
    fetch(tmp_path, tarball=archive, md5=md5)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "cifar-100-python" / "test").write_bytes(pickle.dumps({"data": Evil()}))
    with pytest.raises(FetchError, match="refusing to load builtins.print"):
        load_split(tmp_path, "test")


@pytest.mark.parametrize("content", ["plain tar", "random bytes", "empty"])
def test_archive_that_is_not_gzip_is_rejected(tmp_path, fixture_archive, content):
    bad = tmp_path / "bad.tar.gz"
    if content == "plain tar":  # the right members, uncompressed
        with tarfile.open(fixture_archive[0], "r:gz") as src, tarfile.open(bad, "w") as dst:
            for member in src.getmembers():
                dst.addfile(member, src.extractfile(member) if member.isfile() else None)
    else:
        bad.write_bytes(np.random.default_rng(0).bytes(4096) if content == "random bytes" else b"")
    out = tmp_path / "raw"
    with pytest.raises(FetchError, match="is not a readable .tar.gz"):
        fetch(out, tarball=bad, md5=None)
    assert _tree(out) == []


def _split_pickle(folder, split: str, **changes) -> None:
    import pickle

    path = folder / "cifar-100-python" / split
    with open(path, "rb") as f:
        entry = pickle.load(f, encoding="latin1")
    entry.update(changes)
    path.write_bytes(pickle.dumps(entry))


@pytest.mark.parametrize("split,changes,words", [
    ("test", {"data": np.zeros((400, 100), np.uint8)}, "expected uint8 (N, 3072)"),
    ("test", {"data": np.zeros((400, 3072), np.float32)}, "expected uint8 (N, 3072)"),
    ("test", {"fine_labels": [0] * 399}, "must be 400 integers"),
    ("test", {"fine_labels": [100] * 400}, "in [0, 100)"),
    ("train", {"fine_labels": [-1] * 1200}, "in [0, 100)"),
    ("meta", {"fine_label_names": ["only", "three", "names"]}, "3 class names, expected 100"),
])
def test_pickle_with_wrong_shapes_or_values_is_rejected(tmp_path, fixture_archive, split, changes, words):
    archive, md5 = fixture_archive
    fetch(tmp_path, tarball=archive, md5=md5)
    _split_pickle(tmp_path, split, **changes)
    with pytest.raises(FetchError, match=re.escape(words)):
        load_split(tmp_path, "train" if split == "train" else "test")


def test_nothing_is_unpickled_or_extracted_before_the_checksum_matches(tmp_path, http_dir, fixture_archive,
                                                                      monkeypatch):
    from msga.data import archive as archive_module
    from msga.data import cifar

    loads = []
    monkeypatch.setattr(cifar._ArrayUnpickler, "load", lambda self: loads.append(self) or {})
    opened = []
    real_open = archive_module.tarfile.open
    monkeypatch.setattr(archive_module.tarfile, "open", lambda *a, **k: opened.append(a) or real_open(*a, **k))
    folder, base = http_dir
    archive, md5 = fixture_archive
    shutil.copy(archive, folder / archive.name)
    wrong = "f" * 32
    with pytest.raises(FetchError, match="md5 mismatch"):
        fetch(tmp_path / "downloaded", url=f"{base}/{archive.name}", md5=wrong, retries=1)
    with pytest.raises(FetchError, match="md5 mismatch"):
        fetch(tmp_path / "local", tarball=archive, md5=wrong)
    assert loads == [] and opened == []  # the archive was never opened, let alone a pickle read
    assert _tree(tmp_path / "downloaded") == []


# ---------------------------------------------------------------- what extraction and fetch may touch


def _fixture_members(archive) -> dict[str, bytes]:
    with tarfile.open(archive, "r:gz") as tar:
        return {m.name.split("/")[-1]: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def _users_folder(tmp_path, archive):
    """cifar-100-python/ as a user keeps it: their tarball and notes beside older members."""
    folder = tmp_path / "cifar-100-python"
    (folder / "mine").mkdir(parents=True)
    shutil.copy(archive, folder / "my-copy.tar.gz")
    (folder / "notes.txt").write_text("where this came from")
    (folder / "mine" / "plot.png").write_bytes(b"png")
    for member in ("train", "test", "meta"):
        (folder / member).write_bytes(b"older " + member.encode())
    return folder, {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_extraction_replaces_its_three_files_and_nothing_else(tmp_path, fixture_archive):
    archive, md5 = fixture_archive
    folder, before = _users_folder(tmp_path, archive)
    assert fetch(tmp_path, tarball=folder / "my-copy.tar.gz", md5=md5) == folder
    new = _fixture_members(archive)
    for path, content in before.items():
        assert path.read_bytes() == (new[path.name] if path.parent == folder and path.name in new else content), path
    assert sorted(p.name for p in folder.iterdir()) == ["meta", "mine", "my-copy.tar.gz", "notes.txt", "test", "train"]


def test_failed_extraction_keeps_the_old_files(tmp_path, fixture_archive, monkeypatch):
    """A member that fails its md5 (as the official archive's members are checked) after the others
    were written: nothing is replaced, no temp file stays."""
    from msga.data import archive as archive_module

    archive, md5 = fixture_archive
    monkeypatch.setitem(archive_module.MEMBER_MD5, md5, {"train": "0" * 32})
    folder, before = _users_folder(tmp_path, archive)
    with pytest.raises(FetchError, match="train: md5 expected 0{32}"):
        fetch(tmp_path, tarball=folder / "my-copy.tar.gz", md5=md5)
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("failure", ["mistyped md5", "HTTP 404", "no network"])
@pytest.mark.parametrize("via", ["fetch", "obtain"])
def test_a_failed_fetch_never_removes_the_archive_already_there(tmp_path, http_dir, fixture_archive, failure, via):
    from msga.data.download import obtain

    folder, base = http_dir
    archive, md5 = fixture_archive
    shutil.copy(archive, folder / archive.name)
    out = tmp_path / "raw"
    out.mkdir()
    kept = out / archive.name
    # the archive of earlier params: the fixture itself when the md5 is mistyped, else an older one
    kept.write_bytes(archive.read_bytes() if failure == "mistyped md5" else b"\x1f\x8b an older archive")
    before = kept.read_bytes()
    url, want = f"{base}/{archive.name}", md5
    if failure == "mistyped md5":
        want = md5[:-1] + ("0" if md5[-1] != "0" else "1")
    elif failure == "HTTP 404":
        url = f"{base}/moved.tar.gz"
    else:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            url = f"http://127.0.0.1:{s.getsockname()[1]}/{archive.name}"
    with pytest.raises(FetchError):
        if via == "fetch":
            fetch(out, url=url, md5=want, retries=1)
        else:
            obtain(url, kept, want, retries=1)
    assert kept.read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == [archive.name]  # no temp file either


@pytest.mark.parametrize("case", ["copied elsewhere", "md5 mismatch", "destination is the source",
                                  "destination links to the source"])
def test_copying_a_local_tarball_never_touches_it(tmp_path, fixture_archive, case):
    from msga.data.download import obtain

    archive, md5 = fixture_archive
    source = tmp_path / "mine.tar.gz"
    shutil.copy(archive, source)
    dest = tmp_path / "data" / "archive.tar.gz"
    if case == "destination is the source":
        dest = source
    elif case == "destination links to the source":
        dest.parent.mkdir()
        dest.symlink_to(source)
    stat = source.stat()
    if case == "md5 mismatch":
        with pytest.raises(FetchError, match="md5 mismatch"):
            obtain(str(source), dest, "0" * 32)
        assert not dest.exists()
    else:
        assert obtain(str(source), dest, md5) == dest and md5sum(dest) == md5
    after = source.stat()
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == (stat.st_ino, stat.st_mtime_ns, stat.st_size)
    assert md5sum(source) == md5
