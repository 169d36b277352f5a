"""The arithmetic of a training recipe that training and the grid share. Torch-free."""

from __future__ import annotations

import math


def scaled_lr(train: dict) -> float:
    """The peak learning rate a recipe trains at: lr per 256 images, scaled to its batch size."""
    ratio = train["batch_size"] / 256
    return train["lr"] * {"linear": ratio, "sqrt": math.sqrt(ratio), "none": 1.0}[train["lr_scaling"]]


VALIDATION_SHARE = 10  # 1 in 10 training images of each class: 5,000 of CIFAR-100's 50,000


def held_out(per_class: int) -> int:
    """How many of a class's training images the validation split holds out: a tenth, at least one."""
    return max(1, per_class // VALIDATION_SHARE)
