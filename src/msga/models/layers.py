"""Small layers shared by this project's models, written here so that building msga imports
torch alone: timm's package import pulls in every timm model (seconds of start-up per job)."""

from __future__ import annotations

import torch
import torch.nn as nn


class DropPath(nn.Module):
    """Stochastic depth: drop a residual branch for whole samples, scaled to keep its mean."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x):
        if self.p == 0 or not self.training:
            return x
        keep = 1 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)  # (B, 1, ..., 1)
        return x * mask.div_(keep)

    def extra_repr(self) -> str:
        return f"p={self.p}"


def trunc_normal_(tensor: torch.Tensor, std: float) -> torch.Tensor:
    """The ViT initialisation of linear layers as timm writes it: Normal(0, std) cut at +-2 in
    absolute units (so, for std 0.02, a plain normal)."""
    return nn.init.trunc_normal_(tensor, std=std, a=-2.0, b=2.0)
