"""Calibration anchor, not in the paper: ResNet-18 (He et al. 2016) as CIFAR code bases write it,
e.g. weiaicunzai/pytorch-cifar100, whose CIFAR-100 top-1 after 200 epochs of SGD the anchor checks
(msga.grid.experiments.ANCHOR_REFERENCE). If our pipeline trains it to about that with that recipe, the data, augmentation and
evaluation reproduce the literature, and the other models' numbers can be trusted that far.

CIFAR's form of the network, and why: a 3x3 stem at stride 1 and no max-pool (ImageNet's 7x7
stride-2 stem and pool would leave 8x8 pixels before the first block), so the four stages run at
32, 16, 8 and 4 pixels; two BasicBlocks per stage, widths 64-512: 11.2M parameters for 100
classes. Layers keep PyTorch's default initialisation, as that code base does. Torch alone:
torchvision's or timm's import would cost start-up time in every job.
"""

from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm, added to a shortcut: the identity, or a strided 1x1
    convolution with batch norm where the block changes the resolution or the width."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):  # (B, C_in, H, W) -> (B, C_out, H / stride, W / stride)
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, num_classes: int = 100, widths: tuple[int, ...] = (64, 128, 256, 512),
                 blocks: tuple[int, ...] = (2, 2, 2, 2)):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 3, padding=1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU())
        stages, c_in = [], widths[0]
        for i, (c, n) in enumerate(zip(widths, blocks)):
            stride = 1 if i == 0 else 2  # the first block of every later stage halves the resolution
            stages.append(nn.Sequential(*[BasicBlock(c_in if j == 0 else c, c, stride if j == 0 else 1) for j in range(n)]))
            c_in = c
        self.stages = nn.Sequential(*stages)
        self.head = nn.Linear(widths[-1], num_classes)

    def forward(self, x):  # (B, 3, 32, 32)
        x = self.stages(self.stem(x))  # (B, C, 4, 4)
        return self.head(x.mean(dim=(2, 3)))  # global average pool (B, C), then (B, num_classes)


def resnet18(num_classes: int = 100, widths: tuple[int, ...] = (64, 128, 256, 512)) -> ResNet:
    """ResNet-18: 18 layers whatever the widths (only they shrink in the demo)."""
    if len(widths) != 4:
        raise ValueError(f"resnet18 has four stages; got widths {list(widths)}")
    return ResNet(num_classes=num_classes, widths=tuple(widths), blocks=(2, 2, 2, 2))
