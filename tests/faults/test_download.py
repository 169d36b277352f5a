"""Broken downloads, over a real loopback server that misbehaves on purpose: each fault is a
clear error that leaves no partial file, transient ones are retried, and a retry succeeds."""

from __future__ import annotations

import http.server
import threading
import time

import pytest

from msga.cli import main
from msga.data import FetchError, download
from msga.data.archive import ARCHIVE_NAME, FOLDER
from msga.data.fetch import fetch
from msga.data.format import MAX_ARCHIVE_BYTES

TIMEOUT = 0.5  # seconds; the slow server waits longer than this before answering


class FaultyServer:
    """Serves one archive; request i behaves as plan[i] (the last entry repeats)."""

    def __init__(self, payload: bytes, plan: list[str]):
        self.payload, self.plan, self.requests = payload, plan, 0
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                fault = owner.plan[min(owner.requests, len(owner.plan) - 1)]
                owner.requests += 1
                getattr(owner, f"_{fault}")(self)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/{ARCHIVE_NAME}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _ok(self, h, body: bytes | None = None, kind: str = "application/x-gzip", length: int | None = None):
        body = self.payload if body is None else body
        h.send_response(200)
        h.send_header("Content-Type", kind)
        h.send_header("Content-Length", str(len(body) if length is None else length))
        h.end_headers()
        h.wfile.write(body)

    def _drop(self, h):  # promises the whole archive, sends half, hangs up
        self._ok(h, self.payload[: len(self.payload) // 2], length=len(self.payload))

    def _error500(self, h):
        h.send_error(500, "Internal Server Error")

    def _error404(self, h):
        h.send_error(404, "Not Found")

    def _slow(self, h):
        time.sleep(TIMEOUT * 4)
        self._ok(h)

    def _html(self, h):  # a captive portal or proxy page, served with 200
        self._ok(h, b"<!DOCTYPE html><html><body>Please log in</body></html>", kind="text/html")

    def _html_as_binary(self, h):  # the same page, mislabelled
        self._ok(h, b"<!DOCTYPE html><html><body>Please log in</body></html>", kind="application/octet-stream")

    def _huge_length(self, h):  # announces a terabyte, sends the archive's start
        self._ok(h, self.payload[:1000], length=10**12)

    def _endless(self, h):  # no Content-Length (the body ends when the connection does), and no end
        h.send_response(200)
        h.send_header("Content-Type", "application/x-gzip")
        h.end_headers()
        try:
            while True:
                h.wfile.write(self.payload)
        except OSError:  # the client hung up
            pass

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def serve(fixture_archive):
    servers = []

    def start(*plan: str) -> FaultyServer:
        servers.append(FaultyServer(fixture_archive[0].read_bytes(), list(plan)))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def _left(out):
    return sorted(str(p.relative_to(out)) for p in out.rglob("*")) if out.exists() else []


FAULTS = {  # fault -> (words the error must contain, retried?)
    "drop": ("cut short", True),
    "error500": ("HTTP 500", True),
    "slow": ("timed out", True),
    "error404": ("HTTP 404", False),
    "html": ("HTML page", False),
    "html_as_binary": ("did not send a gzip archive", False),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_fault_is_a_clear_error_that_leaves_nothing(tmp_path, serve, fixture_archive, fault):
    words, retried = FAULTS[fault]
    server = serve(fault)
    out = tmp_path / "raw"
    with pytest.raises(FetchError) as exc:
        fetch(out, url=server.url, md5=fixture_archive[1], timeout=TIMEOUT, retries=2, backoff=0)
    message = str(exc.value)
    assert words in message and server.url in message
    assert "--tarball" in message or "md5" in message  # says what to do instead
    assert server.requests == (2 if retried else 1)  # retried only when another attempt can help
    assert ("gave up after 2 attempts" in message) == retried
    assert _left(out) == []  # no partial archive, no temp file, no extracted member


@pytest.mark.parametrize("fault", ["drop", "error500", "slow"])
def test_transient_fault_is_retried_and_the_retry_succeeds(tmp_path, serve, fixture_archive, fault, caplog):
    server = serve(fault, "ok")
    with caplog.at_level("WARNING", logger="msga.fetch"):
        folder = fetch(tmp_path, url=server.url, md5=fixture_archive[1], timeout=TIMEOUT, retries=3, backoff=0)
    assert server.requests == 2 and "attempt 1 of 3 failed" in caplog.text
    assert sorted(p.name for p in folder.iterdir()) == ["meta", "test", "train"]


@pytest.mark.parametrize("fault", list(FAULTS))
def test_rerunning_fetch_after_a_failure_succeeds(tmp_path, serve, fixture_archive, fault, capsys):
    """The user's retry: the failed command left nothing that could poison the next one."""
    server = serve(fault, "ok")
    out = tmp_path / "raw"
    argv = ["fetch", "--out", str(out), "--url", server.url, "--md5", fixture_archive[1],
            "--timeout", str(TIMEOUT), "--retries", "1"]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 1 and FAULTS[fault][0] in capsys.readouterr().err
    assert _left(out) == []
    assert main(argv) == 0
    assert (out / FOLDER / "train").is_file()


def test_a_download_announcing_more_than_an_archive_can_hold_is_refused_before_a_byte_is_written(tmp_path, serve):
    server = serve("huge_length")
    out = tmp_path / "raw"
    with pytest.raises(FetchError) as exc:
        fetch(out, url=server.url, md5=None, timeout=TIMEOUT, retries=3, backoff=0)
    message = str(exc.value)
    assert f"announces 1,000,000,000,000 bytes (Content-Length), more than {MAX_ARCHIVE_BYTES:,}" in message
    assert server.requests == 1 and _left(out) == []  # not retried: the server would send the same


@pytest.mark.parametrize("bound", ["below the archive", "the archive exactly"])
def test_a_download_is_cut_off_once_it_passes_the_bound(tmp_path, serve, fixture_archive, monkeypatch, bound):
    """A server that sends without end (no Content-Length) is stopped one byte past the bound, the
    partial file removed; an archive of exactly the bound's size still downloads. (The bound is
    lowered here to a size below the fixture's; the real one is MAX_ARCHIVE_BYTES.)"""
    size = len(fixture_archive[0].read_bytes())
    monkeypatch.setattr(download, "MAX_ARCHIVE_BYTES", size - 1 if bound == "below the archive" else size)
    server = serve("endless" if bound == "below the archive" else "ok")
    out = tmp_path / "raw"
    if bound == "the archive exactly":
        fetch(out, url=server.url, md5=fixture_archive[1], timeout=TIMEOUT, retries=1)
        assert (out / FOLDER / "train").is_file()
        return
    with pytest.raises(FetchError, match=f"sent more than {size - 1:,} bytes .the most an archive"):
        fetch(out, url=server.url, md5=None, timeout=TIMEOUT, retries=3, backoff=0)
    assert server.requests == 1 and _left(out) == []


def test_a_local_tarball_larger_than_an_archive_can_be_is_refused_before_it_is_copied(tmp_path, monkeypatch):
    huge = tmp_path / "mine" / ARCHIVE_NAME
    huge.parent.mkdir()
    with open(huge, "wb") as f:
        f.truncate(2_000)  # sparse: the size is what is checked, before anything is read
    monkeypatch.setattr(download, "MAX_ARCHIVE_BYTES", 1_999)
    out = tmp_path / "raw"
    out.mkdir()
    with pytest.raises(FetchError, match="is 2,000 bytes, more than 1,999 .the most an archive"):
        download.obtain(str(huge), out / ARCHIVE_NAME, md5=None)  # as the DAG imports data.tarball
    assert huge.stat().st_size == 2_000 and _left(out) == []
