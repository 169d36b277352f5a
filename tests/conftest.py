"""Shared fixtures: a small synthetic archive, a loopback HTTP server, packed tensors, and the demo
params whose data is that archive (so a run resolved from them trains on the packed fixture).

The tiers are folders: unit/ (the fast lane), faults/ (bad input, broken files, full disks, killed
writers), workflow/ (the whole DAG through Snakemake, DVC and SLURM: every test there is marked
slow here, so `pytest -m "not slow"` runs the other two in minutes)."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import pytest
import yaml

from msga.data.archive import ARCHIVE_NAME
from msga.data.cifar import load_packed, pack
from msga.data.fetch import fetch
from msga.data.synthetic import write_archive
from msga.grid.params import validate_params
from msga.grid.resolve import dataset, resolve_run
from msga.grid.runs import Run

REPO = Path(__file__).resolve().parents[1]
SLOW_TIER = Path(__file__).resolve().parent / "workflow"
TRAIN_PER_CLASS, TEST_PER_CLASS, SEED = 12, 4, 3


def pytest_collection_modifyitems(items):
    for item in items:
        if Path(item.path).resolve().is_relative_to(SLOW_TIER):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def fixture_archive(tmp_path_factory) -> tuple[Path, str]:
    """A CIFAR-100-format archive of the synthetic fixture: (path, md5)."""
    out = tmp_path_factory.mktemp("fixture")
    return write_archive(out / ARCHIVE_NAME, TRAIN_PER_CLASS, TEST_PER_CLASS, SEED)


@pytest.fixture(scope="session")
def demo_params() -> dict:
    """workflow/demo.yaml, its synthetic data sized as the session's fixture archive."""
    raw = yaml.safe_load((REPO / "workflow" / "demo.yaml").read_text())
    raw["data"]["synthetic"] = {"train_per_class": TRAIN_PER_CLASS, "test_per_class": TEST_PER_CLASS, "seed": SEED}
    return validate_params(raw)


@pytest.fixture(scope="session")
def packed_path(tmp_path_factory, fixture_archive, demo_params) -> Path:
    """The fixture through the real fetch (as a local tarball) and pack path, identified as the
    dataset demo_params names."""
    root = tmp_path_factory.mktemp("data")
    archive, md5 = fixture_archive
    fetch(root, tarball=archive, md5=md5)
    return pack(root, root / "cifar100.pt", dataset(demo_params)["id"], md5)


@pytest.fixture(scope="session")
def packed(packed_path) -> dict:
    return load_packed(packed_path)


def run_config(params: dict, model: str, overrides: dict | None = None, seed: int = 0, name: str = "test") -> dict:
    """A run's resolved configuration with any overrides (dotted keys), named model/name/seedN."""
    return resolve_run(params, Run(model, name, seed), overrides or {})


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass


@pytest.fixture()
def http_dir(tmp_path):
    """Serve a folder on 127.0.0.1 at an ephemeral port; yields (folder, base URL)."""
    folder = tmp_path / "www"
    folder.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
