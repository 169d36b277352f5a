"""One run: one model, one configuration, one seed; packed tensors in, metrics out.

Never loses work: a checkpoint after every epoch (temp file + rename, SHA-256 checked) that a
restart of the same run resumes from; every epoch's randomness is seeded from (seed, epoch), so a
resumed run ends with the metrics of an uninterrupted one. metrics.json is written last: its presence
means the run finished.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
import sys
import zipfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from tqdm import tqdm

from msga import provenance
from msga.keys import config_hash, run_key
from msga.recipe import held_out, scaled_lr
from msga.data.augment import AugmentSpec, augment_batch, soft_cross_entropy
from msga.data.loader import DeviceData, channel_stats
from msga.errors import Failure
from msga.folderlock import exclusive
from msga.io import atomic_output, write_json_atomic, write_text_atomic
from msga.metrics import HEADLINE
from msga.models import build_model
from msga.models.cost import count_params, forward_flops
from msga.runs import PROGRESS

log = logging.getLogger("msga.train")

CHECKPOINT = "checkpoint.pt"
CHECKPOINT_MAGIC = b"msga checkpoint 1\n"  # what marks a checkpoint as this project's, and so safe to replace
TRAINING_LOCK = ".training.lock"
DIGEST_BYTES = 32  # the SHA-256 trailer of a checkpoint file


class NonFiniteLoss(Failure):
    pass


class ForeignFile(Failure):
    """A file this project would write is there, but another program wrote it: it is left alone."""


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


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def setup_backend(device: torch.device, deterministic: bool) -> None:
    """Fast kernels by default; with `deterministic`, repeatable ones (see docs/RELIABILITY.md)."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = not deterministic  # autotuning may pick other kernels per run
        torch.backends.cudnn.deterministic = deterministic
    if deterministic:
        # cuBLAS GEMMs are repeatable only with a fixed workspace, and PyTorch refuses deterministic
        # mode without one; it must be set before the first cuBLAS call of the process.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=False)


AUGMENT_STREAM = 7919  # offset of the stronger augmentation's seed from the epoch's


def epoch_seed(seed: int, epoch: int) -> int:
    return seed * 100_003 + epoch  # distinct per (seed, epoch); a resume replays the same stream


def lr_at(step: int, total: int, warmup: int, peak: float, floor: float) -> float:
    """Linear warmup to the peak, then cosine down to the floor."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return floor + 0.5 * (peak - floor) * (1 + math.cos(math.pi * min(1.0, progress)))


def step_lr_at(step: int, warmup: int, peak: float, milestone_steps: list[int], gamma: float) -> float:
    """Linear warmup to the peak, then the peak times gamma for each milestone passed."""
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * gamma ** sum(step >= m for m in milestone_steps)


def schedule(train: dict, steps_per_epoch: int, peak: float):
    """step -> learning rate, for the recipe's schedule (milestones are in epochs)."""
    total, warmup = steps_per_epoch * train["epochs"], round(train["warmup_epochs"] * steps_per_epoch)
    if train["schedule"] == "step":
        milestones = [round(m * steps_per_epoch) for m in train["milestones"]]
        return lambda step: step_lr_at(step, warmup, peak, milestones, train["gamma"])
    return lambda step: lr_at(step, total, warmup, peak, train["min_lr"])


VALIDATION_SEED = 20_240_601  # one held-out split for every run, whatever its seed


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


def make_optimizer(model: nn.Module, train: dict, lr: float) -> torch.optim.Optimizer:
    """The recipe's optimizer. Weight decay skips norms, biases and embeddings (1-D or position
    tensors), standard since DeiT; with weight_decay_all it applies to every parameter, as
    classic SGD recipes do (torch.optim.SGD(model.parameters(), weight_decay=...))."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        exempt = p.ndim <= 1 or "pos_embed" in name or "cls_token" in name
        (no_decay if exempt and not train.get("weight_decay_all", False) else decay).append(p)
    groups = [{"params": decay, "weight_decay": train["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}]
    if train["optimizer"] == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=train["nesterov"])
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999))


@torch.no_grad()
def predict(model: nn.Module, data: DeviceData, batch_size: int) -> torch.Tensor:
    """Softmax probabilities of the whole split, float32 on the device. (N, C)

    In float32 throughout, not under bf16 autocast: bf16 logits keep 8 bits of mantissa, which
    ties the top classes of some images and coarsens the ranking the AUC is computed from.
    """
    model.eval()
    out = []
    for x, _ in data.eval_batches(batch_size):
        x = x.contiguous(memory_format=torch.channels_last)
        out.append(model(x).float().softmax(dim=-1))
    model.train()
    return torch.cat(out)


def save_checkpoint(path: Path, state: dict) -> None:
    """A magic line, torch.save's bytes, then their SHA-256, written atomically.

    torch.load does not notice a flipped byte inside a tensor (it would resume from silently
    damaged weights); the digest makes any damage, truncation included, detectable at load. The
    magic line tells this project's checkpoints from a file of the same name that is not one.
    """
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getbuffer()
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(CHECKPOINT_MAGIC)
            f.write(payload)
            f.write(hashlib.sha256(payload).digest())


def _is_json_object_with(path: Path, keys: set) -> bool:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(value, dict) and keys <= value.keys()


def _is_history(path: Path) -> bool:
    try:
        lines = path.read_text().splitlines()
        return bool(lines) and all(isinstance(r := json.loads(line), dict) and "epoch" in r for line in lines)
    except (OSError, ValueError):
        return False


def _is_predictions(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:  # names only: nothing in it is loaded
            return set(archive.namelist()) == {"probs.npy", "labels.npy"}
    except (OSError, zipfile.BadZipFile):
        return False


def _is_checkpoint(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(len(CHECKPOINT_MAGIC)) == CHECKPOINT_MAGIC


def _is_training_lock(path: Path) -> bool:
    head = path.read_bytes()[:8]
    return head == b"" or head.startswith(b"pid ")  # what `exclusive` writes into it


# Every file a training job replaces or deletes in its folder, with what marks it as this project's.
OWN_FILES = {
    CHECKPOINT: _is_checkpoint,
    PROGRESS: lambda p: _is_json_object_with(p, {"epoch", "epochs", "seconds", "time"}),
    "history.jsonl": _is_history,
    "predictions.npz": _is_predictions,
    "metrics.json": lambda p: _is_json_object_with(p, {"run", "config_hash", "config"}),
    TRAINING_LOCK: _is_training_lock,
}


def check_ours(out_dir: Path, run: str) -> None:
    """Refuse to train into a folder where a file named like one of ours was not written by this
    project: it would be replaced or deleted. Nothing is written before this check."""
    for name, is_ours in OWN_FILES.items():
        path = Path(out_dir) / name
        try:
            foreign = path.exists() and not (path.is_file() and is_ours(path))
        except OSError:  # unreadable (permissions): it cannot be told ours, so it is not replaced
            foreign = True
        if foreign:
            raise ForeignFile(f"{run}: {path} is not a file this project wrote, so it was left as it is and nothing "
                              "was trained. Move it elsewhere (or train into another folder), then run again.")


def load_checkpoint(path: Path, expected_hash: str, run: str, archive_md5: str | None = None) -> dict | None:
    """The checkpoint of this very configuration and data, or None (absent, stale or unreadable)."""
    if not path.exists():
        return None
    try:
        blob = memoryview(path.read_bytes())[len(CHECKPOINT_MAGIC):]
        payload, digest = blob[:-DIGEST_BYTES], blob[-DIGEST_BYTES:]
        if len(blob) <= DIGEST_BYTES or hashlib.sha256(payload).digest() != digest:
            raise ValueError("its SHA-256 does not match: the file is truncated or corrupted")
        state = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as err:  # truncated or corrupted: start over rather than resume from garbage
        log.warning("%s: checkpoint %s is unreadable (%s); starting from scratch", run, path, err)
        return None
    if not isinstance(state, dict) or state.get("config_hash") != expected_hash:
        log.warning("%s: checkpoint %s belongs to another configuration; starting from scratch", run, path)
        return None
    if archive_md5 is not None and state.get("archive_md5") != archive_md5:
        log.warning("%s: checkpoint %s was trained on other data (archive md5 %s, now %s); starting from scratch",
                    run, path, state.get("archive_md5"), archive_md5)
        return None
    return state


def train_run(config: dict, data: dict, out_dir: str | Path, device: torch.device, data_path: str = "the data") -> dict:
    """Train and evaluate one run; writes history.jsonl, predictions.npz, metrics.json into out_dir.
    One process at a time trains a run folder."""
    check_data(config, data, data_path)  # before anything is written
    check_ours(Path(out_dir), config["run"])
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    with exclusive(Path(out_dir) / TRAINING_LOCK, f"training {config['run']} in {out_dir}"):
        return _train_run(config, data, out_dir, device, data_path)


def _train_run(config: dict, data: dict, out_dir: str | Path, device: torch.device, data_path: str) -> dict:
    started = time.perf_counter()
    run = config["run"]
    archive_md5 = data["dataset"]["archive_md5"]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    train, seed, noise = config["train"], config["seed"], config["noise"]
    chash = config_hash(config)
    setup_backend(device, train["deterministic"])
    cuda = device.type == "cuda"

    torch.manual_seed(seed)
    arch = {k: v for k, v in config["model"].items() if k != "name"}
    model = build_model(config["model"]["name"], num_classes=len(data["classes"]), **arch)
    n_params, flops = count_params(model), forward_flops(model)
    model = model.to(device, memory_format=torch.channels_last)

    fit, held_out = (data["train_images"], data["train_labels"]), (data["test_images"], data["test_labels"])
    if train["validation"]:
        fit, held_out = split_validation(*fit)
    mean, std = channel_stats(fit[0])
    store = torch.float16 if cuda else torch.float32  # fp16 holds normalized uint8 pixels exactly enough
    train_set = DeviceData(*fit, mean, std, device, store)
    test_set = DeviceData(*held_out, mean, std, device, store)
    test_set.fix_noise(noise["test_sigma"], seed=epoch_seed(seed, 10**6))  # one fixed draw of test noise per run

    batch = train["batch_size"]
    if batch > train_set.n:
        raise ValueError(f"{run}: batch_size {batch} exceeds the {train_set.n} training images")
    steps_per_epoch = train_set.n // batch
    spec = AugmentSpec.from_params(train["augment"])
    num_classes = len(data["classes"])
    peak = scaled_lr(train)
    lr_of = schedule(train, steps_per_epoch, peak)
    optimizer = make_optimizer(model, train, peak)

    history: list[dict] = []
    start_epoch = 0
    ckpt_path = out_dir / CHECKPOINT
    state = load_checkpoint(ckpt_path, chash, run, archive_md5)
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        history, start_epoch = state["history"], state["epoch"]
        log.info("%s: resuming after epoch %d from %s", run, start_epoch, ckpt_path)

    step_fn = torch.compile(model) if (train["compile"] and cuda) else model
    startup, eval_seconds = None, 0.0
    show_bar = sys.stderr.isatty()
    for epoch in range(start_epoch, train["epochs"]):
        torch.manual_seed(epoch_seed(seed, epoch))  # drop path and any other global randomness
        gen = torch.Generator(device=device).manual_seed(epoch_seed(seed, epoch))
        # stronger augmentation draws from a stream of its own: switching it on or off leaves the
        # data order, crops, flips and noise of every epoch as they were
        augment_gen = torch.Generator(device=device).manual_seed(epoch_seed(seed, epoch) + AUGMENT_STREAM)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        bad_step = torch.full((), -1, device=device, dtype=torch.long)
        t0 = time.perf_counter()
        batches = train_set.train_batches(batch, gen, spec.crop_flip, noise["train_sigma"])
        bar = tqdm(batches, total=steps_per_epoch, desc=f"{run} epoch {epoch + 1}", disable=not show_bar, leave=False)
        for i, (x, y) in enumerate(bar):
            if startup is None:  # what a job pays before it learns anything: imports, data, model, compile
                startup = provenance.seconds_since_process_start()
                log.info("%s: first step %.1f s after the process started", run, startup)
            step = epoch * steps_per_epoch + i
            lr = lr_of(step)
            for group in optimizer.param_groups:
                group["lr"] = lr
            x, targets = augment_batch(x, y, spec, train_set.mean, train_set.std, num_classes,
                                       train["label_smoothing"], augment_gen)  # (B, C, H, W), (B, num_classes)
            x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
                logits = step_fn(x)
                loss = soft_cross_entropy(logits.float(), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if train["grad_clip"] > 0:
                nn.utils.clip_grad_norm_(model.parameters(), train["grad_clip"])
            optimizer.step()
            # accumulate on the device: no host sync inside the loop
            detached = loss.detach()
            loss_sum += detached
            correct += (logits.detach().argmax(dim=-1) == y).sum()
            bad_step = torch.where((bad_step < 0) & ~torch.isfinite(detached), torch.full_like(bad_step, i), bad_step)
        if cuda:
            torch.cuda.synchronize(device)
        train_seconds = time.perf_counter() - t0
        if int(bad_step) >= 0:
            raise NonFiniteLoss(
                f"{run}: non-finite training loss at epoch {epoch + 1}, step {int(bad_step) + 1} of "
                f"{steps_per_epoch} (lr {peak:g} peak); lower train.lr or check the data. No metrics were written."
            )
        evaluated = time.perf_counter()
        probs = predict(step_fn, test_set, train["eval_batch_size"])
        if cuda:
            torch.cuda.synchronize(device)
        eval_seconds += time.perf_counter() - evaluated
        test_acc = float((probs.argmax(dim=-1) == test_set.labels).float().mean())
        record = {
            "epoch": epoch + 1,
            "train_loss": float(loss_sum) / steps_per_epoch,
            "train_acc": float(correct) / (steps_per_epoch * batch),
            "test_acc": test_acc,
            "lr": lr,
            "seconds": train_seconds,
            "images_per_s": steps_per_epoch * batch / train_seconds,
        }
        history.append(record)
        save_checkpoint(ckpt_path, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                    "epoch": epoch + 1, "history": history, "config_hash": chash,
                                    "archive_md5": archive_md5})
        write_json_atomic(out_dir / PROGRESS, {"epoch": epoch + 1, "epochs": train["epochs"],
                                               "seconds": sum(r["seconds"] for r in history), "time": time.time()})
        log.info("%s epoch %d/%d loss %.4f train_acc %.4f test_acc %.4f lr %.2e %.1fs %.0f img/s",
                 run, epoch + 1, train["epochs"], record["train_loss"], record["train_acc"], test_acc,
                 lr, train_seconds, record["images_per_s"])

    if start_epoch == train["epochs"]:  # resumed after the last epoch: the loop made no predictions
        probs = predict(step_fn, test_set, train["eval_batch_size"])
    from msga.evaluate import compute_metrics  # torchmetrics: imported once training is done

    metrics = compute_metrics(probs, test_set.labels)
    labels = test_set.labels.cpu().numpy()
    with atomic_output(out_dir / "predictions.npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, probs=probs.cpu().numpy().astype(np.float32), labels=labels)
    write_text_atomic(out_dir / "history.jsonl", "".join(json.dumps(r) + "\n" for r in history))
    train_time = sum(r["seconds"] for r in history)
    result = {
        "run": run,
        **{k: metrics[k] for k in (*HEADLINE, "top5")},
        "per_class_recall": metrics["per_class_recall"],
        "confusion_matrix": metrics["confusion_matrix"],
        "config": config,
        "config_hash": chash,
        "key": run_key(config),
        "data": dict(data["dataset"]),
        "evaluated_on": f"validation split ({test_set.n} of the training images)" if train["validation"] else "test set",
        "params": n_params,
        "flops_per_image": flops,
        "train_seconds": train_time,
        "train_images_per_s": sum(r["images_per_s"] * r["seconds"] for r in history) / max(train_time, 1e-9),
        "wall_seconds": time.perf_counter() - started,
        "startup_seconds": startup,  # process start to the first step (None when resumed after the last epoch)
        "eval_seconds": eval_seconds,  # evaluations of the test set, one per epoch
        "resumed_from_epoch": start_epoch,
        "device": provenance.device_name(device),
        "versions": provenance.versions(),
        "git_commit": provenance.git_commit(),
        "classes": list(data["classes"]),
    }
    write_json_atomic(out_dir / "metrics.json", result)  # last: its presence means the run finished
    ckpt_path.unlink(missing_ok=True)
    (out_dir / PROGRESS).unlink(missing_ok=True)
    return result
