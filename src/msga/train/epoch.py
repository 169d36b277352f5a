"""One epoch of a run: its training steps, then an evaluation of the held-out images, a record in
the history, a checkpoint and a progress mark. What the epochs of a run share is set up once
(msga.train.loop) and passed here as a `Training`.

Every epoch's randomness is seeded from (seed, epoch), so a run resumed from a checkpoint replays
the very stream an uninterrupted run draws.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn
from tqdm import tqdm

from msga.data.augment import AugmentSpec, augment_batch, soft_cross_entropy
from msga.data.loader import DeviceData
from msga.grid.paths import CHECKPOINT, PROGRESS
from msga.infra import provenance
from msga.infra.atomic import write_json_atomic
from msga.infra.errors import Failure
from msga.train.checkpoint import save_checkpoint
from msga.train.evaluate import predict

log = logging.getLogger("msga.train")

AUGMENT_STREAM = 7919  # offset of the stronger augmentation's seed from the epoch's


class NonFiniteLoss(Failure):
    pass


def epoch_seed(seed: int, epoch: int) -> int:
    return seed * 100_003 + epoch  # distinct per (seed, epoch); a resume replays the same stream


@dataclass
class Training:
    """What the epochs of one run share: set up once, or restored from the run's checkpoint."""

    config: dict  # the run's resolved configuration
    out_dir: Path
    device: torch.device
    model: nn.Module
    step_fn: nn.Module  # the model, compiled where the recipe asks for it
    optimizer: torch.optim.Optimizer
    lr_of: Callable[[int], float]  # step -> learning rate
    peak_lr: float
    train_set: DeviceData
    test_set: DeviceData
    augment: AugmentSpec
    num_classes: int
    steps_per_epoch: int
    config_hash: str  # what a checkpoint must belong to
    archive_md5: str  # ... and the data it must have trained on
    n_params: int
    flops: int  # forward FLOPs per image
    history: list[dict] = field(default_factory=list)
    start_epoch: int = 0  # epochs already done (restored from the checkpoint)
    startup: float | None = None  # process start to the first step: imports, data, model, compile
    eval_seconds: float = 0.0  # evaluations of the held-out images, one per epoch

    @property
    def run(self) -> str:
        return self.config["run"]

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"


def run_epoch(t: Training, epoch: int) -> torch.Tensor:
    """Train epoch `epoch` (from 0), evaluate, record, checkpoint; returns the held-out images'
    probabilities (N, C)."""
    loss_sum, correct, seconds, lr = _train_steps(t, epoch)
    evaluated = time.perf_counter()
    probs = predict(t.step_fn, t.test_set, t.config["train"]["eval_batch_size"])
    if t.cuda:
        torch.cuda.synchronize(t.device)
    t.eval_seconds += time.perf_counter() - evaluated
    batch, epochs = t.config["train"]["batch_size"], t.config["train"]["epochs"]
    record = {
        "epoch": epoch + 1,
        "train_loss": loss_sum / t.steps_per_epoch,
        "train_acc": correct / (t.steps_per_epoch * batch),
        "test_acc": float((probs.argmax(dim=-1) == t.test_set.labels).float().mean()),
        "lr": lr,
        "seconds": seconds,
        "images_per_s": t.steps_per_epoch * batch / seconds,
    }
    t.history.append(record)
    save_checkpoint(t.out_dir / CHECKPOINT, {"model": t.model.state_dict(), "optimizer": t.optimizer.state_dict(),
                                             "epoch": epoch + 1, "history": t.history,
                                             "config_hash": t.config_hash, "archive_md5": t.archive_md5})
    write_json_atomic(t.out_dir / PROGRESS, {"epoch": epoch + 1, "epochs": epochs,
                                             "seconds": sum(r["seconds"] for r in t.history), "time": time.time()})
    log.info("%s epoch %d/%d loss %.4f train_acc %.4f test_acc %.4f lr %.2e %.1fs %.0f img/s",
             t.run, epoch + 1, epochs, record["train_loss"], record["train_acc"], record["test_acc"],
             lr, seconds, record["images_per_s"])
    return probs


def _train_steps(t: Training, epoch: int) -> tuple[float, int, float, float]:
    """One pass over the training images: (summed loss, correct predictions, seconds, last lr)."""
    train, seed = t.config["train"], t.config["seed"]
    torch.manual_seed(epoch_seed(seed, epoch))  # drop path and any other global randomness
    gen = torch.Generator(device=t.device).manual_seed(epoch_seed(seed, epoch))
    # stronger augmentation draws from a stream of its own: switching it on or off leaves the
    # data order, crops, flips and noise of every epoch as they were
    augment_gen = torch.Generator(device=t.device).manual_seed(epoch_seed(seed, epoch) + AUGMENT_STREAM)
    loss_sum = torch.zeros((), device=t.device)
    correct = torch.zeros((), device=t.device, dtype=torch.long)
    bad_step = torch.full((), -1, device=t.device, dtype=torch.long)
    t0 = time.perf_counter()
    batches = t.train_set.train_batches(train["batch_size"], gen, t.augment.crop_flip, t.config["noise"]["train_sigma"])
    bar = tqdm(batches, total=t.steps_per_epoch, desc=f"{t.run} epoch {epoch + 1}", disable=not sys.stderr.isatty(),
               leave=False)
    lr = t.lr_of(epoch * t.steps_per_epoch)
    for i, (x, y) in enumerate(bar):
        if t.startup is None:
            t.startup = provenance.seconds_since_process_start()
            log.info("%s: first step %.1f s after the process started", t.run, t.startup)
        lr = t.lr_of(epoch * t.steps_per_epoch + i)
        for group in t.optimizer.param_groups:
            group["lr"] = lr
        x, targets = augment_batch(x, y, t.augment, mean=t.train_set.mean, std=t.train_set.std,
                                   num_classes=t.num_classes, label_smoothing=train["label_smoothing"],
                                   generator=augment_gen)  # (B, C, H, W), (B, num_classes)
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(t.device.type, dtype=torch.bfloat16, enabled=t.cuda):
            logits = t.step_fn(x)
            loss = soft_cross_entropy(logits.float(), targets)
        t.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if train["grad_clip"] > 0:
            nn.utils.clip_grad_norm_(t.model.parameters(), train["grad_clip"])
        t.optimizer.step()
        # accumulate on the device: no host sync inside the loop
        detached = loss.detach()
        loss_sum += detached
        correct += (logits.detach().argmax(dim=-1) == y).sum()
        bad_step = torch.where((bad_step < 0) & ~torch.isfinite(detached), torch.full_like(bad_step, i), bad_step)
    if t.cuda:
        torch.cuda.synchronize(t.device)
    seconds = time.perf_counter() - t0
    if int(bad_step) >= 0:
        raise NonFiniteLoss(
            f"{t.run}: non-finite training loss at epoch {epoch + 1}, step {int(bad_step) + 1} of "
            f"{t.steps_per_epoch} (lr {t.peak_lr:g} peak); lower train.lr or check the data. No metrics were written."
        )
    return float(loss_sum), int(correct), seconds, lr
