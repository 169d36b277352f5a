"""CNN row of Table 1: ConvNeXt [9] (timm). The ImageNet stem (4x4 patches) would leave 8x8
at stage 1 on CIFAR; a 1x1 patch stem keeps 32x32, and the four stages run at 32, 16, 8, 4."""

from __future__ import annotations

from timm.models.convnext import ConvNeXt



def convnext(
    num_classes: int = 100,
    patch_size: int = 1,
    depths: tuple[int, ...] = (2, 2, 2, 2),
    dims: tuple[int, ...] = (40, 80, 160, 320),
    drop_path: float = 0.1,
) -> ConvNeXt:
    if len(depths) != 4 or len(dims) != 4:
        raise ValueError(f"convnext: timm's ConvNeXt has four stages; got depths {list(depths)}, dims {list(dims)}")
    return ConvNeXt(
        num_classes=num_classes, patch_size=patch_size, depths=tuple(depths), dims=tuple(dims),
        drop_path_rate=drop_path,
    )
