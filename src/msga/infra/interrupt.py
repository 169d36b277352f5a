"""Ctrl-C stops the training jobs at once, their last checkpoints kept.

Snakemake answers an interrupt by waiting for its running jobs to end ("Terminating processes on
user request"), and a training job that did not get the interrupt itself (a terminal's Ctrl-C
reaches the whole foreground process group, a `kill -INT` of Snakemake or a wrapper's relay does
not) runs to its last epoch. The Snakefile installs this handler in Snakemake's own process: it
passes the interrupt on to every process Snakemake started, then lets Snakemake handle it as usual.
A training job stops within its current step; the checkpoint of its last finished epoch stays and
the next run resumes from it. Torch-free.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path


def descendants(pid: int) -> list[int]:
    """Every live process below `pid` (children, their children, ...), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])  # the field after the state; the name may hold spaces
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def install() -> None:
    """Pass SIGINT on to this process's descendants before the usual KeyboardInterrupt."""
    previous = signal.getsignal(signal.SIGINT)

    def on_interrupt(signum, frame):
        for child in descendants(os.getpid()):
            try:
                os.kill(child, signal.SIGINT)
            except OSError:  # already gone
                pass
        if callable(previous):
            previous(signum, frame)
        else:
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_interrupt)
