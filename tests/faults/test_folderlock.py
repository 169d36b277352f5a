"""The folder guard's owner record: who holds the folder is checked, not only recorded, so a
Snakemake on another host of a shared filesystem (whose flocks that host cannot see) or on a
filesystem without flock is still refused, and a dead owner's locks are still cleared."""

import json
import socket
import subprocess
import sys
import time

import pytest

from msga.infra import folderlock

CLAIM = ("import sys; from msga.infra import folderlock\n"
         "try:\n    note = folderlock.claim()\nexcept folderlock.FolderBusy as busy:\n"
         "    print(busy); sys.exit(3)\nprint(note or '')\n")


def claim_in_a_process(folder):
    return subprocess.run([sys.executable, "-c", CLAIM], cwd=folder, capture_output=True, text=True, timeout=60)


def record(folder, **owner):
    (folder / folderlock.STATE).mkdir(exist_ok=True)
    (folder / folderlock.OWNER).write_text(json.dumps(owner))


def leave_a_snakemake_lock(folder):
    locks = folder / folderlock.SNAKEMAKE_LOCKS
    locks.mkdir(parents=True, exist_ok=True)
    (locks / "0.input.lock").write_text("")
    return locks / "0.input.lock"


def test_an_owner_on_another_host_with_a_fresh_heartbeat_is_refused_and_nothing_is_touched(tmp_path):
    record(tmp_path, pid=4242, host="node-b", started="2026-12-01 10:00:00", command="snakemake --cores all",
           heartbeat=time.time() - 5)
    lock = leave_a_snakemake_lock(tmp_path)
    done = claim_in_a_process(tmp_path)
    assert done.returncode == 3, done.stderr
    assert "pid 4242 on node-b" in done.stdout and "heartbeat" in done.stdout
    assert lock.exists()  # the running one's lock is left alone
    assert json.loads((tmp_path / folderlock.OWNER).read_text())["host"] == "node-b"


def test_an_owner_on_another_host_whose_heartbeat_stopped_is_gone_and_its_locks_are_cleared(tmp_path):
    record(tmp_path, pid=4242, host="node-b", heartbeat=time.time() - folderlock.STALE_AFTER - 1)
    lock = leave_a_snakemake_lock(tmp_path)
    done = claim_in_a_process(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no longer running" in done.stdout and not lock.exists()


def test_a_live_owner_on_this_host_is_refused_even_when_the_flock_is_free(tmp_path):
    # as where flock does not work: the record alone must tell that its process runs
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        record(tmp_path, pid=sleeper.pid, host=socket.gethostname(),
               process_start=folderlock.process_start(sleeper.pid), heartbeat=time.time())
        lock = leave_a_snakemake_lock(tmp_path)
        done = claim_in_a_process(tmp_path)
        assert done.returncode == 3 and f"kill {sleeper.pid}" in done.stdout
        assert lock.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


@pytest.mark.parametrize("what", ["a reused pid", "a dead pid", "an ended owner"])
def test_an_owner_that_is_not_running_here_does_not_hold_the_folder(tmp_path, what):
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        owner = {"pid": sleeper.pid, "host": socket.gethostname(), "heartbeat": time.time(),
                 "process_start": folderlock.process_start(sleeper.pid)}
        if what == "a reused pid":
            owner["process_start"] -= 1  # the pid now names another process than the recorded one
        elif what == "an ended owner":
            owner["ended"] = True
        else:
            sleeper.kill()
            sleeper.wait()
        record(tmp_path, **owner)
        lock = leave_a_snakemake_lock(tmp_path)
        done = claim_in_a_process(tmp_path)
        assert done.returncode == 0, done.stdout
        assert not lock.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_the_holder_records_itself_checkably_and_marks_its_end(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", CLAIM + "import time; time.sleep(30)\n"], cwd=tmp_path,
                              stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not folderlock.running_owner(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.1)
        owner = folderlock.running_owner(tmp_path)
        assert owner["pid"] == holder.pid and owner["process_start"] == folderlock.process_start(holder.pid)
        assert claim_in_a_process(tmp_path).returncode == 3  # held: by the flock and by the record
    finally:
        holder.terminate()
        holder.wait(timeout=30)
    # a clean exit (SIGTERM ends Python without atexit, so end one that exits normally)
    done = claim_in_a_process(tmp_path)
    assert done.returncode == 0
    assert folderlock.read_owner(tmp_path)["ended"] is True and folderlock.running_owner(tmp_path) == {}


def test_the_end_is_marked_in_the_claimed_folder_after_a_change_of_directory(tmp_path):
    # as `snakemake -d DIR` does: it claims DIR, then returns to where it started before exiting
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = subprocess.run([sys.executable, "-c", CLAIM + f"import os; os.chdir({str(elsewhere)!r})\n"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert folderlock.read_owner(tmp_path)["ended"] is True
    assert not (elsewhere / folderlock.STATE).exists()
