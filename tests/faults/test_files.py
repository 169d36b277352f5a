"""Damaged and unwritable files: a full disk while writing, truncated or corrupted checkpoints and
run outputs, and repeatability with deterministic kernels."""

from __future__ import annotations

import errno
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import msga.train.checkpoint
from msga.data.archive import md5sum
from msga.data.format import MAX_IMAGES
from msga.grid.keys import config_hash
from msga.grid.paths import CHECKPOINT
from msga.grid.runs import Run
from msga.infra.atomic import WriteFailed, write_json_atomic
from msga.results.runfiles import DAMAGED, FINISHED, MISSING, read_run
from msga.train.checkpoint import load_checkpoint
from msga.train.device import pick_device
from msga.train.loop import train_run
from tests.conftest import run_config

CPU = pick_device("cpu")
TWO_EPOCHS = {"train.epochs": 2}


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


class DiskFillsUp:
    """Stands in for open() in msga.train.checkpoint: write number `fail_at` gets half its bytes, then ENOSPC."""

    def __init__(self, fail_at: int):
        self.fail_at, self.calls = fail_at, 0

    def __call__(self, path, mode="r", *args, **kwargs):
        f = open(path, mode, *args, **kwargs)
        if "w" not in mode:
            return f
        self.calls += 1
        if self.calls != self.fail_at:
            return f
        real_write = f.write

        def write(data):
            real_write(bytes(data)[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")

        f.write = write
        return f


@pytest.fixture(scope="module")
def checkpoint_after_epoch_1(tmp_path_factory, demo_params, packed):
    """(config, folder) of a convnext run whose disk filled up while writing the epoch-2 checkpoint."""
    folder = tmp_path_factory.mktemp("full-disk")
    config = run_config(demo_params, "convnext", TWO_EPOCHS, name="full-disk")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(msga.train.checkpoint, "open", DiskFillsUp(fail_at=2), raising=False)
        with pytest.raises(WriteFailed) as exc:
            train_run(config, packed, folder, CPU)
    return config, folder, str(exc.value)


def test_disk_full_while_checkpointing_keeps_the_previous_checkpoint(checkpoint_after_epoch_1, packed, demo_params):
    config, folder, message = checkpoint_after_epoch_1
    assert "No space left on device" in message and str(folder / CHECKPOINT) in message
    assert "previous version" in message and "df -h" in message  # says what happened and what to do
    assert _leftovers(folder) == [] and not (folder / "metrics.json").exists()
    state = load_checkpoint(folder / CHECKPOINT, config_hash(config), "run")
    assert state is not None and state["epoch"] == 1

    # space is freed, the run is restarted: it resumes and ends as an uninterrupted run does
    resumed_dir = folder.parent / "resumed"
    shutil.copytree(folder, resumed_dir)
    resumed = train_run(config, packed, resumed_dir, CPU)
    whole = train_run(config, packed, folder.parent / "whole", CPU)
    assert resumed["resumed_from_epoch"] == 1
    for key in ("acc", "auc", "precision", "recall", "confusion_matrix"):
        assert resumed[key] == whole[key], key


def test_disk_full_while_writing_an_output_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "metrics.json"
    write_json_atomic(target, {"acc": 0.5})
    real_write_text = type(target).write_text

    def fill_up(self, text, *args, **kwargs):
        real_write_text(self, text[: len(text) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(type(target), "write_text", fill_up)
    with pytest.raises(WriteFailed, match="No space left on device"):
        write_json_atomic(target, {"acc": 0.9, "padding": "x" * 1000})
    monkeypatch.undo()
    assert json.loads(target.read_text()) == {"acc": 0.5}
    assert _leftovers(tmp_path) == []


def _file_size_limit(limit: int):
    def apply():  # in the child: writes past `limit` bytes fail with EFBIG, as on a full disk
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_pack_into_a_file_size_limit_fails_clearly_and_keeps_the_old_file(tmp_path, fixture_archive, packed_path):
    """A real kernel-level write failure (EFBIG under RLIMIT_FSIZE) inside torch.save's C++ writer."""
    from msga.data.fetch import fetch

    fetch(tmp_path / "raw", tarball=fixture_archive[0], md5=fixture_archive[1])
    verified = tmp_path / "verified.json"
    write_json_atomic(verified, {"md5": fixture_archive[1]})
    out = tmp_path / "out" / "cifar100.pt"
    out.parent.mkdir()
    out.write_bytes(b"an older packed file")
    proc = subprocess.run([sys.executable, "-m", "msga.cli", "pack", "--root", str(tmp_path / "raw"), "--verified",
                           str(verified), "--dataset", "fixture", "--out", str(out)],
                          capture_output=True, text=True, preexec_fn=_file_size_limit(packed_path.stat().st_size // 4))
    assert proc.returncode == 1, proc.stderr
    assert f"could not write {out}" in proc.stderr and "Traceback" not in proc.stderr
    assert out.read_bytes() == b"an older packed file"
    assert _leftovers(out.parent) == []


def _extraction_setup(tmp_path, fixture_archive):
    """An archive, its verification record, and an extraction folder holding older members and a
    user's notes; returns (archive, verified, work folder, the folder's files and their bytes)."""
    archive, md5 = fixture_archive
    verified = tmp_path / "verified.json"
    write_json_atomic(verified, {"md5": md5})
    folder = tmp_path / "work" / "cifar-100-python"
    folder.mkdir(parents=True)
    for name in ("train", "test", "meta", "notes.txt"):
        (folder / name).write_bytes(f"older {name}".encode())
    return archive, verified, folder.parent, {p: p.read_bytes() for p in folder.iterdir()}


def _says_write_failure_not_damage(message: str, member_path) -> None:
    assert f"could not write {member_path}" in message, message
    assert "MB are needed there" in message and "df -h" in message  # where, how much, what to do
    assert "not a readable" not in message and "delete" not in message.lower()  # the archive is fine


def test_extract_into_a_file_size_limit_names_the_write_failure_and_keeps_everything(tmp_path, fixture_archive):
    """A real kernel write failure (EFBIG under RLIMIT_FSIZE) while extracting: not a damaged archive."""
    archive, verified, work, before = _extraction_setup(tmp_path, fixture_archive)
    md5 = md5sum(archive)
    proc = subprocess.run([sys.executable, "-m", "msga.cli", "extract", "--archive", str(archive),
                           "--verified", str(verified), "--out", str(work)],
                          capture_output=True, text=True, preexec_fn=_file_size_limit(2_000_000))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "File too large" in proc.stderr
    _says_write_failure_not_damage(proc.stderr, work / "cifar-100-python" / "train")  # train: the one over 2 MB
    assert {p: p.read_bytes() for p in (work / "cifar-100-python").iterdir()} == before  # no temp file either
    assert md5sum(archive) == md5


def test_disk_full_while_extracting_names_the_write_failure_and_keeps_everything(tmp_path, fixture_archive,
                                                                                 monkeypatch):
    from msga.data import archive as archive_module
    from msga.data.archive import extract

    archive, verified, work, before = _extraction_setup(tmp_path, fixture_archive)
    md5 = md5sum(archive)
    monkeypatch.setattr(archive_module, "open", DiskFillsUp(fail_at=2), raising=False)  # the second member
    with pytest.raises(WriteFailed, match="No space left on device") as exc:
        extract(archive, work, md5)
    _says_write_failure_not_damage(str(exc.value), work / "cifar-100-python" / "test")
    assert {p: p.read_bytes() for p in (work / "cifar-100-python").iterdir()} == before
    assert md5sum(archive) == md5


def _packed_variant(packed: dict, how: str):
    """The packed fixture with one thing wrong (the fixture itself is left as it is)."""
    import torch

    data = dict(packed)
    if how == "a label out of range":
        data["train_labels"] = packed["train_labels"].clone().index_fill_(0, torch.tensor([5]), 100)
    elif how == "a negative label":
        data["test_labels"] = packed["test_labels"].clone().index_fill_(0, torch.tensor([0]), -1)
    elif how == "images of the wrong shape":
        data["train_images"] = packed["train_images"][:, :, :16]
    elif how == "images of the wrong dtype":
        data["test_images"] = packed["test_images"].float()
    elif how == "labels of the wrong dtype":
        data["train_labels"] = packed["train_labels"].int()
    elif how == "fewer labels than images":
        data["test_labels"] = packed["test_labels"][:-1]
    elif how == "99 classes":
        data["classes"] = packed["classes"][:99]
    elif how == "labels not a tensor":
        data["train_labels"] = packed["train_labels"].tolist()
    elif how == "no dataset record":
        data["dataset"] = "synthetic"
    elif how == "a key missing":
        del data["test_images"]
    elif how == "not a dict":
        data = [packed["train_images"], packed["train_labels"]]
    elif how == "no test images":
        data["test_images"], data["test_labels"] = packed["test_images"][:0], packed["test_labels"][:0]
    elif how == "one image expanded 10^8 times":  # a 3 kB file that claims 300 GB of images
        data["train_images"] = torch.zeros(1, 3, 32, 32, dtype=torch.uint8).expand(10**8, 3, 32, 32)
        data["train_labels"] = torch.zeros(1, dtype=torch.int64).expand(10**8)
    elif how == "labels expanded from one":
        data["test_labels"] = torch.zeros(1, dtype=torch.int64).expand(len(packed["test_images"]))
    elif how == "images a view into a larger storage":
        data["test_images"] = torch.cat([packed["test_images"]] * 2)[len(packed["test_images"]):]
    elif how == "images transposed":
        data["test_images"] = packed["test_images"].transpose(2, 3)
    elif how == "more images than a split may hold":
        n = MAX_IMAGES["test"] + 1
        data["test_images"] = torch.zeros(n, 3, 32, 32, dtype=torch.uint8)
        data["test_labels"] = torch.zeros(n, dtype=torch.int64)
    return data


@pytest.mark.parametrize("how,words", [
    ("a label out of range", "train_labels range over [0, 100], outside the class indices [0, 100)"),
    ("a negative label", "test_labels range over [-1, 99]"),
    ("images of the wrong shape", "train_images are torch.uint8 (1200, 3, 16, 32), expected uint8 (N, 3, 32, 32)"),
    ("images of the wrong dtype", "test_images are torch.float32"),
    ("labels of the wrong dtype", "train_labels are torch.int32 (1200,), expected int64 (1200,)"),
    ("fewer labels than images", "test_labels are torch.int64 (399,), expected int64 (400,): one per image"),
    ("99 classes", "lists 99 entries as classes, expected 100 class names"),
    ("labels not a tensor", "train_labels is a list, not a tensor"),
    ("no dataset record", "does not record its dataset"),
    ("a key missing", "keys ['classes', 'dataset', 'test_labels', 'train_images', 'train_labels']"),
    ("not a dict", "holds a list, not the dict `msga pack` writes"),
    ("no test images", "test_images hold no image"),
    ("one image expanded 10^8 times", "train_images are not stored as `msga pack` writes them, one contiguous block "
                                      "that is its whole storage (strides (0, 1024, 32, 1), offset 0, 3,072 bytes stored"),
    ("labels expanded from one", "test_labels are not stored as `msga pack` writes them"),
    ("images a view into a larger storage", "its whole storage (strides (3072, 1024, 32, 1), offset 1228800, "
                                            "2,457,600 bytes stored for 1,228,800 bytes"),
    ("images transposed", "test_images are not stored as `msga pack` writes them"),
    ("more images than a split may hold", f"test_images hold {MAX_IMAGES['test'] + 1:,} images, more than the "
                                          f"{MAX_IMAGES['test']:,} a test split may hold"),
])
@pytest.mark.timeout(60)  # before the layout check, the expanded file took hours
def test_packed_file_with_wrong_contents_is_named_before_training(tmp_path, packed, how, words):
    import torch

    from msga.data import FetchError
    from msga.data.cifar import load_packed

    path = tmp_path / "cifar100.pt"
    torch.save(_packed_variant(packed, how), path)
    with pytest.raises(FetchError) as exc:
        load_packed(path)
    message = str(exc.value)
    assert message.startswith(f"{path} ") and words in message and "snakemake data" in message, message


def _unreadable_packed_file(tmp_path, packed_path, how: str):
    import collections
    import pickle

    path = tmp_path / "cifar100.pt"
    blob = packed_path.read_bytes()
    path.write_bytes({"garbage": b"not a packed file at all" * 10, "truncated": blob[: len(blob) // 2], "empty": b"",
                      "objects torch refuses": pickle.dumps(collections.OrderedDict(a=Run("m", "v", 0)))}[how])
    return path


def _never_advises_disabling_weights_only(message: str, path) -> None:
    assert str(path) in message and "snakemake data" in message, message
    assert "weights_only" not in message and "arbitrary code" not in message, message


@pytest.mark.parametrize("how", ["garbage", "truncated", "empty", "objects torch refuses"])
def test_unreadable_packed_file_says_rebuild_and_never_disable_weights_only(tmp_path, packed_path, how):
    """torch's own message for a refused object advises weights_only=False, which would run the
    file's code: the message is replaced."""
    from msga.data import FetchError
    from msga.data.cifar import load_packed

    path = _unreadable_packed_file(tmp_path, packed_path, how)
    with pytest.raises(FetchError) as exc:
        load_packed(path)
    _never_advises_disabling_weights_only(str(exc.value), path)
    assert exc.value.__cause__ is None and exc.value.__suppress_context__  # torch's text is not chained either


def test_training_on_an_unreadable_packed_file_is_one_clear_line(tmp_path, packed_path, demo_params):
    path = _unreadable_packed_file(tmp_path, packed_path, "objects torch refuses")
    config = tmp_path / "run.json"
    write_json_atomic(config, run_config(demo_params, "convnext"))
    proc = subprocess.run([sys.executable, "-m", "msga.cli", "train", "--config", str(config), "--data", str(path),
                           "--out", str(tmp_path / "run"), "--device", "cpu"], capture_output=True, text=True)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    _never_advises_disabling_weights_only(proc.stderr, path)


def _damage(path, how: str) -> None:
    blob = bytearray(path.read_bytes())
    if how == "truncated":
        path.write_bytes(blob[: len(blob) // 2])
    elif how == "one byte flipped":  # inside the tensor data: torch.load alone would accept it
        blob[len(blob) // 2] ^= 0xFF
        path.write_bytes(blob)
    elif how == "cut after its first line":
        path.write_bytes(blob[: blob.index(b"\n") + 1])


@pytest.mark.parametrize("how", ["truncated", "one byte flipped", "cut after its first line"])
def test_damaged_checkpoint_is_detected_and_reported(checkpoint_after_epoch_1, tmp_path, how, caplog):
    config, folder, _ = checkpoint_after_epoch_1
    path = tmp_path / CHECKPOINT
    shutil.copy(folder / CHECKPOINT, path)
    assert load_checkpoint(path, config_hash(config), "run")["epoch"] == 1  # intact, it would resume
    _damage(path, how)
    with caplog.at_level("WARNING", logger="msga.train"):
        assert load_checkpoint(path, config_hash(config), "convnext/damaged/seed0") is None
    assert "convnext/damaged/seed0" in caplog.text and "unreadable" in caplog.text
    assert "starting from scratch" in caplog.text


def test_checkpoint_of_another_configuration_is_not_resumed(checkpoint_after_epoch_1, caplog):
    config, folder, _ = checkpoint_after_epoch_1
    with caplog.at_level("WARNING", logger="msga.train"):
        assert load_checkpoint(folder / CHECKPOINT, "another-config", "run") is None
    assert "another configuration" in caplog.text


# ---------------------------------------------------------------- damaged run outputs


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, demo_params, packed):
    folder = tmp_path_factory.mktemp("finished")
    config = run_config(demo_params, "convnext", TWO_EPOCHS, name="base")
    train_run(config, packed, folder, CPU)
    return folder, config


def _cut_at_a_line_end(text: str) -> str:
    return text.splitlines(keepends=True)[0]


def _edit_metrics(change):
    def damage(text: str) -> str:
        metrics = json.loads(text)
        change(metrics)
        return json.dumps(metrics)
    return damage


@pytest.mark.parametrize("name,damage,words", [
    ("metrics.json", lambda t: t[: len(t) // 2], "unreadable"),
    ("metrics.json", lambda t: "[1, 2]", "not an object"),
    ("metrics.json", lambda t: "", "unreadable"),
    ("metrics.json", _edit_metrics(lambda m: m.update(acc=7.5)), "acc is 7.5, not a number in [0, 1]"),
    ("metrics.json", _edit_metrics(lambda m: m.update(auc=None)), "auc is None"),
    ("metrics.json", lambda t: t.replace('"recall": ', '"recall": NaN, "x": ', 1), "NaN is not a JSON value"),
    ("metrics.json", _edit_metrics(lambda m: m.update(precision="0.5")), "precision is '0.5'"),
    ("metrics.json", _edit_metrics(lambda m: m.update(run="msga/base/seed0")), "belongs to run 'msga/base/seed0'"),
    ("metrics.json", _edit_metrics(lambda m: m["config"]["model"].update(name="msga")), "another run's files"),
    ("metrics.json", _edit_metrics(lambda m: m.update(params=-3)), "params is -3"),
    ("history.jsonl", lambda t: t[: len(t) // 2], "unreadable"),
    ("history.jsonl", _cut_at_a_line_end, "1 of the 2 epochs"),
    ("history.jsonl", lambda t: t.replace('"test_acc": ', '"test_acc": "high", "x": ', 1), "lacks a finite"),
    ("history.jsonl", None, "unreadable"),
])
def test_damaged_run_file_is_named_with_its_run(finished_run, tmp_path, name, damage, words):
    source, config = finished_run
    folder = tmp_path / "seed0"
    shutil.copytree(source, folder)
    if damage is None:
        (folder / name).unlink()
    else:
        (folder / name).write_text(damage((folder / name).read_text()))
    state = read_run(folder, Run("convnext", "base", 0), config)
    assert state.status == DAMAGED
    assert state.reason.startswith("convnext/base/seed0:") and str(folder / name) in state.reason, state.reason
    assert words in state.reason and "rerun" in state.reason


def test_an_intact_run_reads_and_a_missing_one_is_named(finished_run, tmp_path):
    folder, config = finished_run
    state = read_run(folder, Run("convnext", "base", 0), config)
    assert state.status == FINISHED
    assert [h["epoch"] for h in state.history] == [1, 2] and 0 <= state.metrics["acc"] <= 1
    assert read_run(tmp_path, Run("convnext", "base", 0), config).status == MISSING


# ---------------------------------------------------------------- determinism


@pytest.mark.parametrize("deterministic", [True, False], ids=["deterministic", "default"])
def test_deterministic_run_twice_on_cpu_is_bit_identical(tmp_path, demo_params, packed, deterministic):
    config = run_config(demo_params, "msga", {"train.epochs": 1, "train.deterministic": deterministic}, seed=4,
                        name="det")
    a = train_run(config, packed, tmp_path / "a", CPU)
    b = train_run(config, packed, tmp_path / "b", CPU)
    for key in ("acc", "auc", "precision", "recall", "top5", "per_class_recall", "confusion_matrix"):
        assert a[key] == b[key], key
    pa, pb = (np.load(tmp_path / r / "predictions.npz") for r in ("a", "b"))
    assert np.array_equal(pa["probs"], pb["probs"])  # every probability, bit for bit
    assert _curve(tmp_path / "a") == _curve(tmp_path / "b")


def _curve(run_dir) -> list[dict]:
    """history.jsonl without its timings, which no two runs share."""
    lines = (run_dir / "history.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in ("seconds", "images_per_s")} for line in lines]


# ---------------------------------------------------------------- writers killed with SIGKILL

# A writer of `target` that stops mid-write: half its bytes are in the temp file when it is killed.
_WRITER = """
import sys, time
from msga.infra.atomic import atomic_output
with atomic_output(sys.argv[1]) as tmp:
    with open(tmp, "wb") as f:
        f.write(b"half of the bytes" * 60_000)
        f.flush()
        print(tmp, flush=True)
        time.sleep(600)
"""


def _writer(target):
    """A live writer process of `target`, stopped mid-write; returns (process, its temp file)."""
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(target)], stdout=subprocess.PIPE, text=True)
    tmp = Path(proc.stdout.readline().strip())
    assert tmp.is_file() and tmp.parent == target.parent, tmp
    return proc, tmp


def _kill_9(proc) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@pytest.fixture()
def extracted(tmp_path, fixture_archive):
    """An extraction folder and the verification record of the fixture archive."""
    from msga.data.archive import extract

    verified = tmp_path / "verified.json"
    write_json_atomic(verified, {"md5": fixture_archive[1]})
    extract(fixture_archive[0], tmp_path / "work", fixture_archive[1])
    return tmp_path / "work", verified


def _rerun(step: str, target, fixture_archive, extracted, http_dir) -> None:
    """The step whose output is `target`, run again as the DAG runs it."""
    from msga.data.download import download

    work, verified = extracted
    archive, md5 = fixture_archive
    if step == "msga pack":
        subprocess.run([sys.executable, "-m", "msga.cli", "pack", "--root", str(work), "--verified", str(verified),
                        "--dataset", "fixture", "--out", str(target)], check=True, capture_output=True)
    elif step == "msga extract":
        subprocess.run([sys.executable, "-m", "msga.cli", "extract", "--archive", str(archive), "--verified",
                        str(verified), "--out", str(work)], check=True, capture_output=True)
    else:
        folder, base = http_dir
        shutil.copy(archive, folder / archive.name)
        download(f"{base}/{archive.name}", target, md5, retries=1)


@pytest.mark.parametrize("step", ["msga pack", "msga extract", "download"])
def test_the_next_run_removes_what_a_killed_writer_left(tmp_path, fixture_archive, extracted, http_dir, step):
    target = {"msga pack": tmp_path / "packed" / "cifar100.pt",
              "msga extract": extracted[0] / "cifar-100-python" / "train",
              "download": tmp_path / "archives" / "cifar-100-python.tar.gz"}[step]
    target.parent.mkdir(exist_ok=True)
    proc, tmp = _writer(target)
    _kill_9(proc)
    assert tmp.is_file()  # kill -9: no cleanup ran
    _rerun(step, target, fixture_archive, extracted, http_dir)
    assert not tmp.exists() and target.is_file()
    assert _leftovers(target.parent) == []


def test_a_killed_writer_not_yet_reaped_counts_as_dead(tmp_path):
    """Killed, but its parent has not waited for it yet (a zombie): it writes nothing any more."""
    target = tmp_path / "cifar100.pt"
    proc, tmp = _writer(target)
    proc.send_signal(signal.SIGKILL)
    for _ in range(500):  # until the kernel has made it a zombie
        if Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] == "Z":
            break
        time.sleep(0.01)
    write_json_atomic(target, {"written": "again"})
    assert not tmp.exists()
    _kill_9(proc)


def test_a_live_writers_temp_file_is_never_removed(tmp_path):
    target = tmp_path / "cifar100.pt"
    proc, tmp = _writer(target)
    try:
        write_json_atomic(target, {"written": "by another process meanwhile"})
        assert tmp.is_file() and json.loads(target.read_text()) == {"written": "by another process meanwhile"}
    finally:
        _kill_9(proc)
    write_json_atomic(target, {"written": "again"})  # its writer is dead now
    assert not tmp.exists()


def test_only_dead_writers_temp_files_of_the_same_target_on_this_host_are_removed(tmp_path):
    from msga.infra.atomic import _writer_tag

    target, dead, tag = tmp_path / "metrics.json", _dead_pid(), _writer_tag()
    kept = [
        f".metrics.json.other-host.{dead}.abcd1234.tmp",  # another machine, sharing the folder
        f".metrics.json.{tag}.{os.getpid()}.abcd1234.tmp",  # this process (another thread)
        f".metrics.json.{tag}.1.abcd1234.tmp",  # a live process (init)
        f".metrics.json.x.{tag}.{dead}.abcd1234.tmp",  # the target metrics.json.x, not metrics.json
        ".metrics.json.abcd1234.tmp",  # named by no writer: not ours to judge
        "notes.tmp",
    ]
    removed = [f".metrics.json.{tag}.{dead}.abcd1234.tmp", f".metrics.json.{tag}.{dead}.efgh5678.tmp"]
    for name in kept + removed:
        (tmp_path / name).write_text("partial")
    write_json_atomic(target, {"acc": 0.5})
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept + ["metrics.json"])


# ---------------------------------------------------------------- stamps


def test_a_stamp_removes_the_earlier_stamps_this_project_wrote_and_nothing_else(tmp_path):
    """`msga aggregate --stamp D/KEY` and `msga report --stamp D/KEY` replace the stamp of an earlier
    key in D; a user's files there, even one named like a key, stay as they were."""
    from msga.infra.atomic import write_stamp

    folder = tmp_path / "stamps"
    write_stamp(folder / "0123456789abcdef")  # an earlier key's stamp
    (folder / "fedcba9876543210").write_text("fedcba9876543210\n")  # a stamp as first written: its name
    mine = {"notes.txt": "my notes\n", "table1.csv": "model,acc\n", "aaaaaaaaaaaaaaaa": "named like a key\n",
            "bbbbbbbbbbbbbbbb": "bbbbbbbbbbbbbbbb\n" * 20, ".hidden": "x"}
    for name, text in mine.items():
        (folder / name).write_text(text)
    (tmp_path / "elsewhere").write_text("0123456789abcdee\n")
    (folder / "0123456789abcdee").symlink_to(tmp_path / "elsewhere")  # a link is not ours to remove
    write_stamp(folder / "1111111111111111")
    left = {p.name: p.read_text() for p in folder.iterdir()}
    assert set(left) == {*mine, "0123456789abcdee", "1111111111111111"}
    assert all(left[name] == text for name, text in mine.items())
    assert left["1111111111111111"].startswith("msga stamp 1111111111111111")
    write_stamp(folder / "x")  # a stamp named otherwise is written, and removes the key's stamp before it
    assert {p.name for p in folder.iterdir()} == {*mine, "0123456789abcdee", "x"}
    assert (tmp_path / "elsewhere").read_text() == "0123456789abcdee\n"
