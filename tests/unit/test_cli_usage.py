"""The command line refuses bad usage before doing any work: a clear message and exit status 2."""

from __future__ import annotations

import pytest

from msga.cli import main
from tests.conftest import REPO

DEMO = str(REPO / "workflow" / "demo.yaml")
CONFIG = str(REPO / "tests" / "data" / "run_config.json")  # a run's resolved configuration, as `msga resolve` writes it
VERIFIED = str(REPO / "tests" / "data" / "verified.json")  # a verification record, as `msga verify` writes it


def _exit(argv) -> int:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    return exc.value.code


@pytest.mark.parametrize("argv,words", [
    (["train", "--data", "d.pt", "--out", "x"], "--config"),
    (["train", "--config", "c.json", "--out", "x"], "--data"),
    (["resolve", "--params", DEMO], "--run"),
    (["fetch"], "--out"),
    (["pack", "--out", "x.pt", "--verified", "v.json", "--dataset", "d"], "--root"),
    (["download", "--source", "x", "--out", "y"], "--md5"),
    (["synth"], "--out"),
    (["synth", "--out", "x.tar.gz", "--seed", "zero"], "invalid int value"),
    (["aggregate", "--grid", "g.json", "--params", DEMO], "not allowed with argument"),
    ([], "COMMAND"),
    (["shred"], "invalid choice"),
])
def test_missing_or_malformed_flags_are_usage_errors(argv, words, capsys):
    assert _exit(argv) == 2
    assert words in capsys.readouterr().err


@pytest.mark.parametrize("argv,words", [
    (["fetch", "--out", "raw", "--url", "http://127.0.0.1:9/a.tar.gz", "--md5", "0" * 32, "--tarball", "a.tar.gz"],
     "either --url or --tarball"),
    (["fetch", "--out", "raw", "--url", "http://127.0.0.1:9/a.tar.gz"], "--url needs --md5"),
    (["fetch", "--out", "raw", "--url", "http://127.0.0.1:9/a.tar.gz", "--md5", "0" * 32, "--retries", "0"],
     "--retries must be at least 1"),
    (["resolve", "--params", DEMO, "--run", "resnet/base/seed0"], "resnet"),
    (["resolve", "--params", DEMO, "--run", "msga/heads=5/seed0"], "not divisible"),
    (["resolve", "--params", DEMO, "--run", "msga/epochs=3/seed0"], "KEY=VALUE with KEY one of heads"),
    (["resolve", "--params", DEMO, "--run", "msga/base"], "not a run id"),
    (["train", "--config", "no-such-config.json", "--data", "d.pt", "--out", "run"], "no-such-config.json does not exist"),
    (["train", "--config", CONFIG, "--data", "no-data.pt", "--out", "run"], "packed data no-data.pt does not exist"),
    (["validate", "--params", "no-such-params.yaml"], "no-such-params.yaml"),
])
def test_conflicting_or_invalid_values_are_usage_errors(argv, words, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert _exit(argv) == 2
    assert words in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # refused before any work: nothing was created


@pytest.fixture()
def blocker(tmp_path):
    """A regular file where a folder is needed: unwritable as a folder even for root."""
    path = tmp_path / "a-file"
    path.write_text("not a folder")
    return path


@pytest.mark.parametrize("command", [
    lambda out: ["synth", "--out", f"{out}/a.tar.gz"],
    lambda out: ["fetch", "--out", out, "--tarball", "a.tar.gz", "--md5", "0" * 32],
    lambda out: ["download", "--source", "a.tar.gz", "--md5", "0" * 32, "--out", f"{out}/a.tar.gz"],
    lambda out: ["pack", "--root", ".", "--verified", VERIFIED, "--dataset", "d", "--out", f"{out}/cifar100.pt"],
    lambda out: ["resolve", "--params", DEMO, "--run", "msga/base/seed0", "--out", f"{out}/config.json"],
    lambda out: ["train", "--config", CONFIG, "--out", out, "--data", CONFIG],  # a file: refused before it is read
    lambda out: ["aggregate", "--params", DEMO, "--out", out],
    lambda out: ["report", "--reports", out],
    lambda out: ["bench", "--params", DEMO, "--json", f"{out}/bench.json"],
], ids=["synth", "fetch", "download", "pack", "resolve", "train", "aggregate", "report", "bench"])
def test_unwritable_output_folder_is_a_usage_error(command, blocker, capsys):
    out = str(blocker / "sub")
    assert _exit(command(out)) == 2
    err = capsys.readouterr().err
    assert f"cannot create output folder {blocker}" in err or f"cannot create output folder {out}" in err
    assert blocker.read_text() == "not a folder"
