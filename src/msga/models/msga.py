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

Ablations. The paper-style halves remove a component, and with it cost: msga_local
(`attn_depth=0`: no attention, no fusion) and msga_global (`kernels=[3]`: one 3x3 branch).
The controls differ from msga in ONE thing at near-equal cost (params and FLOPs within 1%):
- msga_single: three depthwise branches of ONE kernel size (5x5, the middle of msga's 3/5/7)
  where msga has three sizes; the branch count, the fusion and the receptive field's typical
  size stay, so only the mixture of scales differs. Three 3x3 branches would also shrink the
  receptive field (and the cost, by 4%): two changes, not one; msga_global is that 3x3 model.
- msga_noattn: the attention blocks with each token's global mixing replaced by a local one
  (a depthwise 3x3 over the 8x8 token grid inside an expand/project pair whose weights match
  attention's); norms, MLPs, position embedding and the local/global fusion stay, so only
  the reach of token mixing differs: 3x3 neighbours instead of every token.
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


class LocalMixer(nn.Module):
    """The control for Eq. 2 (msga_noattn): each token mixes with its 3x3 neighbours on the
    token grid only. Expand to 2C, depthwise 3x3 over the grid, GELU, project back to C: its
    4C^2 weights match attention's q, k, v and output projections (4C^2), so the two differ in
    reach, not in size. (Attention's Q K^T and A V products, 4 N^2 C FLOPs, have no
    counterpart: a whole block then costs about 5% fewer FLOPs than an attention block.)"""

    def __init__(self, dim: int, grid: int, expand: int = 2):
        super().__init__()
        hidden = expand * dim
        self.grid = grid
        self.expand = nn.Linear(dim, hidden)
        self.conv = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.act = nn.GELU()
        self.proj = nn.Linear(hidden, dim)

    def forward(self, x):  # (B, N, C), the tokens of a grid x grid map in raster order
        b, n, _ = x.shape
        # a permuted view, not a copy: the conv sees channels_last memory
        h = self.expand(x).reshape(b, self.grid, self.grid, -1).permute(0, 3, 1, 2)  # (B, 2C, H, W)
        h = self.act(self.conv(h)).permute(0, 2, 3, 1).reshape(b, n, -1)  # (B, N, 2C)
        return self.proj(h)  # (B, N, C)


class TokenBlock(nn.Module):
    """Pre-norm transformer block: token mixing, then a per-token MLP, both residual. The mixer
    is Eq. 2's global attention (msga) or the local control (msga_noattn)."""

    def __init__(self, dim: int, mixer: nn.Module, mlp_ratio: float, drop_path: float):
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = mixer  # named attn for either mixer: msga's parameter names (and checkpoints) stay
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
        token_mixer: str = "attention",  # attention (Eq. 2) | local (the control of msga_noattn)
    ):
        super().__init__()
        width = widths[-1]
        if token_mixer not in ("attention", "local"):
            raise ValueError(f"token_mixer must be 'attention' or 'local', not {token_mixer!r}")
        if attn_depth and token_mixer == "attention" and width % heads:
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
        grid = img_size // 4  # two stride-2 stages
        self.attn_depth = attn_depth
        if attn_depth:
            self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid, width))
            trunc_normal_(self.pos_embed, std=0.02)

            def mixer():
                return Attention(width, heads) if token_mixer == "attention" else LocalMixer(width, grid)

            self.attn_blocks = nn.Sequential(
                *[TokenBlock(width, mixer(), mlp_ratio, rates[r + j]) for j in range(attn_depth)]
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
    kernels = list(kw.get("kernels", (3, 5, 7)))
    if len(set(kernels)) != len(kernels):
        raise ValueError(f"msga's scales are distinct kernel sizes; got kernels {kernels} "
                         "(one size in several branches is msga_single)")
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


def msga_single(num_classes: int = 100, **kw) -> MSGA:
    """msga with all of its branches of one kernel size: the single-scale control at equal cost."""
    kernels = list(kw.get("kernels", (5, 5, 5)))
    if len(kernels) < 2 or len(set(kernels)) != 1:
        raise ValueError("msga_single runs several branches of ONE kernel size (e.g. [5, 5, 5]); "
                         f"got kernels {kernels}")
    kw["kernels"] = tuple(kernels)
    return MSGA(num_classes=num_classes, **kw)


def msga_noattn(num_classes: int = 100, **kw) -> MSGA:
    """msga with its attention blocks mixing tokens locally: the no-attention control at equal cost."""
    if not kw.get("attn_depth", 2):
        raise ValueError("msga_noattn replaces msga's attention blocks by local ones: its attn_depth must be at least 1")
    return MSGA(num_classes=num_classes, token_mixer="local", **kw)
