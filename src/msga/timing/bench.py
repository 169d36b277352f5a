"""Training throughput: the device-resident data path vs a conventional DataLoader loop.

Same model, batch, optimizer and precision; the two paths alternate in one process over several
timed windows after a warm-up, and the medians are compared. On a GPU, model FLOPs utilisation
(training FLOPs ~ 3 x forward FLOPs) is reported against the GPU's dense bf16 peak.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, replace
from itertools import cycle
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from msga.data.format import split_sizes
from msga.data.loader import DeviceData, channel_stats
from msga.grid.resolve import build_grid, resolve_run
from msga.grid.runs import Run
from msga.infra import provenance
from msga.models import build_model, list_models
from msga.models.cost import forward_flops
from msga.timing.projection import needed, project
from msga.train.device import pick_device, setup_backend
from msga.train.evaluate import predict
from msga.train.schedule import make_optimizer

# dense bf16 tensor-core peaks (FLOP/s), from the vendors' datasheets (SXM parts)
PEAK_BF16 = {"H100": 989.4e12, "H200": 989.4e12, "A100": 312e12, "L40S": 362e12}


@dataclass(frozen=True)
class Settings:
    """What `msga bench` measures, and how long."""

    models: list[str] | None = None  # the models to compare the two data paths on (None: all; []: none)
    data: str | None = None  # a packed data file; None: a synthetic set of `images` images
    images: int = 10_000
    batch_size: int | None = None  # None: train.batch_size of params
    windows: int = 5  # timed windows per path
    steps: int = 20  # optimizer steps per timed window
    warmup: int = 5  # untimed steps before timing
    workers: int | None = None  # DataLoader workers; None: the CPU count, at most 8
    compile: bool = False  # also time torch.compile (CUDA)
    device: str = "auto"
    project: bool = False  # also project the grid's wall time on this device


def peak_flops(device: torch.device) -> float | None:
    """The GPU's dense bf16 peak (PEAK_BF16), None on a CPU or an unlisted GPU."""
    if device.type != "cuda":
        return None
    return next((v for k, v in PEAK_BF16.items() if k in torch.cuda.get_device_name(device)), None)


class ConventionalCIFAR(torch.utils.data.Dataset):
    """What a typical CIFAR script does: a PIL image per sample, transformed on the CPU."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, mean, std):
        from torchvision import transforms

        self.images = images.permute(0, 2, 3, 1).numpy()  # (N, H, W, C): what PIL takes
        self.labels = labels.numpy()
        self.transform = transforms.Compose([
            transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
            transforms.ToTensor(), transforms.Normalize(mean.tolist(), std.tolist()),
        ])

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def _data(settings: Settings) -> tuple[torch.Tensor, torch.Tensor]:
    if settings.data:
        from msga.data.cifar import load_packed

        packed = load_packed(settings.data)
        return packed["train_images"], packed["train_labels"]
    from msga.data.synthetic import render

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 100, size=settings.images)
    return torch.from_numpy(render(labels, rng)), torch.from_numpy(labels)


def _timer(device: torch.device):
    """Seconds of a block of GPU work (CUDA events) or wall time on the CPU."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        return (lambda: start.record()), (lambda: (end.record(), end.synchronize(), start.elapsed_time(end) / 1000)[-1])
    box = {}
    return (lambda: box.__setitem__("t", time.perf_counter())), (lambda: time.perf_counter() - box["t"])


def bench_model(name: str, sizes: dict, images, labels, batch: int, settings: Settings, device: torch.device) -> dict:
    cuda = device.type == "cuda"
    mean, std = channel_stats(images)
    resident = DeviceData(images, labels, mean, std, device, torch.float16 if cuda else torch.float32)
    loader = torch.utils.data.DataLoader(
        ConventionalCIFAR(images, labels, mean, std), batch_size=batch, shuffle=True, drop_last=True,
        num_workers=settings.workers, pin_memory=cuda, persistent_workers=settings.workers > 0,
    )
    conventional = cycle(loader)
    gen = torch.Generator(device=device).manual_seed(0)

    def resident_batches():
        while True:
            yield from resident.train_batches(batch, gen, True, 0.0)

    paths = {"resident": resident_batches(), "dataloader": conventional}
    variants = [("eager", False)] + ([("compiled", True)] if settings.compile and cuda else [])
    model = build_model(name, **sizes)
    flops = forward_flops(model)
    result = {"model": name, "batch_size": batch, "forward_flops": flops}
    for label, compiled in variants:
        torch.manual_seed(0)
        model = build_model(name, **sizes).to(device, memory_format=torch.channels_last)
        step_model = torch.compile(model) if compiled else model
        opt = make_optimizer(model, {"weight_decay": 0.05, "optimizer": "adamw"}, 1e-3)

        def step(x, y):
            x = x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            y = y.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
                loss = F.cross_entropy(step_model(x).float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        for path in paths.values():  # warm-up: compile, cudnn autotune, worker start
            for _ in range(settings.warmup):
                step(*next(path))
        rates = {p: [] for p in paths}
        start, stop = _timer(device)
        for _ in range(settings.windows):  # alternate the paths so drifts hit both alike
            for p, it in paths.items():
                start()
                for _ in range(settings.steps):
                    step(*next(it))
                rates[p].append(settings.steps * batch / stop())
        for p, r in rates.items():
            result[f"{label}_{p}_images_per_s"] = statistics.median(r)
    result["ratio"] = result["eager_resident_images_per_s"] / result["eager_dataloader_images_per_s"]
    best = max(v for k, v in result.items() if k.endswith("resident_images_per_s"))
    result["train_tflops"] = 3 * flops * best / 1e12
    peak = peak_flops(device)
    result["mfu"] = 3 * flops * best / peak if peak else None
    return result


def resident_images_per_s(name: str, sizes: dict, images, labels, batch: int, settings: Settings,
                          device: torch.device) -> float:
    """Training speed of the device-resident path alone (compiled when --compile on CUDA), for the projection."""
    cuda = device.type == "cuda"
    mean, std = channel_stats(images)
    resident = DeviceData(images, labels, mean, std, device, torch.float16 if cuda else torch.float32)
    gen = torch.Generator(device=device).manual_seed(0)
    torch.manual_seed(0)
    model = build_model(name, **sizes).to(device, memory_format=torch.channels_last)
    step_model = torch.compile(model) if settings.compile and cuda else model
    opt = make_optimizer(model, {"weight_decay": 0.05, "optimizer": "adamw"}, 1e-3)

    def batches():
        while True:
            yield from resident.train_batches(batch, gen, True, 0.0)

    it = batches()

    def step():
        x, y = next(it)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            loss = F.cross_entropy(step_model(x.contiguous(memory_format=torch.channels_last)).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(settings.warmup):
        step()
    start, stop = _timer(device)
    rates = []
    for _ in range(settings.windows):
        start()
        for _ in range(settings.steps):
            step()
        rates.append(settings.steps * batch / stop())
    return statistics.median(rates)


@torch.no_grad()
def eval_images_per_s(name: str, sizes: dict, images, labels, batch: int, device: torch.device) -> float:
    """Evaluation speed (float32 forward, as training evaluates), for the projection."""
    mean, std = channel_stats(images)
    data = DeviceData(images, labels, mean, std, device, torch.float16 if device.type == "cuda" else torch.float32)
    model = build_model(name, **sizes).to(device, memory_format=torch.channels_last)
    predict(model, data, batch)  # warm-up
    start, stop = _timer(device)
    start()
    predict(model, data, batch)
    return data.n / stop()


def measured_startup(params: dict, images, labels, device: torch.device) -> float:
    """Seconds from process start to the first step of a real `msga train` job (msga, one epoch):
    imports, data load, model build, compile when the recipe asks for it."""
    import json
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cut = len(images) * 9 // 10
        torch.save({"train_images": images[:cut], "train_labels": labels[:cut], "test_images": images[cut:],
                    "test_labels": labels[cut:], "classes": [f"c{i}" for i in range(100)],
                    "dataset": {"id": "bench", "archive_md5": "0" * 32}}, tmp / "data.pt")
        config = resolve_run(params, Run("msga", "base", 0), {"train.epochs": 1})
        config["data"] = {"id": "bench"}
        (tmp / "config.json").write_text(json.dumps(config))
        subprocess.run([sys.executable, "-m", "msga.cli", "train", "--config", str(tmp / "config.json"), "--data",
                        str(tmp / "data.pt"), "--out", str(tmp / "run"), "--device", str(device)],
                       check=True, capture_output=True)
        return json.loads((tmp / "run" / "metrics.json").read_text())["startup_seconds"]


def project_grid(params: dict, images, labels, settings: Settings, device: torch.device, show: Callable) -> dict:
    """The default grid's wall time on this device, from speeds and a start-up measured here."""
    grid = build_grid(params)
    pairs = sorted(needed(grid))
    train_ips = {}
    for model, batch in pairs:
        train_ips[(model, batch)] = resident_images_per_s(model, params["models"][model], images, labels, batch=batch,
                                                     settings=settings, device=device)
        show(f"  {model:<16} batch {batch:>4}: {train_ips[(model, batch)]:>9.0f} images/s")
    eval_ips = {m: eval_images_per_s(m, params["models"][m], images, labels, params["train"]["eval_batch_size"], device)
                for m in sorted({m for m, _ in pairs})}
    startup = measured_startup(params, images, labels, device)
    sizes = split_sizes(params["data"])
    out = project(grid, train_ips, eval_ips, startup, sizes["train"], sizes["test"])
    return {**out, "startup_seconds": startup,
            "train_images_per_s": {f"{m}@{b}": v for (m, b), v in train_ips.items()},
            "eval_images_per_s": eval_ips}


def run(params: dict, settings: Settings, show: Callable[[str], None] = lambda line: None) -> dict:
    """Measure, showing each line of the table as it is measured; returns every figure, with the
    device, versions and date."""
    device = pick_device(settings.device)
    setup_backend(device, deterministic=False)
    if settings.workers is None:
        settings = replace(settings, workers=min(8, torch.multiprocessing.cpu_count()))
    batch = settings.batch_size or params["train"]["batch_size"]
    images, labels = _data(settings)
    names = settings.models if settings.models is not None else list_models()
    cuda = device.type == "cuda"
    show(f"device: {provenance.device_name(device)}; torch {torch.__version__}; {len(images)} images; batch {batch}; "
         f"{settings.windows} windows x {settings.steps} steps after {settings.warmup} warm-up steps; DataLoader "
         f"workers {settings.workers}; {'bf16 autocast' if cuda else 'fp32'}")
    header = f"{'model':<12} {'resident img/s':>15} {'DataLoader img/s':>17} {'ratio':>6}"
    header += f" {'compiled img/s':>15}" if settings.compile and cuda else ""
    show(header + f" {'TFLOP/s':>8} {'MFU':>6}")
    results = []
    for name in names:
        r = bench_model(name, params["models"][name], images, labels, batch=batch, settings=settings, device=device)
        results.append(r)
        line = (f"{name:<12} {r['eager_resident_images_per_s']:>15.0f} {r['eager_dataloader_images_per_s']:>17.0f} "
                f"{r['ratio']:>6.2f}")
        if "compiled_resident_images_per_s" in r:
            line += f" {r['compiled_resident_images_per_s']:>15.0f}"
        mfu = "" if r["mfu"] is None else f"{100 * r['mfu']:.1f}%"
        show(line + f" {r['train_tflops']:>8.2f} {mfu:>6}")
    report = {"device": provenance.device_name(device), "versions": provenance.versions(),
              "date": time.strftime("%Y-%m-%d"), "precision": "bf16 autocast" if cuda else "fp32",
              "peak_bf16_flops": peak_flops(device), "results": results}
    if settings.project:
        show("projection of the grid (params) on this device:")
        report.update(project_grid(params, images, labels, settings, device, show))
        show(f"startup {report['startup_seconds']:.1f} s per job; {report['runs']} runs: "
             f"{report['projected_minutes']:.0f} minutes one at a time")
    return report
