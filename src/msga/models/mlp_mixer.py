"""MLP row of Table 1: MLP-Mixer [8] (timm), with 4x4 patches so 32x32 gives 64 tokens."""

from __future__ import annotations

from timm.models.mlp_mixer import MlpMixer



def mlp_mixer(
    num_classes: int = 100,
    patch_size: int = 4,
    embed_dim: int = 256,
    depth: int = 6,
    mlp_ratio: tuple[float, float] = (0.5, 4.0),
    drop_path: float = 0.1,
) -> MlpMixer:
    return MlpMixer(
        num_classes=num_classes, img_size=32, patch_size=patch_size, num_blocks=depth,
        embed_dim=embed_dim, mlp_ratio=tuple(mlp_ratio), drop_path_rate=drop_path,
    )
