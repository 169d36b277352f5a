"""Which device a job trains on, and the kernels it uses there."""

from __future__ import annotations

import os

import torch


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def setup_backend(device: torch.device, deterministic: bool) -> None:
    """Fast kernels by default; with `deterministic`, repeatable ones (see docs/RELIABILITY.md)."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = not deterministic  # autotuning may pick other kernels per run
        torch.backends.cudnn.deterministic = deterministic
    if deterministic:
        # cuBLAS GEMMs are repeatable only with a fixed workspace, and PyTorch refuses deterministic
        # mode without one; it must be set before the first cuBLAS call of the process.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=False)
