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


def main(args) -> None:
    params = load_params(args.params or ["params.yaml"])
    device = pick_device(args.device)
    setup_backend(device, deterministic=False)
    if args.workers is None:
        args.workers = min(8, torch.multiprocessing.cpu_count())
    batch = args.batch_size or params["train"]["batch_size"]
    images, labels = _data(args)
    names = args.models or list_models()
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
    if args.json:
        write_json_atomic(args.json, {"device": provenance.device_name(device), "results": results})
