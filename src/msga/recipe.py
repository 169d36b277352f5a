"""The arithmetic of a training recipe that training and the grid share. Torch-free."""

from __future__ import annotations

import math


def scaled_lr(train: dict) -> float:
    """The peak learning rate a recipe trains at: lr per 256 images, scaled to its batch size."""
    ratio = train["batch_size"] / 256
    return train["lr"] * {"linear": ratio, "sqrt": math.sqrt(ratio), "none": 1.0}[train["lr_scaling"]]
