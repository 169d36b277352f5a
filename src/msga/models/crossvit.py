"""Transformer row of Table 1: CrossViT [11] (timm), a two-branch ViT whose branches see
2x2 and 4x4 patches of the 32x32 image and exchange information by cross-attention."""

from __future__ import annotations

from timm.models.crossvit import CrossVit



def crossvit(
    num_classes: int = 100,
    patch_size: tuple[int, int] = (2, 4),
    embed_dim: tuple[int, int] = (96, 192),
    depth: tuple[tuple[int, int, int], ...] = ((1, 3, 1), (1, 3, 1), (1, 3, 1)),
    num_heads: tuple[int, int] = (6, 6),
    mlp_ratio: tuple[float, float, float] = (3.0, 3.0, 1.0),
    drop_path: float = 0.1,
) -> CrossVit:
    for dim, heads in zip(embed_dim, num_heads):
        if dim % heads:
            raise ValueError(f"crossvit: embed_dim {dim} is not divisible by num_heads {heads}")
    return CrossVit(
        img_size=32, patch_size=tuple(patch_size), num_classes=num_classes,
        embed_dim=tuple(embed_dim), depth=tuple(tuple(d) for d in depth),
        num_heads=tuple(num_heads), mlp_ratio=tuple(mlp_ratio), drop_path_rate=drop_path,
    )
