"""Training throughput: the device-resident data path vs a conventional DataLoader loop.

Same model, batch, optimizer and precision; the two paths alternate in one process over several
timed windows after a warm-up, and the medians are compared. On a GPU, model FLOPs utilisation
(training FLOPs ~ 3 x forward FLOPs) is reported against the GPU's dense bf16 peak.
"""

from __future__ import annotations

import statistics
import time
from itertools import cycle

import numpy as np
import torch
import torch.nn.functional as F

from msga.config import load_params
from msga.io import write_json_atomic
from msga.data.loader import DeviceData, channel_stats
from msga.models import build_model, list_models
from msga.models.cost import forward_flops
from msga.train import make_optimizer, pick_device, setup_backend

# dense bf16 tensor-core peaks (FLOP/s), from the vendors' datasheets (SXM parts)
PEAK_BF16 = {"H100": 989.4e12, "H200": 989.4e12, "A100": 312e12, "L40S": 362e12}


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


def _data(args) -> tuple[torch.Tensor, torch.Tensor]:
    if args.data:
        from msga.data.cifar import load_packed

        packed = load_packed(args.data)
        return packed["train_images"], packed["train_labels"]
    from msga.data.synthetic import render

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 100, size=args.images)
    return torch.from_numpy(render(labels, rng)), torch.from_numpy(labels)


def _timer(device: torch.device):
    """Seconds of a block of GPU work (CUDA events) or wall time on the CPU."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        return (lambda: start.record()), (lambda: (end.record(), end.synchronize(), start.elapsed_time(end) / 1000)[-1])
    box = {}
    return (lambda: box.__setitem__("t", time.perf_counter())), (lambda: time.perf_counter() - box["t"])


def bench_model(name: str, sizes: dict, images, labels, batch: int, args, device: torch.device) -> dict:
    cuda = device.type == "cuda"
    mean, std = channel_stats(images)
    resident = DeviceData(images, labels, mean, std, device, torch.float16 if cuda else torch.float32)
    loader = torch.utils.data.DataLoader(
        ConventionalCIFAR(images, labels, mean, std), batch_size=batch, shuffle=True, drop_last=True,
        num_workers=args.workers, pin_memory=cuda, persistent_workers=args.workers > 0,
    )
    conventional = cycle(loader)
    gen = torch.Generator(device=device).manual_seed(0)

    def resident_batches():
        while True:
            yield from resident.train_batches(batch, gen, True, 0.0)

    paths = {"resident": resident_batches(), "dataloader": conventional}
    variants = [("eager", False)] + ([("compiled", True)] if args.compile and cuda else [])
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
            for _ in range(args.warmup):
                step(*next(path))
        rates = {p: [] for p in paths}
        start, stop = _timer(device)
        for _ in range(args.windows):  # alternate the paths so drifts hit both alike
            for p, it in paths.items():
                start()
                for _ in range(args.steps):
                    step(*next(it))
                rates[p].append(args.steps * batch / stop())
        for p, r in rates.items():
            result[f"{label}_{p}_images_per_s"] = statistics.median(r)
    result["ratio"] = result["eager_resident_images_per_s"] / result["eager_dataloader_images_per_s"]
    best = max(v for k, v in result.items() if k.endswith("resident_images_per_s"))
    result["train_tflops"] = 3 * flops * best / 1e12
    peak = next((v for k, v in PEAK_BF16.items() if cuda and k in torch.cuda.get_device_name(device)), None)
    result["mfu"] = 3 * flops * best / peak if peak else None
    return result


def resident_images_per_s(name: str, sizes: dict, images, labels, batch: int, args, device: torch.device) -> float:
    """Training speed of the device-resident path alone (compiled when --compile on CUDA), for the projection."""
    cuda = device.type == "cuda"
    mean, std = channel_stats(images)
    resident = DeviceData(images, labels, mean, std, device, torch.float16 if cuda else torch.float32)
    gen = torch.Generator(device=device).manual_seed(0)
    torch.manual_seed(0)
    model = build_model(name, **sizes).to(device, memory_format=torch.channels_last)
    step_model = torch.compile(model) if args.compile and cuda else model
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

    for _ in range(args.warmup):
        step()
    start, stop = _timer(device)
    rates = []
    for _ in range(args.windows):
        start()
        for _ in range(args.steps):
            step()
        rates.append(args.steps * batch / stop())
    return statistics.median(rates)


@torch.no_grad()
def eval_images_per_s(name: str, sizes: dict, images, labels, batch: int, device: torch.device) -> float:
    """Evaluation speed (float32 forward, as training evaluates), for the projection."""
    from msga.train import predict

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

    from msga.config import resolve_run
    from msga.runs import Run

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


def project_grid(params: dict, images, labels, args, device: torch.device) -> dict:
    """The default grid's wall time on this device, from speeds and a start-up measured here."""
    from msga.config import CIFAR100_TRAIN_IMAGES, build_grid
    from msga.projection import needed, project

    grid = build_grid(params)
    pairs = sorted(needed(grid))
    train_ips = {}
    for model, batch in pairs:
        train_ips[(model, batch)] = resident_images_per_s(model, params["models"][model], images, labels, batch, args, device)
        print(f"  {model:<16} batch {batch:>4}: {train_ips[(model, batch)]:>9.0f} images/s", flush=True)
    eval_ips = {m: eval_images_per_s(m, params["models"][m], images, labels, params["train"]["eval_batch_size"], device)
                for m in sorted({m for m, _ in pairs})}
    startup = measured_startup(params, images, labels, device)
    data = params["data"]
    n_train, n_test = ((100 * data["synthetic"]["train_per_class"], 100 * data["synthetic"]["test_per_class"])
                       if data["source"] == "synthetic" else (CIFAR100_TRAIN_IMAGES, 10_000))
    out = project(grid, train_ips, eval_ips, startup, n_train, n_test)
    return {**out, "startup_seconds": startup,
            "train_images_per_s": {f"{m}@{b}": v for (m, b), v in train_ips.items()},
            "eval_images_per_s": eval_ips}


def main(args) -> None:
    params = load_params(args.params or ["params.yaml"])
    device = pick_device(args.device)
    setup_backend(device, deterministic=False)
    if args.workers is None:
        args.workers = min(8, torch.multiprocessing.cpu_count())
    batch = args.batch_size or params["train"]["batch_size"]
    images, labels = _data(args)
    names = args.models if args.models is not None else list_models()
    from msga import provenance

    print(f"device: {provenance.device_name(device)}; torch {torch.__version__}; {len(images)} images; "
          f"batch {batch}; {args.windows} windows x {args.steps} steps after {args.warmup} warm-up steps; "
          f"DataLoader workers {args.workers}; {'bf16 autocast' if device.type == 'cuda' else 'fp32'}")
    results = []
    header = f"{'model':<12} {'resident img/s':>15} {'DataLoader img/s':>17} {'ratio':>6}"
    header += f" {'compiled img/s':>15}" if args.compile and device.type == "cuda" else ""
    header += f" {'TFLOP/s':>8} {'MFU':>6}"
    print(header)
    for name in names:
        r = bench_model(name, params["models"][name], images, labels, batch, args, device)
        results.append(r)
        line = f"{name:<12} {r['eager_resident_images_per_s']:>15.0f} {r['eager_dataloader_images_per_s']:>17.0f} {r['ratio']:>6.2f}"
        if "compiled_resident_images_per_s" in r:
            line += f" {r['compiled_resident_images_per_s']:>15.0f}"
        mfu = "" if r["mfu"] is None else f"{100 * r['mfu']:.1f}%"
        line += f" {r['train_tflops']:>8.2f} {mfu:>6}"
        print(line, flush=True)
    report = {"device": provenance.device_name(device), "versions": provenance.versions(),
              "date": time.strftime("%Y-%m-%d"), "precision": "bf16 autocast" if device.type == "cuda" else "fp32",
              "peak_bf16_flops": next((v for k, v in PEAK_BF16.items() if device.type == "cuda"
                                       and k in torch.cuda.get_device_name(device)), None),
              "results": results}
    if args.project:
        print("projection of the grid (params) on this device:")
        report.update(project_grid(params, images, labels, args, device))
        print(f"startup {report['startup_seconds']:.1f} s per job; {report['runs']} runs: "
              f"{report['projected_minutes']:.0f} minutes one at a time")
    if args.json:
        write_json_atomic(args.json, report)
