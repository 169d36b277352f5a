"""Before hours of training start on a machine without a GPU, say so: the device, the training
time the pending runs would take at a speed measured here and now, and the demo instead."""

from __future__ import annotations

import time

from msga.grid.experiments import OURS

CPU_WARNING_SECONDS = 3600  # below an hour (the demo) there is nothing to warn about


def measured_images_per_s(sizes: dict, batch: int = 16, steps: int = 3) -> float:
    """msga's training speed on this CPU: a few timed forward+backward steps at params' sizes."""
    import torch
    import torch.nn.functional as F

    from msga.models import build_model

    model = build_model(OURS, **sizes)
    x, y = torch.randn(batch, 3, 32, 32), torch.randint(0, 100, (batch,))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for step in range(steps + 1):  # the first step warms up
        if step == 1:
            started = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return steps * batch / (time.perf_counter() - started)


def cpu_training_seconds(configs: list[dict], models: dict, train_images: int) -> tuple[float, float]:
    """(seconds, msga images/s) for training `configs` on this CPU: msga's measured speed, the
    other models scaled by their forward FLOPs relative to msga's."""
    from msga.train.costs import model_costs

    speed = measured_images_per_s(models[OURS])
    reference = model_costs(OURS, models[OURS])[1]
    seconds = 0.0
    for config in configs:
        name = config["model"]["name"]
        flops = model_costs(name, models[name])[1]  # counted once, then read back
        seconds += config["train"]["epochs"] * train_images * (flops / reference) / speed
    return seconds, speed


def no_gpu_warning(configs: list[dict], params: dict, local: bool = True) -> str | None:
    """The warning to print before training `configs`, or None (a GPU, little to train, or jobs that
    run elsewhere). `local`: the jobs run on this machine; with a cluster's executor (SLURM) they
    run on its GPU nodes, and this machine (a login node) says nothing about them: no model is
    built to measure it."""
    if not local or not configs:
        return None
    import torch

    if torch.cuda.is_available():
        return None
    from msga.data.format import split_sizes
    from msga.results.status import describe

    seconds, speed = cpu_training_seconds(configs, params["models"], split_sizes(params["data"])["train"])
    if seconds < CPU_WARNING_SECONDS:
        return None
    return (f"msga: no GPU here (torch sees none): {len(configs)} training runs would train on the CPU. At the speed "
            f"measured just now (msga: {speed:.0f} images/s), that is about {describe(seconds)} of training. To see "
            "the whole pipeline in minutes instead: snakemake --cores all --configfile workflow/demo.yaml. "
            "Ctrl-C stops everything; runs resume from their last checkpoints.")
