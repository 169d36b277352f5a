"""Shared fixtures: a small synthetic archive, a loopback HTTP server, packed tensors."""

from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import pytest
import yaml

from msga.data.cifar import fetch, load_packed, pack
from msga.data.synthetic import write_archive

REPO = Path(__file__).resolve().parents[1]
TRAIN_PER_CLASS, TEST_PER_CLASS, SEED = 12, 4, 3


@pytest.fixture(scope="session")
def fixture_archive(tmp_path_factory) -> tuple[Path, str]:
    """A CIFAR-100-format archive of the synthetic fixture: (path, md5)."""
    out = tmp_path_factory.mktemp("fixture")
    return write_archive(out, TRAIN_PER_CLASS, TEST_PER_CLASS, SEED)


@pytest.fixture(scope="session")
def packed_path(tmp_path_factory, fixture_archive) -> Path:
    """The fixture through the real fetch (as a local tarball) and pack path."""
    root = tmp_path_factory.mktemp("data")
    archive, md5 = fixture_archive
    fetch(root, tarball=archive, md5=md5)
    return pack(root, root / "cifar100.pt")


@pytest.fixture(scope="session")
def packed(packed_path) -> dict:
    return load_packed(packed_path)


@pytest.fixture(scope="session")
def demo_params() -> dict:
    from msga.config import validate_params

    return validate_params(yaml.safe_load((REPO / "workflow" / "demo.yaml").read_text()))


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
