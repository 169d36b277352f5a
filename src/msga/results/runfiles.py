"""What a run folder holds, checked: finished, stale, damaged, in progress or missing.

Every value read from a run's files is checked (type, range, the run's identity against its
folder) before anything is aggregated from it; a run whose recorded configuration differs from
the one the current grid resolves for it is stale, with the differences named. Torch-free.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from msga.grid.metrics import SCORES
from msga.grid.params import is_finite_number
from msga.grid.paths import HISTORY, METRICS, PROGRESS
from msga.grid.resolve import config_differences
from msga.grid.runs import Run

FINISHED, STALE, DAMAGED, IN_PROGRESS, MISSING = "finished", "stale", "damaged", "in progress", "missing"
HISTORY_KEYS = ("epoch", "train_loss", "train_acc", "test_acc", "lr", "seconds")


class Damaged(ValueError):
    pass


@dataclass
class RunState:
    run: Run
    status: str
    reason: str = ""
    metrics: dict = field(default_factory=dict)
    history: list = field(default_factory=list)
    progress: dict = field(default_factory=dict)


def current_state(runs_root: Path, run: Run, key: str, expected: dict) -> RunState:
    """The state of a run of the grid: its folder for the current key, or, when that one has not
    finished, the newest finished folder of another key (stale: trained with another configuration
    or other code), or whatever the current folder holds (in progress, damaged, missing)."""
    state = read_run(Path(runs_root) / run.id / key, run, expected)
    if state.status in (FINISHED, DAMAGED, IN_PROGRESS):
        return state
    others = sorted((p for p in (Path(runs_root) / run.id).glob(f"*/{METRICS}") if p.parent.name != key),
                    key=lambda p: p.stat().st_mtime, reverse=True)
    for metrics in others:
        older = read_run(metrics.parent, run, expected)
        if older.status == STALE:
            return older
        if older.status == FINISHED:  # the same configuration, trained by other code
            return RunState(run, STALE, f"{run.id}: trained by other code than the current (its training loop or its "
                                        f"model's files changed since; {metrics.parent} holds it); rerun the DAG to "
                                        "train it again", older.metrics, older.history)
    return state


def read_run(folder: Path, run: Run, expected: dict | None) -> RunState:
    """The state of one run folder against the configuration the grid expects of it (None: any)."""
    metrics_path, history_path = folder / METRICS, folder / HISTORY
    if not metrics_path.exists():
        progress = _progress(folder)
        if progress:
            return RunState(run, IN_PROGRESS, f"{run.id}: epoch {progress['epoch']} of {progress['epochs']} done, "
                                              "not finished", progress=progress)
        return RunState(run, MISSING, f"{run.id}: {metrics_path} is missing (the run has not finished)")
    try:
        metrics = _check_metrics(_json(metrics_path), run)
    except Damaged as err:
        return RunState(run, DAMAGED, f"{run.id}: {metrics_path} is unreadable ({err}); delete the run folder and rerun")
    try:
        history = _check_history(history_path, metrics["config"]["train"]["epochs"])
    except Damaged as err:
        return RunState(run, DAMAGED, f"{run.id}: {history_path} is unreadable ({err}); delete the run folder and rerun")
    if expected is not None and metrics["config"] != expected:
        changes = config_differences(metrics["config"], expected)
        return RunState(run, STALE, f"{run.id}: trained with another configuration than the grid now gives "
                                    f"({'; '.join(changes[:6])}{' ...' if len(changes) > 6 else ''}); rerun the DAG "
                                    "to train it again", metrics, history)
    return RunState(run, FINISHED, "", metrics, history)


def _json(path: Path):
    try:
        return json.loads(path.read_text(), parse_constant=_no_constant)
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise Damaged(str(err)) from err


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON value")  # NaN, Infinity: Python writes them, JSON has none


def _check_metrics(metrics, run: Run) -> dict:
    if not isinstance(metrics, dict):
        raise Damaged(f"holds a JSON {type(metrics).__name__}, not an object")
    missing = [k for k in (*SCORES, "config", "run") if k not in metrics]
    if missing:
        raise Damaged(f"lacks {', '.join(missing)}")
    for key in SCORES:
        value = metrics[key]
        if not _is_fraction(value):
            raise Damaged(f"{key} is {value!r}, not a number in [0, 1]")
    config = metrics["config"]
    if not isinstance(config, dict) or not all(isinstance(config.get(k), dict) for k in ("model", "train", "noise")):
        raise Damaged("its config is not a run configuration")
    identity = (metrics["run"], config["model"].get("name"), config.get("seed"))
    if identity != (run.id, run.model, run.seed):
        raise Damaged(f"it belongs to run {metrics['run']!r} (model {identity[1]!r}, seed {identity[2]!r}), not to "
                      f"{run.id}: the folder holds another run's files")
    epochs = config["train"].get("epochs")
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
        raise Damaged(f"its config records {epochs!r} epochs")
    for key in ("params", "flops_per_image", "train_seconds", "wall_seconds", "train_images_per_s"):
        value = metrics.get(key)
        if value is None:
            continue
        if not is_finite_number(value) or value < 0:
            raise Damaged(f"{key} is {value!r}, not a non-negative number")
    return metrics


def _check_history(path: Path, epochs: int) -> list[dict]:
    try:
        lines = [line for line in path.read_text().splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as err:
        raise Damaged(str(err)) from err
    history = []
    for line in lines:
        try:
            record = json.loads(line, parse_constant=_no_constant)
        except ValueError as err:
            raise Damaged(f"a line is not JSON ({err})") from err
        if not isinstance(record, dict) or any(not is_finite_number(record.get(k)) for k in HISTORY_KEYS):
            raise Damaged(f"a line lacks a finite {', '.join(HISTORY_KEYS)}")
        history.append(record)
    if [h["epoch"] for h in history] != list(range(1, epochs + 1)):  # cut at a line end still parses
        raise Damaged(f"holds {len(history)} of the {epochs} epochs")
    return history


def _progress(folder: Path) -> dict:
    try:
        progress = json.loads((folder / PROGRESS).read_text())
        return progress if isinstance(progress, dict) and {"epoch", "epochs"} <= set(progress) else {}
    except (OSError, ValueError, UnicodeDecodeError):
        return {}


def _is_fraction(value) -> bool:
    return is_finite_number(value) and 0 <= value <= 1
