"""The proposed model: multi-scale convolution (Eq. 1) + global multi-head attention (Eq. 2),
fused, pooled and classified (Eq. 3). Reads top-down: blocks -> model -> registry.

Choices where the paper (section 3, Figure 1) is silent, and why:
- Three convolutional stages at 32x32, 16x16 and 8x8 (widths 96/192/240): CIFAR images are
  small, and an 8x8 grid of 64 tokens keeps global attention cheap while every token still
  sees a distinct image region.
- Multi-scale block (Eq. 1): parallel depthwise convolutions with kernels 3, 5 and 7 on the SAME
  input, concatenated along channels, then batch norm and a pointwise MLP that fuses the scales
  (as in Inception / MixConv). Depthwise branches keep the 7x7 scale affordable, and the
  pointwise fusion lets every output channel mix all receptive fields. Residual + stochastic depth.
- Global attention (Eq. 2): pre-norm transformer blocks (multi-head self-attention + MLP) over
  the 8x8 tokens of the last stage with a learned position embedding, so attention relates
  every region to every other; `heads` splits the 240-wide attention (divisible by 1..12).
- Fusion: the local (multi-scale) tokens and the global (attended) tokens are each normalized,
  concatenated and projected back to the width, a learned per-channel mix of both views.
- Aggregation: mean over tokens, layer norm, one linear classifier; cross-entropy (Eq. 3).
Ablations differ in one thing each: `attn_depth=0` (msga_local) removes attention and the
fusion; `kernels=[3]` (msga_global) keeps a single scale.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from msga.models.layers import DropPath, trunc_normal_



class MultiScaleConv(nn.Module):
    """Eq. 1: F_ms = Concat(Conv_k1(X), ..., Conv_kn(X)) with depthwise kxk convolutions."""

    def __init__(self, dim: int, kernels: list[int]):
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Conv2d(dim, dim, k, padding=k // 2, groups=dim, bias=False) for k in kernels
        )
        self.norm = nn.BatchNorm2d(dim * len(kernels))

    def forward(self, x):  # (B, C, H, W) -> (B, n*C, H, W)
        return self.norm(torch.cat([branch(x) for branch in self.branches], dim=1))


class MultiScaleBlock(nn.Module):
    """Multi-scale convolution, then a pointwise MLP that fuses the scales; residual."""

    def __init__(self, dim: int, kernels: list[int], mlp_ratio: float, drop_path: float):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.ms = MultiScaleConv(dim, kernels)
        self.fuse = nn.Conv2d(dim * len(kernels), hidden, 1)
        self.act = nn.GELU()
        self.proj = nn.Conv2d(hidden, dim, 1)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x):
        return x + self.drop_path(self.proj(self.act(self.fuse(self.ms(x)))))


class Attention(nn.Module):
    """Eq. 2: softmax(Q K^T / sqrt(d_k)) V over all tokens, in `heads` subspaces."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"attention width {dim} is not divisible by heads={heads}")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):  # (B, N, C)
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads)  # (B, N, 3, h, d)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, h, N, d)
        out = F.scaled_dot_product_attention(q, k, v)  # (B, h, N, d)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))  # (B, N, C)


class AttentionBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: float, drop_path: float):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x):  # (B, N, C)
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class MSGA(nn.Module):
    def __init__(
        self,
        num_classes: int = 100,
        stem: int = 64,
        widths: tuple[int, int, int] = (96, 192, 240),
        depths: tuple[int, int, int] = (2, 2, 2),
        kernels: tuple[int, ...] = (3, 5, 7),
        heads: int = 8,
        attn_depth: int = 2,
        mlp_ratio: float = 2.0,
        drop_path: float = 0.1,
        img_size: int = 32,
    ):
        super().__init__()
        width = widths[-1]
        if attn_depth and width % heads:
            raise ValueError(f"attention width widths[-1]={width} is not divisible by heads={heads}")
        self.stem = nn.Sequential(
            nn.Conv2d(3, stem, 3, padding=1, bias=False), nn.BatchNorm2d(stem), nn.GELU()
        )
        rates = torch.linspace(0, drop_path, sum(depths) + attn_depth).tolist()
        stages, c_in, r = [], stem, 0
        for i, (c, d) in enumerate(zip(widths, depths)):
            # stage 0 keeps 32x32 (a 1x1 projection); later stages halve the resolution
            down = nn.Sequential(nn.BatchNorm2d(c_in), nn.Conv2d(c_in, c, 1 if i == 0 else 2, stride=1 if i == 0 else 2))
            blocks = [MultiScaleBlock(c, list(kernels), mlp_ratio, rates[r + j]) for j in range(d)]
            stages.append(nn.Sequential(down, *blocks))
            c_in, r = c, r + d
        self.stages = nn.Sequential(*stages)
        tokens = (img_size // 4) ** 2
        self.attn_depth = attn_depth
        if attn_depth:
            self.pos_embed = nn.Parameter(torch.zeros(1, tokens, width))
            trunc_normal_(self.pos_embed, std=0.02)
            self.attn_blocks = nn.Sequential(
                *[AttentionBlock(width, heads, mlp_ratio, rates[r + j]) for j in range(attn_depth)]
            )
            self.norm_local = nn.LayerNorm(width)
            self.norm_global = nn.LayerNorm(width)
            self.fuse = nn.Linear(2 * width, width)
        else:
            self.norm_local = nn.LayerNorm(width)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, num_classes)
        self.apply(self._init)

    @staticmethod
    def _init(m):
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    def forward(self, x):  # (B, 3, 32, 32)
        x = self.stages(self.stem(x))  # (B, C, 8, 8)
        local = x.flatten(2).transpose(1, 2)  # (B, 64, C)
        if self.attn_depth:
            global_ = self.attn_blocks(local + self.pos_embed)  # (B, 64, C)
            fused = self.fuse(torch.cat([self.norm_local(local), self.norm_global(global_)], dim=-1))  # (B, 64, C)
        else:
            fused = self.norm_local(local)
        return self.head(self.norm(fused.mean(dim=1)))  # (B, num_classes)


def msga(num_classes: int = 100, **kw) -> MSGA:
    return MSGA(num_classes=num_classes, **kw)


def msga_local(num_classes: int = 100, **kw) -> MSGA:
    if kw.get("attn_depth", 0):
        raise ValueError("msga_local is msga without attention: its attn_depth must be 0")
    kw["attn_depth"] = 0
    return MSGA(num_classes=num_classes, **kw)


def msga_global(num_classes: int = 100, **kw) -> MSGA:
    if list(kw.get("kernels", [3])) != [3]:
        raise ValueError("msga_global is msga with a single 3x3 scale: its kernels must be [3]")
    kw["kernels"] = (3,)
    return MSGA(num_classes=num_classes, **kw)
