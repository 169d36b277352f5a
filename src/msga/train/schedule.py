"""The recipe's optimizer and learning-rate schedule."""

from __future__ import annotations

import math

import torch
import torch.nn as nn


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
