"""Cost figures: parameters and forward FLOPs per image (torch.utils.flop_counter)."""

from __future__ import annotations

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def forward_flops(model: nn.Module, image_size: int = 32) -> int:
    """FLOPs of one forward pass per image (a multiply-add counts 2), in eval mode."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    x = torch.zeros(1, 3, image_size, image_size, device=device)
    counter = FlopCounterMode(display=False)
    with counter:
        model(x)
    model.train(was_training)
    return int(counter.get_total_flops())
