"""Device-resident batches: the dataset lives on the device, augmentation is one gather.

airbench's lesson: on a fast GPU the data path, not the model, is what a conventional
DataLoader makes slow. So the uint8 images are normalized and padded ONCE on the device; a
batch is an index gather that applies the random crop and the flip in the same kernel; the
noise of the paper's noise-level sweep is drawn on the device. The same code runs on a CPU.
"""

from __future__ import annotations

from typing import Iterator

import torch

PAD = 4  # pixels of zero padding for the random crop (the standard CIFAR augmentation)


def channel_stats(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of uint8 images (N, 3, H, W), in [0, 1] pixel units. (3,), (3,)"""
    x = images.to(torch.float64).div_(255)
    return x.mean(dim=(0, 2, 3)).float(), x.std(dim=(0, 2, 3)).float()


class DeviceData:
    """One split on the device: normalized once, padded once, sampled by gather."""

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        mean: torch.Tensor,
        std: torch.Tensor,
        device: torch.device,
        storage_dtype: torch.dtype = torch.float32,
        pad: int = PAD,
    ):
        n, c, h, w = images.shape
        self.n, self.size, self.pad, self.device = n, h, pad, torch.device(device)
        self.labels = labels.to(self.device, torch.long)
        self.mean = mean.to(self.device).view(1, c, 1, 1)
        self.std = std.to(self.device).view(1, c, 1, 1)
        # clamp bounds of a valid pixel [0, 1] in normalized units, for noisy images
        self.lo, self.hi = (0 - self.mean) / self.std, (1 - self.mean) / self.std
        x = images.to(self.device)
        x = torch.nn.functional.pad(x, (pad, pad, pad, pad))  # (N, 3, H+2p, W+2p): zero pixels
        self.padded = ((x.float() / 255 - self.mean) / self.std).to(storage_dtype)
        self.arange = torch.arange(h, device=self.device)

    def center(self, idx: torch.Tensor) -> torch.Tensor:
        p, s = self.pad, self.size
        return self.padded[idx, :, p:p + s, p:p + s].float()  # (B, 3, H, W)

    def augmented(self, idx: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Random crop + horizontal flip, both as ONE gather. (B, 3, H, W)"""
        b = idx.numel()
        dy = torch.randint(0, 2 * self.pad + 1, (b, 1), device=self.device, generator=generator)
        dx = torch.randint(0, 2 * self.pad + 1, (b, 1), device=self.device, generator=generator)
        flip = torch.rand(b, 1, device=self.device, generator=generator) < 0.5
        rows = dy + self.arange  # (B, H)
        cols = dx + torch.where(flip, self.size - 1 - self.arange, self.arange)  # (B, W): a flip reverses columns
        chans = torch.arange(self.padded.shape[1], device=self.device)
        x = self.padded[idx[:, None, None, None], chans[None, :, None, None], rows[:, None, :, None], cols[:, None, None, :]]
        return x.float()  # (B, 3, H, W)

    def add_noise(self, x: torch.Tensor, sigma: float, generator: torch.Generator) -> torch.Tensor:
        """Additive Gaussian pixel noise of std `sigma` in [0, 1] pixel units, clamped to valid pixels."""
        if sigma <= 0:
            return x
        noise = torch.randn(x.shape, device=self.device, generator=generator)
        return torch.maximum(torch.minimum(x + noise * (sigma / self.std), self.hi), self.lo)

    def train_batches(
        self, batch_size: int, generator: torch.Generator, augment: bool, sigma: float
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """One epoch: a device randperm, full batches only (the remainder is dropped)."""
        perm = torch.randperm(self.n, device=self.device, generator=generator)
        for start in range(0, self.n - batch_size + 1, batch_size):
            idx = perm[start:start + batch_size]
            x = self.augmented(idx, generator) if augment else self.center(idx)
            yield self.add_noise(x, sigma, generator), self.labels[idx]

    def eval_batches(self, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for start in range(0, self.n, batch_size):
            idx = torch.arange(start, min(start + batch_size, self.n), device=self.device)
            yield self.center(idx), self.labels[idx]

    def fix_noise(self, sigma: float, seed: int) -> None:
        """Bake seeded noise into the stored images once (the test set: the same noise every eval)."""
        if sigma <= 0:
            return
        g = torch.Generator(device=self.device).manual_seed(seed)
        p, s = self.pad, self.size
        core = self.padded[:, :, p:p + s, p:p + s].float()
        noisy = self.add_noise(core, sigma, g)
        self.padded[:, :, p:p + s, p:p + s] = noisy.to(self.padded.dtype)
