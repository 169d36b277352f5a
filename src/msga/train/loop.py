"""One run: one model, one configuration, one seed; packed tensors in, metrics out.

Three steps: `setup` builds what the run's epochs share (or restores it from the run's checkpoint),
msga.train.epoch trains each epoch and checkpoints it, `finish` evaluates and writes the run's
files. Never loses work: a restart of the same run resumes from its last checkpoint and ends with
the metrics of an uninterrupted run. metrics.json is written last: its presence means the run
finished.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from msga.data.augment import AugmentSpec
from msga.data.loader import DeviceData, channel_stats
from msga.grid.keys import config_hash
from msga.grid.metrics import SCORES
from msga.grid.paths import CHECKPOINT, HISTORY, METRICS, PREDICTIONS, PROGRESS, TRAINING_LOCK
from msga.grid.recipe import held_out, scaled_lr
from msga.infra import provenance
from msga.infra.atomic import atomic_output, write_json_atomic, write_text_atomic
from msga.infra.errors import Failure
from msga.infra.folderlock import exclusive
from msga.models import build_model
from msga.train.checkpoint import check_ours, load_checkpoint
from msga.train.costs import model_costs
from msga.train.device import setup_backend
from msga.train.epoch import Training, epoch_seed, run_epoch
from msga.train.evaluate import compute_metrics, predict
from msga.train.schedule import make_optimizer, schedule

log = logging.getLogger("msga.train")

VALIDATION_SEED = 20_240_601  # one held-out split for every run, whatever its seed


class WrongData(Failure):
    """The packed data is not the data the run's configuration names."""


def check_data(config: dict, data: dict, path: str) -> None:
    """The run trains only on the data its configuration names: same dataset id, and for CIFAR-100
    the archive md5 it was packed from."""
    want, have = config["data"], data["dataset"]
    if have["id"] != want["id"] or ("md5" in want and have["archive_md5"] != want["md5"]):
        raise WrongData(
            f"{config['run']}: {path} holds dataset {have['id']} (archive md5 {have['archive_md5']}), but the run's "
            f"configuration names {want['id']}{' (md5 ' + want['md5'] + ')' if 'md5' in want else ''}. Nothing "
            "was trained. Build that data with `snakemake data` and pass its packed file."
        )


def split_validation(images: torch.Tensor, labels: torch.Tensor) -> tuple[tuple, tuple]:
    """(train images, labels), (validation images, labels): a tenth of each class held out, the
    same tenth for every run, so learning rates are chosen without looking at the test set."""
    g = torch.Generator().manual_seed(VALIDATION_SEED)
    held = torch.zeros(len(labels), dtype=torch.bool)
    for c in labels.unique():
        members = (labels == c).nonzero().flatten()
        chosen = members[torch.randperm(len(members), generator=g)[: held_out(len(members))]]
        held[chosen] = True
    return (images[~held], labels[~held]), (images[held], labels[held])


def train_run(config: dict, data: dict, out_dir: str | Path, device: torch.device, data_path: str = "the data",
              gpu: str | None = None) -> dict:
    """Train and evaluate one run; writes history.jsonl, predictions.npz, metrics.json into out_dir,
    whose name is the run's key (the DAG names the folder). One process at a time trains a run folder.
    `gpu`: the id of the GPU the job was given (msga.infra.gpus), recorded with its start and end."""
    out_dir = Path(out_dir)
    check_data(config, data, data_path)  # before anything is written
    check_ours(out_dir, config["run"])
    out_dir.mkdir(parents=True, exist_ok=True)
    with exclusive(out_dir / TRAINING_LOCK, f"training {config['run']} in {out_dir}"):
        started = time.perf_counter()
        placement = {"gpu": gpu, "started_at": _now()}
        training = setup(config, data, out_dir, device)
        probs = None
        for epoch in range(training.start_epoch, config["train"]["epochs"]):
            probs = run_epoch(training, epoch)
        if probs is None:  # resumed after the last epoch: no epoch made predictions
            probs = predict(training.step_fn, training.test_set, config["train"]["eval_batch_size"])
        return finish(training, probs, data, started, placement)


def setup(config: dict, data: dict, out_dir: Path, device: torch.device) -> Training:
    """The model, optimizer, schedule and device-resident data of a run, from its checkpoint where
    one of this configuration and data is there."""
    train, seed = config["train"], config["seed"]
    setup_backend(device, train["deterministic"])
    cuda = device.type == "cuda"
    torch.manual_seed(seed)
    num_classes = len(data["classes"])
    arch = {k: v for k, v in config["model"].items() if k != "name"}
    model = build_model(config["model"]["name"], num_classes=num_classes, **arch)
    n_params, flops = model_costs(config["model"]["name"], arch, num_classes, model=model)
    model = model.to(device, memory_format=torch.channels_last)

    fit, evaluated = (data["train_images"], data["train_labels"]), (data["test_images"], data["test_labels"])
    if train["validation"]:
        fit, evaluated = split_validation(*fit)
    mean, std = channel_stats(fit[0])
    store = torch.float16 if cuda else torch.float32  # fp16 holds normalized uint8 pixels exactly enough
    train_set = DeviceData(*fit, mean, std, device, store)
    test_set = DeviceData(*evaluated, mean, std, device, store)
    test_set.fix_noise(config["noise"]["test_sigma"], seed=epoch_seed(seed, 10**6))  # one fixed draw of test noise per run
    if train["batch_size"] > train_set.n:
        raise ValueError(f"{config['run']}: batch_size {train['batch_size']} exceeds the {train_set.n} training images")
    steps_per_epoch = train_set.n // train["batch_size"]
    peak = scaled_lr(train)
    optimizer = make_optimizer(model, train, peak)
    training = Training(
        config=config, out_dir=out_dir, device=device, model=model, step_fn=model, optimizer=optimizer,
        lr_of=schedule(train, steps_per_epoch, peak), peak_lr=peak, train_set=train_set, test_set=test_set,
        augment=AugmentSpec.from_params(train["augment"]), num_classes=num_classes, steps_per_epoch=steps_per_epoch,
        config_hash=config_hash(config), archive_md5=data["dataset"]["archive_md5"], n_params=n_params, flops=flops)
    state = load_checkpoint(out_dir / CHECKPOINT, training.config_hash, config["run"], training.archive_md5)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        training.history, training.start_epoch = state["history"], state["epoch"]
        log.info("%s: resuming after epoch %d from %s", config["run"], training.start_epoch, out_dir / CHECKPOINT)
    training.step_fn = torch.compile(model) if (train["compile"] and cuda) else model
    return training


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def finish(t: Training, probs: torch.Tensor, data: dict, started: float, placement: dict) -> dict:
    """The run's metrics from its last evaluation; predictions, history and metrics.json written (in
    that order), the checkpoint and progress mark removed."""
    metrics = compute_metrics(probs, t.test_set.labels)
    with atomic_output(t.out_dir / PREDICTIONS) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, probs=probs.cpu().numpy().astype(np.float32), labels=t.test_set.labels.cpu().numpy())
    write_text_atomic(t.out_dir / HISTORY, "".join(json.dumps(r) + "\n" for r in t.history))
    train_time = sum(r["seconds"] for r in t.history)
    validation = t.config["train"]["validation"]
    result = {
        "run": t.run,
        **{k: metrics[k] for k in SCORES},
        "per_class_recall": metrics["per_class_recall"],
        "confusion_matrix": metrics["confusion_matrix"],
        "config": t.config,
        "config_hash": t.config_hash,
        "key": t.out_dir.name,  # the DAG names a run's folder by its key
        "data": dict(data["dataset"]),
        "evaluated_on": f"validation split ({t.test_set.n} of the training images)" if validation else "test set",
        "params": t.n_params,
        "flops_per_image": t.flops,
        "train_seconds": train_time,
        "train_images_per_s": sum(r["images_per_s"] * r["seconds"] for r in t.history) / max(train_time, 1e-9),
        "wall_seconds": time.perf_counter() - started,
        "startup_seconds": t.startup,  # process start to the first step (None when resumed after the last epoch)
        "eval_seconds": t.eval_seconds,  # evaluations of the held-out images, one per epoch
        "resumed_from_epoch": t.start_epoch,
        "device": provenance.device_name(t.device),
        **placement,  # the GPU the job was given (None: none), and when it started
        "ended_at": _now(),
        "versions": provenance.versions(),
        "git_commit": provenance.git_commit(),
        "classes": list(data["classes"]),
    }
    write_json_atomic(t.out_dir / METRICS, result)  # last: its presence means the run finished
    (t.out_dir / CHECKPOINT).unlink(missing_ok=True)
    (t.out_dir / PROGRESS).unlink(missing_ok=True)
    return result
