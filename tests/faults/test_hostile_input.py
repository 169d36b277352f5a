"""Hostile input that passes the md5 check: the archive is the one the params name, so only the
restricted unpickler stands between its pickles and the machine. Each pickle is written opcode by
opcode, as an attacker would, and must be refused without any of it running."""

from __future__ import annotations

import gzip
import io
import pickle
import re
import struct
import tarfile
import tracemalloc

import numpy as np
import pytest

from msga.cli import main
from msga.data import FetchError
from msga.data.archive import md5sum
from msga.data.cifar import load_split, pack, read_pickle
from msga.data.fetch import fetch
from msga.data.format import MAX_EXTENDED_HEADER, MAX_IMAGES, MEMBER_LIMITS, TAR_OVERHEAD
from msga.data.synthetic import make_split
from msga.infra.atomic import write_json_atomic

# ---------------------------------------------------------------- writing pickles by hand


def _text(s: str) -> bytes:
    raw = s.encode()
    return pickle.BINUNICODE + struct.pack("<I", len(raw)) + raw


def _stack_global(module: str, name: str) -> bytes:  # protocol 4: any text, dots included
    return _text(module) + _text(name) + pickle.STACK_GLOBAL


def _global(module: str, name: str) -> bytes:  # protocols 0-2
    return pickle.GLOBAL + f"{module}\n{name}\n".encode()


def _int(n: int) -> bytes:
    raw = n.to_bytes(n.bit_length() // 8 + 1, "little", signed=True)
    return pickle.LONG1 + bytes([len(raw)]) + raw


def _tuple(*items: bytes) -> bytes:
    return pickle.MARK + b"".join(items) + pickle.TUPLE


def _call(fn: bytes, *args: bytes) -> bytes:
    return fn + _tuple(*args) + pickle.REDUCE


def _build(obj: bytes, state: bytes) -> bytes:
    return obj + state + pickle.BUILD


def _dict_with(key: str, value: bytes) -> bytes:
    """A whole pickle: {key: value}, protocol 4."""
    return b"\x80\x04" + pickle.EMPTY_DICT + _text(key) + value + pickle.SETITEM + pickle.STOP


NDARRAY = _stack_global("numpy", "ndarray")
RECONSTRUCT = _stack_global("numpy._core.multiarray", "_reconstruct")


def _dtype(code: str, state: bytes | None = None) -> bytes:
    plain = _tuple(_int(3), _text("|"), pickle.NONE, pickle.NONE, pickle.NONE, _int(-1), _int(-1), _int(0))
    return _build(_call(_stack_global("numpy", "dtype"), _text(code), pickle.NEWFALSE, pickle.NEWTRUE),
                  plain if state is None else state)


def _array(shape: tuple, dtype: bytes, raw: bytes) -> bytes:
    empty = _call(RECONSTRUCT, NDARRAY, _tuple(_int(0)), pickle.SHORT_BINBYTES + b"\x01b")
    state = _tuple(_int(1), _tuple(*map(_int, shape)), dtype, pickle.NEWFALSE,
                   pickle.BINBYTES + struct.pack("<I", len(raw)) + raw)
    return _build(empty, state)


def _hostile(kind: str, marker, tmp_path) -> bytes:
    """A pickle that, if unpickled by a permissive loader, creates `marker` (or worse)."""
    shell = f"echo pwned > {marker}"
    if kind == "dotted name to os.system":  # protocol 4 resolves dots attribute by attribute
        return _dict_with("data", _call(_stack_global("numpy", "lib._npyio_impl.os.system"), _text(shell)))
    if kind == "posix.system":
        return _dict_with("data", _call(_global("posix", "system"), _text(shell)))
    if kind == "numpy.save writes a file":
        return _dict_with("data", _call(_stack_global("numpy", "save"), _text(str(marker)), _int(0)))
    if kind == "numpy.load of a pickle":  # allow_pickle=True: a second pickle, unrestricted
        inner = tmp_path / "inner.pkl"
        inner.write_bytes(b"\x80\x02" + _call(_global("posix", "system"), _text(shell)) + pickle.STOP)
        return _dict_with("data", _call(_stack_global("numpy", "load"), _text(str(inner)), pickle.NONE,
                                        pickle.NEWTRUE))
    if kind == "builtins.eval":
        return _dict_with("data", _call(_global("builtins", "eval"), _text(f"open({str(marker)!r}, 'w')")))
    if kind == "getattr chain":
        getattr_ = _stack_global("builtins", "getattr")
        npyio = _call(getattr_, _stack_global("numpy", "lib"), _text("_npyio_impl"))
        system = _call(getattr_, _call(getattr_, npyio, _text("os")), _text("system"))
        return _dict_with("data", _call(system, _text(shell)))
    if kind == "_reconstruct of a huge array":
        return _dict_with("data", _call(RECONSTRUCT, NDARRAY, _tuple(_int(2 ** 40)), pickle.SHORT_BINBYTES + b"\x01b"))
    if kind == "_reconstruct of another type":
        return _dict_with("data", _call(RECONSTRUCT, _stack_global("_codecs", "encode"), _tuple(_int(0)),
                                        pickle.SHORT_BINBYTES + b"\x01b"))
    if kind == "object dtype":
        return _dict_with("data", _array((1,), _dtype("O"), b"\x00" * 8))
    if kind == "dtype state with fields":
        fields = pickle.EMPTY_DICT + _text("a") + _tuple(_dtype("u1"), _int(0)) + pickle.SETITEM
        state = _tuple(_int(3), _text("|"), pickle.NONE, _tuple(_text("a")), fields, _int(1), _int(1), _int(0))
        return _dict_with("data", _array((1,), _dtype("u1", state), b"\x00"))
    if kind == "array bytes that do not fill its shape":
        return _dict_with("data", _array((10 ** 9, 3072), _dtype("u1"), b"\x00" * 16))
    if kind == "_codecs.encode with another codec":
        return _dict_with("data", _call(_stack_global("_codecs", "encode"), _text("x"), _text("rot13")))
    if kind == "BUILD on an admitted global":  # (None, slot state): setattr on the global itself
        slots = pickle.EMPTY_DICT + _text("__call__") + _text("print") + pickle.SETITEM
        return _dict_with("data", _build(_stack_global("numpy", "dtype"), _tuple(pickle.NONE, slots)))
    raise AssertionError(kind)


HOSTILE = [
    "dotted name to os.system", "posix.system", "numpy.save writes a file", "numpy.load of a pickle",
    "builtins.eval", "getattr chain", "_reconstruct of a huge array", "_reconstruct of another type",
    "object dtype", "dtype state with fields", "array bytes that do not fill its shape",
    "_codecs.encode with another codec", "BUILD on an admitted global",
]


def _archive_with(tmp_path, fixture_archive, member: str, payload: bytes):
    """The fixture archive with one member replaced; (path, md5): its md5 is the one to give."""
    path = tmp_path / "hostile.tar.gz"
    with tarfile.open(fixture_archive[0], "r:gz") as src, tarfile.open(path, "w:gz", compresslevel=1) as dst:
        for info in src.getmembers():
            if info.name.endswith("/" + member):
                info.size = len(payload)
                dst.addfile(info, io.BytesIO(payload))
            else:
                dst.addfile(info, src.extractfile(info) if info.isfile() else None)
    return path, md5sum(path)


def _member_for(kind: str) -> str:
    return ("train", "test", "meta")[HOSTILE.index(kind) % 3]  # every member gets its share


def _run(argv) -> int:
    with pytest.raises(SystemExit) as exc:
        main(argv)
        raise SystemExit(0)
    return exc.value.code


@pytest.mark.parametrize("kind", HOSTILE)
def test_hostile_pickle_is_refused_through_the_python_api(tmp_path, fixture_archive, kind):
    marker = tmp_path / "marker.npy"
    archive, md5 = _archive_with(tmp_path, fixture_archive, _member_for(kind), _hostile(kind, marker, tmp_path))
    out = tmp_path / "raw"
    fetch(out, tarball=archive, md5=md5)  # extraction reads no pickle: the archive is fine as a tar
    with pytest.raises(FetchError, match="is not a CIFAR pickle: .*Nothing in it was run"):
        pack(out, tmp_path / "cifar100.pt", "hostile", md5)
    assert not marker.exists() and not (tmp_path / "cifar100.pt").exists()


@pytest.mark.parametrize("kind", HOSTILE)
def test_hostile_pickle_is_refused_through_fetch_and_pack(tmp_path, fixture_archive, kind, capsys):
    marker = tmp_path / "marker.npy"
    archive, md5 = _archive_with(tmp_path, fixture_archive, _member_for(kind), _hostile(kind, marker, tmp_path))
    raw, packed, verified = tmp_path / "raw", tmp_path / "cifar100.pt", tmp_path / "verified.json"
    assert _run(["fetch", "--out", str(raw), "--tarball", str(archive), "--md5", md5]) == 0
    write_json_atomic(verified, {"md5": md5})
    assert _run(["pack", "--root", str(raw), "--verified", str(verified), "--dataset", "x", "--out", str(packed)]) == 1
    err = capsys.readouterr().err
    assert "is not a CIFAR pickle" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not marker.exists() and not packed.exists()


def test_hostile_pickle_is_refused_through_verify_extract_and_pack(tmp_path, fixture_archive, capsys):
    marker = tmp_path / "marker.npy"
    kind = "dotted name to os.system"
    archive, md5 = _archive_with(tmp_path, fixture_archive, "train", _hostile(kind, marker, tmp_path))
    (tmp_path / "hostile.md5").write_text(f"{md5}  hostile.tar.gz\n")
    verified, work = tmp_path / "verified.json", tmp_path / "work"
    assert _run(["verify", "--archive", str(archive), "--md5-file", str(tmp_path / "hostile.md5"),
                 "--out", str(verified)]) == 0
    assert _run(["extract", "--archive", str(archive), "--verified", str(verified), "--out", str(work)]) == 0
    assert _run(["pack", "--root", str(work), "--verified", str(verified), "--dataset", "x",
                 "--out", str(tmp_path / "p.pt")]) == 1
    assert "refusing to load numpy.lib._npyio_impl.os.system" in capsys.readouterr().err
    assert not marker.exists()


def test_the_permissive_loader_would_have_run_them(tmp_path):
    """The hostile pickles are real: a plain pickle.load runs the dotted-name one."""
    marker = tmp_path / "marker"
    pickle.loads(_hostile("dotted name to os.system", marker, tmp_path))
    assert marker.exists()


def _python2_pickle(data: np.ndarray, labels: list[int]) -> bytes:
    """A split as Python 2's cPickle wrote CIFAR-100 (protocol 2, str bytes, 0/1 for booleans)."""
    def binstring(raw: bytes) -> bytes:
        return pickle.BINSTRING + struct.pack("<i", len(raw)) + raw

    zero, one = pickle.BININT1 + b"\x00", pickle.BININT1 + b"\x01"
    dtype = _build(_call(_global("numpy", "dtype"), binstring(b"u1"), zero, one),
                   _tuple(_int(3), binstring(b"|"), pickle.NONE, pickle.NONE, pickle.NONE, _int(-1), _int(-1), _int(0)))
    empty = _call(_global("numpy.core.multiarray", "_reconstruct"), _global("numpy", "ndarray"),
                  _tuple(_int(0)), binstring(b"b"))
    array = _build(empty, _tuple(_int(1), _tuple(*map(_int, data.shape)), dtype, pickle.NEWFALSE,
                                 binstring(data.tobytes())))
    label_list = pickle.EMPTY_LIST + pickle.MARK + b"".join(map(_int, labels)) + pickle.APPENDS
    return (b"\x80\x02" + pickle.EMPTY_DICT + pickle.MARK + binstring(b"data") + array
            + binstring(b"fine_labels") + label_list + pickle.SETITEMS + pickle.STOP)


def test_the_globals_a_cifar_pickle_needs_are_admitted(tmp_path):
    """Python 2's pickles (the official files), and numpy 2's at protocols 2 and 4, still load."""
    data = np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072)
    for name, payload in {
        "python2": _python2_pickle(data, [3, 99]),
        "protocol2": pickle.dumps({"data": data, "fine_labels": [3, 99]}, protocol=2),
        "protocol4": pickle.dumps({"data": data, "fine_labels": np.array([3, 99])}, protocol=4),
    }.items():
        (tmp_path / name).write_bytes(payload)
        entry = read_pickle(tmp_path / name)
        assert type(entry["data"]) is np.ndarray and np.array_equal(entry["data"], data), name
        assert list(entry["fine_labels"]) == [3, 99], name


def test_python2_split_loads_pixel_for_pixel(tmp_path, fixture_archive):
    fetch(tmp_path, tarball=fixture_archive[0], md5=fixture_archive[1])
    images, labels, _ = load_split(tmp_path, "test")
    data = images.flatten(1).numpy()
    (tmp_path / "cifar-100-python" / "test").write_bytes(_python2_pickle(data, labels.tolist()))
    again, labels_again, _ = load_split(tmp_path, "test")
    assert np.array_equal(again.numpy(), images.numpy()) and labels_again.tolist() == labels.tolist()


# ---------------------------------------------------------------- pickles that expand when loaded


def _put(slot: int) -> bytes:  # keep the value on top of the stack in memo slot `slot`
    return pickle.LONG_BINPUT + struct.pack("<I", slot)


def _get(slot: int) -> bytes:  # push the value of memo slot `slot` again: a few bytes, whatever its size
    return pickle.LONG_BINGET + struct.pack("<I", slot)


def _list(*items: bytes) -> bytes:
    return pickle.EMPTY_LIST + pickle.MARK + b"".join(items) + pickle.APPENDS


def _split_of(data: bytes, labels: bytes) -> bytes:
    return (b"\x80\x04" + pickle.EMPTY_DICT + _text("data") + data + pickle.SETITEM
            + _text("fine_labels") + labels + pickle.SETITEM + pickle.STOP)


def _one_bytes_object_in_many_arrays(n: int) -> bytes:
    """n arrays of one image each, all filled from ONE bytes object of the memo."""
    empty = _call(RECONSTRUCT, NDARRAY, _tuple(_int(0)), pickle.SHORT_BINBYTES + b"\x01b")
    first = _build(empty, _tuple(_int(1), _tuple(_int(3072)), _dtype("u1") + _put(1), pickle.NEWFALSE,
                                 pickle.BINBYTES + struct.pack("<I", 3072) + bytes(3072) + _put(2)))
    again = _build(empty, _tuple(_int(1), _tuple(_int(3072)), _get(1), pickle.NEWFALSE, _get(2)))
    return _split_of(_list(first, *[again] * (n - 1)), _list(*[_int(0)] * n))


def _one_text_encoded_many_times(n: int) -> bytes:
    encode = _stack_global("_codecs", "encode")
    first = _call(encode, _text("\xff" * 20_000) + _put(1), _text("latin1"))
    return _split_of(_list(first, *[_call(encode, _get(1), _text("latin1"))] * (n - 1)), _list(_int(0)))


EXPANDING = {  # kind -> (the pickle, what the error says); each would decode to 30 MB or more
    "one row named 20,000 times": (lambda: pickle.dumps({"data": [np.zeros(3072, np.uint8)] * 20_000,
                                                         "fine_labels": [0] * 20_000}, protocol=2),
                                   "'data' is a list, expected uint8 (N, 3072): one array"),
    "one bytes object in 10,000 arrays": (lambda: _one_bytes_object_in_many_arrays(10_000),
                                          "refusing to decode more array bytes than the pickle's own bytes hold"),
    "one text encoded 2,000 times": (lambda: _one_text_encoded_many_times(2_000),
                                     "refusing to decode more bytes from text than the pickle's own bytes hold"),
    "labels naming one list 16 times": (lambda: pickle.dumps({"data": np.zeros((16, 3072), np.uint8),
                                                              "fine_labels": [[0] * 250_000] * 16}, protocol=2),
                                        "'fine_labels' must be 16 integers"),
}


@pytest.mark.parametrize("kind", EXPANDING)
def test_a_pickle_that_expands_when_loaded_is_refused_before_it_grows(tmp_path, fixture_archive, kind):
    """A pickle may name one value many times for a few bytes each: kilobytes that would load as tens of
    megabytes (the same at the member size limit: hundreds of gigabytes). Refused, and the memory used
    while refusing stays below what the expansion would take."""
    make, words = EXPANDING[kind]
    fetch(tmp_path, tarball=fixture_archive[0], md5=fixture_archive[1])
    payload = make()
    (tmp_path / "cifar-100-python" / "test").write_bytes(payload)
    import torch  # noqa: F401 (load_split imports it; the import alone takes tens of MB, not measured here)

    tracemalloc.start()
    try:
        with pytest.raises(FetchError, match=re.escape(words)):
            load_split(tmp_path, "test")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(payload) < 3_000_000 and peak < 10_000_000, (len(payload), peak)


def test_a_split_with_more_images_than_the_format_allows_is_refused(tmp_path, fixture_archive):
    fetch(tmp_path, tarball=fixture_archive[0], md5=fixture_archive[1])
    n = MAX_IMAGES["test"] + 1
    (tmp_path / "cifar-100-python" / "test").write_bytes(
        pickle.dumps({"data": np.zeros((n, 3072), np.uint8), "fine_labels": [0] * n}, protocol=4))
    with pytest.raises(FetchError, match=f"holds {n:,} images, more than the {MAX_IMAGES['test']:,} a test split"):
        load_split(tmp_path, "test")


def test_a_pickle_larger_than_its_member_may_be_is_not_read(tmp_path, fixture_archive, monkeypatch):
    from msga.data import cifar

    fetch(tmp_path, tarball=fixture_archive[0], md5=fixture_archive[1])
    monkeypatch.setitem(MEMBER_LIMITS, "test", 1000)  # the file there is larger than that
    monkeypatch.setattr(cifar._ArrayUnpickler, "load", lambda self: pytest.fail("unpickled"))
    with pytest.raises(FetchError, match="bytes, more than the 1,000 a CIFAR-100 pickle of its kind can need"):
        load_split(tmp_path, "test")


def test_running_out_of_memory_while_unpickling_says_so(tmp_path, fixture_archive, monkeypatch):
    from msga.data import cifar

    fetch(tmp_path, tarball=fixture_archive[0], md5=fixture_archive[1])

    def out_of_memory(self):
        raise MemoryError

    monkeypatch.setattr(cifar._ArrayUnpickler, "load", out_of_memory)
    with pytest.raises(FetchError) as exc:
        load_split(tmp_path, "test")
    message = str(exc.value)
    assert "ran out of memory while unpickling" in message and "Nothing in it was run" in message
    assert "is not a CIFAR pickle: ." not in message


# ---------------------------------------------------------------- archives that would fill a disk


def _fixture_members(fixture_archive) -> dict[str, bytes]:
    with tarfile.open(fixture_archive[0], "r:gz") as tar:
        return {m.name.split("/")[-1]: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def _file(name: str, payload: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(f"cifar-100-python/{name}")
    info.size = len(payload)
    return info, payload


def _sparse(name: str, declared: int) -> tuple[tarfile.TarInfo, bytes]:
    """A GNU sparse member (PAX 1.0): 8 real bytes that extract to `declared` bytes, zeros mostly."""
    sparse_map = b"1\n0\n8\n"
    data = sparse_map + b"\0" * (512 - len(sparse_map)) + b"12345678"
    info = tarfile.TarInfo(f"cifar-100-python/GNUSparseFile.0/{name}")
    info.size = len(data)
    info.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0", "GNU.sparse.realsize": str(declared),
                        "GNU.sparse.name": f"cifar-100-python/{name}"}
    return info, data


def _targz(path, entries) -> str:
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT, compresslevel=1) as tar:
        for info, payload in entries:
            tar.addfile(info, io.BytesIO(payload))
    return str(path)


def _tree(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*")) if path.exists() else []


def _members_with(fixture_archive, **replace):
    """The fixture's train, test and meta as tar entries, some replaced: name -> (info, payload)."""
    members = {name: _file(name, payload) for name, payload in _fixture_members(fixture_archive).items()}
    members.update(replace)
    return list(members.values())


GB8 = 8_000_000_000


TRAIN_LIMIT = MEMBER_LIMITS["train"]


@pytest.mark.parametrize("case,words", [
    ("sparse train declaring 8 GB", "declares 8,000,000,000 bytes"),
    ("sparse train just over its limit", f"declares {TRAIN_LIMIT + 1:,} bytes, more than the {TRAIN_LIMIT:,}"),
    ("sparse extra member declaring 8 GB", "declares 8,000,000,000 bytes"),
    ("pax size overriding a small ustar size", "declares 8,000,000,000 bytes"),
    ("duplicate train", "twice"),
    ("duplicate meta spelt ./", "twice"),
])
def test_archive_that_would_write_too_much_is_refused_before_a_byte_is_written(tmp_path, fixture_archive,
                                                                                case, words):
    if case == "sparse train declaring 8 GB":
        entries = _members_with(fixture_archive, train=_sparse("train", GB8))
    elif case == "sparse train just over its limit":
        entries = _members_with(fixture_archive, train=_sparse("train", TRAIN_LIMIT + 1))
    elif case == "sparse extra member declaring 8 GB":
        entries = _members_with(fixture_archive) + [_sparse("file.txt~", GB8)]
    elif case == "pax size overriding a small ustar size":
        info, payload = _file("train", b"x" * 100)
        info.pax_headers = {"size": str(GB8)}  # tarfile writes the ustar field from .size: 100 stays there
        entries = _members_with(fixture_archive, train=(info, payload))
    elif case == "duplicate train":
        entries = _members_with(fixture_archive) + [_file("train", b"the second copy")]
    else:
        info, payload = _file("meta", b"another meta")
        info.name = "./cifar-100-python/meta"
        entries = _members_with(fixture_archive) + [(info, payload)]
    archive = _targz(tmp_path / "bad.tar.gz", entries)  # 5 MB: the fixture's own members, or less
    out = tmp_path / "raw"
    with pytest.raises(FetchError, match=re.escape(words)):
        fetch(out, tarball=archive, md5=md5sum(archive))  # the md5 matches: only extraction's checks protect
    assert _tree(out) == []


def test_a_member_giving_more_bytes_than_its_header_declares_is_cut_off(tmp_path, fixture_archive, monkeypatch):
    """Should tar ever hand over more than the header said, the count while streaming stops it."""
    archive = _targz(tmp_path / "a.tar.gz", _members_with(fixture_archive))
    real = tarfile.TarFile.extractfile

    def longer(self, member):
        src = real(self, member)
        return io.BufferedReader(io.BytesIO(src.read() + b"\0" * 5000)) if member.name.endswith("test") else src

    monkeypatch.setattr(tarfile.TarFile, "extractfile", longer)
    out = tmp_path / "raw"
    with pytest.raises(FetchError, match="holds more bytes than its header declares"):
        fetch(out, tarball=archive, md5=md5sum(archive))
    assert _tree(out) == []


def test_a_header_that_understates_its_member_leaves_nothing(tmp_path, fixture_archive):
    """The bytes past the declared size are read as the next header: not a tar header, so the archive
    ends there and lacks its other members."""
    members = _fixture_members(fixture_archive)
    info, _ = _file("train", b"")
    info.size = 100
    body = info.tobuf(tarfile.USTAR_FORMAT) + members["train"]  # says 100 bytes, holds all of train
    for name in ("test", "meta"):
        body += b"\0" * (-len(body) % 512)
        body += _file(name, members[name])[0].tobuf(tarfile.USTAR_FORMAT) + members[name]
    archive = tmp_path / "lying.tar.gz"
    archive.write_bytes(gzip.compress(body + b"\0" * (-len(body) % 512 + 1024), compresslevel=1))
    out = tmp_path / "raw"
    with pytest.raises(FetchError, match="lacks cifar-100-python/test, cifar-100-python/meta"):
        fetch(out, tarball=archive, md5=md5sum(archive))
    assert _tree(out) == []


def test_a_header_that_overstates_its_member_is_a_damaged_archive(tmp_path, fixture_archive):
    members = _fixture_members(fixture_archive)
    info, _ = _file("train", b"")
    info.size = len(members["train"]) * 2
    raw = io.BytesIO()
    raw.write(info.tobuf(tarfile.USTAR_FORMAT) + members["train"])  # the archive ends inside train
    archive = tmp_path / "short.tar.gz"
    archive.write_bytes(gzip.compress(raw.getvalue(), compresslevel=1))
    out = tmp_path / "raw"
    with pytest.raises(FetchError, match="not a readable .tar.gz"):
        fetch(out, tarball=archive, md5=md5sum(archive))
    assert _tree(out) == []


def test_extra_members_are_skipped_and_never_written(tmp_path, fixture_archive):
    """The official archive carries an editor's backup, file.txt~: extraction writes the format's
    three files only."""
    extras = [_file("file.txt~", b"notes"), _file("run_me.sh", b"#!/bin/sh\nrm -rf ~\n")]
    archive = _targz(tmp_path / "extra.tar.gz", _members_with(fixture_archive) + extras)
    out = tmp_path / "raw"
    folder = fetch(out, tarball=archive, md5=md5sum(archive))
    assert _tree(out) == ["cifar-100-python", "cifar-100-python/meta", "cifar-100-python/test",
                          "cifar-100-python/train"]
    assert (folder / "train").read_bytes() == _fixture_members(fixture_archive)["train"]


def _gzip_of_zeros(n_bytes: int, prefix: bytes = b"") -> bytes:
    """A gzip stream that inflates to `prefix` and then `n_bytes` zeros, built from concatenated gzip
    members (a gzip reader reads them as one stream) so writing it costs little."""
    block = gzip.compress(b"\0" * 10_000_000, compresslevel=9)
    whole, rest = divmod(n_bytes, 10_000_000)
    return gzip.compress(prefix) + block * whole + gzip.compress(b"\0" * rest)


def _stream_limit() -> int:
    return sum(MEMBER_LIMITS.values()) + TAR_OVERHEAD


def test_gzip_bomb_is_stopped_at_the_bounded_total(tmp_path):
    """Extra files, each within its own limit (10 MB), one more of them than the bound admits: they
    inflate past what CIFAR-100 can need, and decompression stops at the bound (train, test and meta
    at their limits, plus the tar overhead), with nothing written."""
    size = 10_000_000 - 10_000_000 % 512  # a whole number of blocks: no padding between members
    data = gzip.compress(b"\0" * size, compresslevel=9)  # gzip members concatenate into one stream
    payload = b""
    for i in range(_stream_limit() // size + 1):
        info = tarfile.TarInfo(f"cifar-100-python/extra{i}")
        info.size = size
        payload += gzip.compress(info.tobuf(tarfile.USTAR_FORMAT)) + data
    archive = tmp_path / "bomb.tar.gz"
    archive.write_bytes(payload)
    assert archive.stat().st_size < 2_000_000
    out = tmp_path / "raw"
    with pytest.raises(FetchError, match=f"decompresses to more than {_stream_limit():,} bytes"):
        fetch(out, tarball=archive, md5=md5sum(archive))
    assert _tree(out) == []


@pytest.mark.parametrize("kind,size", [
    ("pax", 1_000_000_000), ("pax", 100_000_000), ("global pax", 100_000_000), ("GNU long name", 100_000_000),
    ("pax", MAX_EXTENDED_HEADER + 1),
])
def test_an_extended_tar_header_too_large_is_refused_before_it_is_read(tmp_path, kind, size):
    """tarfile reads a pax header or a GNU long name whole into memory (a 100 MB one took 304 MB): one
    declaring more than such a header can need is refused from the 512 bytes that declare it."""
    header = tarfile.TarInfo("././@PaxHeader" if "pax" in kind else "././@LongLink")
    header.type = {"pax": tarfile.XHDTYPE, "global pax": tarfile.XGLTYPE, "GNU long name": tarfile.GNUTYPE_LONGNAME}[kind]
    header.size = size
    zeros = gzip.compress(b"\0" * 10_000_000, compresslevel=9)  # gzip members concatenate into one stream
    archive = tmp_path / "header.tar.gz"
    archive.write_bytes(gzip.compress(header.tobuf(tarfile.USTAR_FORMAT)) + zeros * (size // 10_000_000 + 1))
    out = tmp_path / "raw"
    tracemalloc.start()
    try:
        with pytest.raises(FetchError, match=f"holds a {kind} header of {size:,} bytes, more than the "
                                             f"{MAX_EXTENDED_HEADER:,}"):
            fetch(out, tarball=archive, md5=md5sum(archive))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10_000_000 and _tree(out) == []


def test_the_limits_admit_cifar_100_and_the_synthetic_fixture_at_its_largest():
    """The official train is 155 MB and test 31 MB; a protocol 2 pickle written by Python 3 (the
    synthetic fixture) takes up to twice the pixel bytes. Both fit, the latter at the most images the
    params schema lets it have, even when every pixel is bright (two bytes each)."""
    from msga.grid.params import load_schema

    synthetic = load_schema()["properties"]["data"]["properties"]["synthetic"]["properties"]
    rng = np.random.default_rng(0)
    for split, per_class in (("train", 5), ("test", 1)):
        most = synthetic[f"{split}_per_class"]["maximum"] * 100
        assert most <= MAX_IMAGES[split], (split, most)  # every fixture the schema admits may be loaded
        fixture = make_split(per_class, rng, f"synthetic_{split}")
        bright = dict(fixture, data=np.full_like(fixture["data"], 255))
        for entry in (fixture, bright):
            per_image = len(pickle.dumps(entry, protocol=2)) / len(entry["fine_labels"])
            assert most * per_image < MEMBER_LIMITS[split], (split, per_image)
    assert 50_000 * (3072 + 40) < MEMBER_LIMITS["train"] / 2  # the official file, with room to spare
    assert MEMBER_LIMITS["meta"] > 20 * 1_600
