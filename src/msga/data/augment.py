"""Stronger augmentation on the device: TrivialAugment-wide, Mixup and CutMix, vectorized over the batch.

Random crop + flip suits convnets; MLP-Mixer and ViT-like models need much stronger augmentation
to train well from scratch on CIFAR. Everything here works on a whole batch at once on any device:
per-image choices are tensors, never Python values, so there is no loop over images, no host sync
and no shape that depends on the data. Every random draw comes from the `generator` argument, so
the same generator state gives bit-identical output (a resumed run replays its epochs exactly).

Four pieces, applied in this order by `augment_batch`:
- `random_rotation`: each image turned by its own angle, as torchvision's RandomRotation does;
- `trivial_augment`: each image gets one op, drawn uniformly, with a magnitude drawn uniformly;
- `mix`: Mixup or CutMix of the batch with its reverse (x.flip(0)), with soft targets;
- `soft_cross_entropy`: the loss on those soft targets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Mapping, NamedTuple

import torch
import torch.nn.functional as F

# ---------------------------------------------------------------------------------------------
# Soft targets and their loss
# ---------------------------------------------------------------------------------------------


def smoothed_one_hot(y: torch.Tensor, num_classes: int, smoothing: float) -> torch.Tensor:
    """One-hot targets with label smoothing as F.cross_entropy applies it: the true class gets
    1 - s + s/K, every other class s/K. (B, K) float32, rows summing to 1."""
    off = smoothing / num_classes
    targets = torch.full((y.shape[0], num_classes), off, dtype=torch.float32, device=y.device)
    return targets.scatter_(1, y.view(-1, 1), 1.0 - smoothing + off)  # y (B,) -> (B, 1)


def soft_cross_entropy(logits: torch.Tensor, soft_targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy against soft targets, in float32 (bf16 log-probabilities lose the small
    target weights that mixing and smoothing put on the other classes)."""
    return -(soft_targets * logits.float().log_softmax(dim=-1)).sum(dim=-1).mean()


# ---------------------------------------------------------------------------------------------
# Mixup and CutMix
# ---------------------------------------------------------------------------------------------


def sample_beta(alpha: float, n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """n draws of Beta(alpha, alpha) from `generator`, as G1 / (G1 + G2) with Gi ~ Gamma(alpha).
    (torch.distributions draws from the global RNG; the gamma kernel takes a generator.) (n,)"""
    concentration = torch.full((2, n), float(alpha), dtype=torch.float32, device=device)
    gammas = torch._standard_gamma(concentration, generator=generator)  # (2, n)
    # both gammas underflow to 0 for a tiny alpha: call that draw an even mix instead of 0/0
    return (gammas[0] / (gammas[0] + gammas[1])).nan_to_num(nan=0.5)


def cutmix_boxes(lam: torch.Tensor, height: int, width: int, generator: torch.Generator) -> torch.Tensor:
    """One box per lambda covering about 1 - lam of the image: sides scaled by sqrt(1 - lam), centre
    uniform over the image, clipped at the borders (so the area may be smaller: see `box_area`).
    Rows (top, bottom, left, right), bottom and right exclusive. (n, 4) int64"""
    n, device = lam.shape[0], lam.device
    side = torch.sqrt(1.0 - lam)
    cut_h = (height * side).long()  # (n,) truncated as in the CutMix paper's code
    cut_w = (width * side).long()
    cy = torch.randint(0, height, (n,), device=device, generator=generator)
    cx = torch.randint(0, width, (n,), device=device, generator=generator)
    top = (cy - cut_h // 2).clamp(0, height)
    bottom = (cy + (cut_h + 1) // 2).clamp(0, height)
    left = (cx - cut_w // 2).clamp(0, width)
    right = (cx + (cut_w + 1) // 2).clamp(0, width)
    return torch.stack([top, bottom, left, right], dim=1)  # (n, 4)


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    """Pixels inside each box. (n,) int64"""
    return (boxes[:, 1] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 2])


def box_masks(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """True inside each box, by comparison with coordinate ranges (no data-dependent slicing). (n, 1, H, W)"""
    rows = torch.arange(height, device=boxes.device).view(1, height, 1)  # (1, H, 1)
    cols = torch.arange(width, device=boxes.device).view(1, 1, width)  # (1, 1, W)
    top, bottom, left, right = (boxes[:, i].view(-1, 1, 1) for i in range(4))  # each (n, 1, 1)
    inside = (rows >= top) & (rows < bottom) & (cols >= left) & (cols < right)  # (n, H, W)
    return inside.unsqueeze(1)  # (n, 1, H, W)


class MixDraw(NamedTuple):
    """One draw of mixing parameters for a batch.

    lam: (B,) weight of each image's own label in its target (1: not mixed); for CutMix it is the
        area fraction left unpasted, so it always equals the share of pixels the image kept.
    cutmix: (B,) True where CutMix was applied.
    boxes: (B, 4) the CutMix box (top, bottom, left, right), meaningful where `cutmix`.
    pixel_weight: (B, 1, H, W) weight of each image's own pixels; its partner gets 1 - weight.
    """

    lam: torch.Tensor
    cutmix: torch.Tensor
    boxes: torch.Tensor
    pixel_weight: torch.Tensor


def draw_mix(
    batch: int,
    height: int,
    width: int,
    generator: torch.Generator,
    mixup_alpha: float,
    cutmix_alpha: float,
    prob: float,
    switch_prob: float,
    per_sample: bool = False,
) -> MixDraw:
    """Draw whether to mix, which method, lambda and the CutMix box.

    By default one draw serves the whole batch, as timm's default "batch" mode and the DeiT recipe
    do; with `per_sample` every image gets its own draw (the same code: n = B draws instead of 1).
    """
    device = generator.device
    n = batch if per_sample else 1
    applied = torch.rand(n, device=device, generator=generator) < prob  # (n,)
    if mixup_alpha > 0 and cutmix_alpha > 0:
        cutmix = torch.rand(n, device=device, generator=generator) < switch_prob
    else:
        cutmix = torch.full((n,), cutmix_alpha > 0, device=device)
    ones = torch.ones(n, device=device)
    lam_mixup = sample_beta(mixup_alpha, n, generator, device) if mixup_alpha > 0 else ones
    lam_cutmix = sample_beta(cutmix_alpha, n, generator, device) if cutmix_alpha > 0 else ones
    boxes = cutmix_boxes(lam_cutmix, height, width, generator)  # (n, 4)
    if not per_sample:  # the batch's one draw, repeated for every image
        applied, cutmix, lam_mixup = applied.expand(batch), cutmix.expand(batch), lam_mixup.expand(batch)
        boxes = boxes.expand(batch, 4)  # (B, 4)

    cutmix = cutmix & applied
    mixup = applied & ~cutmix
    # the label weight follows the pixels actually pasted, not the lambda drawn (a box clipped at the border is smaller)
    kept_fraction = 1.0 - box_area(boxes).float() / (height * width)
    lam = torch.where(cutmix, kept_fraction, torch.where(mixup, lam_mixup, ones.expand(batch)))  # (B,)
    outside_box = (~box_masks(boxes, height, width)).float()  # (B, 1, H, W)
    pixel_weight = torch.where(cutmix.view(-1, 1, 1, 1), outside_box, lam.view(-1, 1, 1, 1))  # (B, 1, H, W)
    return MixDraw(lam, cutmix, boxes, pixel_weight)


def apply_mix(x: torch.Tensor, targets: torch.Tensor, draw: MixDraw) -> tuple[torch.Tensor, torch.Tensor]:
    """Mix each image and target with its partner in the reversed batch (timm's pairing: the batch
    order is already a random permutation, so the reverse is a random pairing at no cost)."""
    w = draw.pixel_weight.to(x.dtype)
    # w * x + (1 - w) * partner keeps pixels exact where w is 0 or 1 (CutMix, or no mixing)
    x_mixed = w * x + (1 - w) * x.flip(0)
    lam = draw.lam.view(-1, 1)  # (B, 1)
    return x_mixed, lam * targets + (1 - lam) * targets.flip(0)


def mix(
    x: torch.Tensor,
    y: torch.Tensor,
    num_classes: int,
    generator: torch.Generator,
    mixup_alpha: float = 0.8,
    cutmix_alpha: float = 1.0,
    prob: float = 1.0,
    switch_prob: float = 0.5,
    label_smoothing: float = 0.1,
    per_sample: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixup (Zhang et al. 2018) or CutMix (Yun et al. 2019) of a batch; returns (x_mixed, soft targets).

    x: (B, C, H, W) float, any device; y: (B,) int64. With probability `prob` the batch is mixed;
    when both alphas are positive CutMix is chosen with probability `switch_prob`, else Mixup; an
    alpha of 0 turns its method off, and with both off x comes back unchanged. Soft targets are the
    label-smoothed one-hot rows mixed with the same lambda, (B, num_classes) float32 summing to 1.
    The defaults are the DeiT recipe's.
    """
    _check_mix_args(mixup_alpha, cutmix_alpha, prob, switch_prob)
    targets = smoothed_one_hot(y, num_classes, label_smoothing)
    if (mixup_alpha == 0 and cutmix_alpha == 0) or prob == 0:
        return x, targets
    b, _, h, w = x.shape
    draw = draw_mix(b, h, w, generator, mixup_alpha=mixup_alpha, cutmix_alpha=cutmix_alpha, prob=prob,
                    switch_prob=switch_prob, per_sample=per_sample)
    return apply_mix(x, targets, draw)


def _check_mix_args(mixup_alpha: float, cutmix_alpha: float, prob: float, switch_prob: float) -> None:
    if not (mixup_alpha >= 0 and cutmix_alpha >= 0):
        raise ValueError(f"mixup_alpha and cutmix_alpha must be >= 0, got {mixup_alpha} and {cutmix_alpha}")
    if not (0 <= prob <= 1 and 0 <= switch_prob <= 1):
        raise ValueError(f"prob and switch_prob must lie in [0, 1], got {prob} and {switch_prob}")


# ---------------------------------------------------------------------------------------------
# TrivialAugment-wide
# ---------------------------------------------------------------------------------------------

OPS = (
    "identity", "brightness", "color", "contrast", "sharpness", "posterize", "solarize",
    "autocontrast", "equalize", "rotate", "shear_x", "shear_y", "translate_x", "translate_y",
)
OP_INDEX = {name: i for i, name in enumerate(OPS)}
GEOMETRIC = ("rotate", "shear_x", "shear_y", "translate_x", "translate_y")
BLENDS = ("brightness", "color", "contrast", "sharpness")  # factor = 1 + magnitude
SIGNED = BLENDS + GEOMETRIC  # the magnitude's sign is drawn too

NUM_MAGNITUDE_BINS = 31  # TrivialAugment's: the strength is one of 31 evenly spaced levels in [0, 1]
MAX_FACTOR_OFFSET = 0.99  # blend factor in [0.01, 1.99]
MAX_ROTATE_DEGREES = 135.0
MAX_SHEAR = 0.99  # shear coefficient (tan of the shear angle)
# TA-wide translates up to 32 pixels, and its CIFAR results were obtained with that on 32x32 images:
# the full side. Kept as a fraction of the side so other image sizes keep the proportion.
MAX_TRANSLATE_FRACTION = 1.0
MIN_POSTERIZE_BITS = 2
GRAY_WEIGHTS = (0.2989, 0.587, 0.114)  # ITU-R 601 luma, as PIL and torchvision use
GRAY_LEVELS = 255  # posterize and equalize work on 8-bit levels, as the uint8 originals have


def draw_ops(batch: int, height: int, width: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """One op per image, uniform over OPS, and its magnitude in the op's own units (see
    `trivial_augment`): an even level in [0, 1] from 31 bins, scaled, signed with probability 1/2
    for SIGNED ops. (B,) int64, (B,) float32"""
    device = generator.device
    ops = torch.randint(0, len(OPS), (batch,), device=device, generator=generator)
    bins = torch.randint(0, NUM_MAGNITUDE_BINS, (batch,), device=device, generator=generator)
    level = bins / (NUM_MAGNITUDE_BINS - 1)  # (B,) in [0, 1]
    sign = torch.where(torch.rand(batch, device=device, generator=generator) < 0.5, -1.0, 1.0)
    translate = torch.where(ops == OP_INDEX["translate_x"], width, height) * MAX_TRANSLATE_FRACTION
    scale = torch.where(_is(ops, *BLENDS), MAX_FACTOR_OFFSET, 0.0)  # (B,) full-strength magnitude
    scale = torch.where(ops == OP_INDEX["rotate"], MAX_ROTATE_DEGREES, scale)
    scale = torch.where(_is(ops, "shear_x", "shear_y"), MAX_SHEAR, scale)
    magnitude = level * scale
    whole_pixels = (level * translate).trunc()
    magnitude = torch.where(_is(ops, "translate_x", "translate_y"), whole_pixels, magnitude)
    magnitude = torch.where(_is(ops, *SIGNED), sign * magnitude, magnitude)
    bits = 8 - (level * (8 - MIN_POSTERIZE_BITS)).round()  # 8 (no change) down to 2 bits
    magnitude = torch.where(ops == OP_INDEX["posterize"], bits, magnitude)
    magnitude = torch.where(ops == OP_INDEX["solarize"], 1.0 - level, magnitude)  # threshold 1 down to 0
    return ops, magnitude


def _is(ops: torch.Tensor, *names: str) -> torch.Tensor:
    """True where the op is one of `names`. (B,) bool

    Compared with Python integers, never with a tensor built from a list: that would be a
    host-to-device copy, which waits for the device."""
    chosen = torch.zeros_like(ops, dtype=torch.bool)
    for name in names:
        chosen = chosen | (ops == OP_INDEX[name])
    return chosen


def trivial_augment(x01: torch.Tensor, generator: torch.Generator, mode: str = "bilinear") -> torch.Tensor:
    """TrivialAugment-wide (Mueller & Hutter 2021) on a batch of RGB images in [0, 1] pixel units.

    Each image gets one op drawn uniformly from these 14, with a strength level drawn uniformly
    from 31 bins over [0, 1] (signed ops: a random sign too). Ranges at full strength:
        identity
        brightness, color (saturation), contrast, sharpness: blend factor 1 + m, m in [-0.99, 0.99]
        posterize: keep 8 down to 2 bits of the 8-bit level
        solarize: invert pixels >= threshold, threshold in [1, 0]
        autocontrast: stretch each channel to [0, 1]; equalize: per-channel 8-bit histogram equalization
        rotate: [-135, 135] degrees about the centre
        shear_x, shear_y: coefficient in [-0.99, 0.99] about the centre
        translate_x, translate_y: whole pixels in [-32, 32] on 32x32 (MAX_TRANSLATE_FRACTION of the side)
    These are TA-wide's ranges; two choices for 32x32 images: shears act about the centre rather
    than the top-left corner (the corner version moves content up to a full side out of view, which
    the translate ops already cover), and resampling is bilinear (nearest leaves jagged edges at
    this size). Area uncovered by a geometric op is black, as the crop padding is.
    Returns the same shape, dtype and device, clamped to [0, 1].
    """
    b, _, h, w = x01.shape
    ops, magnitude = draw_ops(b, h, w, generator)
    return apply_ops(x01, ops, magnitude, mode)


def apply_ops(x01: torch.Tensor, ops: torch.Tensor, magnitude: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Apply op ops[i] with magnitude[i] to image i, for all images at once.

    Magnitudes are in each op's own units: blend ops the factor offset (factor = 1 + m), rotate
    degrees (counter-clockwise), shears the coefficient, translates pixels (right, down), posterize
    the bits kept, solarize the threshold; other ops ignore it. Each op runs on the whole batch and
    a select keeps it where it was drawn: a loop over 9 kinds of op, never over images, and no
    data-dependent shapes.
    """
    if x01.shape[1] != 3:
        raise ValueError(f"trivial_augment expects RGB images (B, 3, H, W), got {tuple(x01.shape)}")
    m = magnitude.to(x01.dtype).view(-1, 1, 1, 1)  # (B, 1, 1, 1): broadcasts over pixels
    candidates = {  # one entry per kind of op: the five geometric ones share one resampling
        "brightness": lambda: _blend(x01, torch.zeros_like(x01), 1 + m),
        "color": lambda: _blend(x01, grayscale(x01), 1 + m),
        "contrast": lambda: _blend(x01, grayscale(x01).mean(dim=(1, 2, 3), keepdim=True), 1 + m),
        "sharpness": lambda: sharpness(x01, 1 + m),
        "posterize": lambda: posterize(x01, m),
        "solarize": lambda: torch.where(x01 >= m, 1 - x01, x01),
        "autocontrast": lambda: autocontrast(x01),
        "equalize": lambda: equalize(x01),
        "geometric": lambda: warp(x01, affine_matrices(ops, magnitude, *x01.shape[-2:]), mode),
    }
    out = x01
    for name, op in candidates.items():
        chosen = _is(ops, *GEOMETRIC) if name == "geometric" else ops == OP_INDEX[name]
        out = torch.where(chosen.view(-1, 1, 1, 1), op(), out)
    return out.clamp(0, 1)


def _blend(image: torch.Tensor, degenerate: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """factor * image + (1 - factor) * degenerate: factor 1 is the image, 0 the degenerate one,
    above 1 extrapolates away from it (PIL's ImageEnhance)."""
    return factor * image + (1 - factor) * degenerate


def grayscale(x: torch.Tensor) -> torch.Tensor:
    """Luma of RGB images. (B, 1, H, W)"""
    r, g, b = x.unbind(dim=1)  # each (B, H, W)
    return (r * GRAY_WEIGHTS[0] + g * GRAY_WEIGHTS[1] + b * GRAY_WEIGHTS[2]).unsqueeze(1)  # (B, 1, H, W)


def sharpness(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blend with a 3x3 smoothing (weights 1, centre 5, over 13) of the interior; border pixels are
    kept, as PIL does. The 3x3 sum is nine shifted slices, not a convolution, so the result does not
    depend on which convolution algorithm a backend picks."""
    h, w = x.shape[-2:]
    window = sum(x[..., dy:dy + h - 2, dx:dx + w - 2] for dy in range(3) for dx in range(3))  # (B, C, H-2, W-2)
    centre = x[..., 1:h - 1, 1:w - 1]
    blurred = (window + 4 * centre) / 13
    interior_change = (1 - factor) * (blurred - centre)  # (B, C, H-2, W-2)
    return x + F.pad(interior_change, (1, 1, 1, 1))  # (B, C, H, W): zero change on the border


def _levels(x01: torch.Tensor) -> torch.Tensor:
    """8-bit levels of [0, 1] pixels, rounded: un-normalized images are k/255 only up to float error. int64"""
    return (x01 * GRAY_LEVELS).round().clamp(0, GRAY_LEVELS).long()


def posterize(x01: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    """Keep the top `bits` bits of each 8-bit level, per image (bits (B, 1, 1, 1))."""
    # clamped because every image runs every op: an image drawn for another op carries another unit here
    step = torch.pow(2.0, 8 - bits.round().clamp(0, 8)).to(torch.int64)  # (B, 1, 1, 1): 1 keeps all 8 bits
    return (torch.div(_levels(x01), step, rounding_mode="floor") * step).to(x01.dtype) / GRAY_LEVELS


def autocontrast(x01: torch.Tensor) -> torch.Tensor:
    """Stretch each channel of each image to span [0, 1]; a flat channel is left as it is."""
    low = x01.amin(dim=(2, 3), keepdim=True)  # (B, C, 1, 1)
    high = x01.amax(dim=(2, 3), keepdim=True)
    flat = high == low
    low = torch.where(flat, torch.zeros_like(low), low)
    span = torch.where(flat, torch.ones_like(high), high - low)
    return (x01 - low) / span


def equalize(x01: torch.Tensor) -> torch.Tensor:
    """Histogram equalization of each channel of each image over its 8-bit levels, with PIL's lookup
    table (what torchvision reproduces): level k maps to (cdf(k - 1) + step // 2) // step, where step
    is the count of pixels below the channel's top level over 255; a channel with step 0 is kept.

    The histogram is counted by sorting each channel and binary-searching the 256 levels, not by
    scatter-add: no atomics, so the same on every device and under deterministic algorithms.
    """
    b, c, h, w = x01.shape
    levels = _levels(x01).view(b * c, h * w)  # (BC, HW)
    ordered = levels.sort(dim=1).values
    all_levels = torch.arange(GRAY_LEVELS + 1, device=x01.device).expand(b * c, -1).contiguous()  # (BC, 256)
    at_most = torch.searchsorted(ordered, all_levels, right=True)  # (BC, 256): cdf, pixels <= k
    below_top = torch.searchsorted(ordered, ordered[:, -1:].contiguous(), right=False)  # (BC, 1): pixels < max level
    step = torch.div(below_top, GRAY_LEVELS, rounding_mode="floor")  # (BC, 1)
    mapped = torch.div(at_most[:, :-1] + step // 2, step.clamp(min=1), rounding_mode="floor").clamp(0, GRAY_LEVELS)
    lut = F.pad(mapped, (1, 0))  # (BC, 256): level 0 always maps to 0
    equalized = torch.where(step > 0, lut.gather(1, levels), levels)  # (BC, HW)
    return (equalized.to(x01.dtype) / GRAY_LEVELS).view(b, c, h, w)  # (B, C, H, W)


def affine_matrices(ops: torch.Tensor, magnitude: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Per-image inverse affine maps (output pixel -> input pixel) for `F.affine_grid`, in its
    normalized coordinates; identity for non-geometric ops. (B, 2, 3)

    Built in pixel units about the image centre, where for an output point p the input point is
    A @ p + t; normalized coordinates are pixel offsets divided by half the side (align_corners=False).
    """
    m = magnitude.float()
    zero = torch.zeros_like(m)
    angle = torch.where(ops == OP_INDEX["rotate"], torch.deg2rad(m), zero)
    shear_x = torch.where(ops == OP_INDEX["shear_x"], m, zero)
    shear_y = torch.where(ops == OP_INDEX["shear_y"], m, zero)
    shift_x = torch.where(ops == OP_INDEX["translate_x"], m, zero)
    shift_y = torch.where(ops == OP_INDEX["translate_y"], m, zero)
    cos, sin = torch.cos(angle), torch.sin(angle)
    # y points down, so a counter-clockwise turn on screen reads input at [[cos, -sin], [sin, cos]] @ p;
    # a shear reads x at x + s * y (or y at y + s * x), as AutoAugment's PIL transform does. A is
    # rotation @ shear written out, not a matmul: CUDA matmuls may run in TF32 and lose ~1e-3.
    # Only one op is active per image, so the order of composition does not matter.
    a00, a01 = cos - sin * shear_y, cos * shear_x - sin
    a10, a11 = sin + cos * shear_y, sin * shear_x + cos
    # to normalized units, S^-1 A S and S^-1 t with S = diag(W/2, H/2): entry ij scales by s_j / s_i;
    # content moves by +shift, so the input is read at p - shift
    return torch.stack([
        a00, a01 * (height / width), -shift_x / (width / 2),
        a10 * (width / height), a11, -shift_y / (height / 2),
    ], dim=1).view(-1, 2, 3)  # (B, 2, 3)


def warp(x: torch.Tensor, theta: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Resample every image through its own affine map (normalized units, as F.affine_grid takes);
    outside the image reads black.

    The grid is theta applied to the pixel centres elementwise, what F.affine_grid computes with a
    matmul: on CUDA that matmul may run in TF32 (the trainer allows it), which would move sampling
    points by up to about a hundredth of a pixel; elementwise it stays float32 on every device.
    """
    b, _, h, w = x.shape
    theta = theta.to(x.dtype).view(b, 1, 1, 2, 3)  # (B, 1, 1, 2, 3): broadcasts over the grid
    xs = (2 * torch.arange(w, device=x.device, dtype=x.dtype) + 1) / w - 1  # (W,) pixel centres, align_corners=False
    ys = (2 * torch.arange(h, device=x.device, dtype=x.dtype) + 1) / h - 1  # (H,)
    xs, ys = xs.view(1, 1, w, 1), ys.view(1, h, 1, 1)  # (1, 1, W, 1), (1, H, 1, 1)
    grid = theta[..., 0] * xs + theta[..., 1] * ys + theta[..., 2]  # (B, H, W, 2): input x, y per output pixel
    return F.grid_sample(x, grid, mode=mode, padding_mode="zeros", align_corners=False)


# ---------------------------------------------------------------------------------------------
# Random rotation
# ---------------------------------------------------------------------------------------------


def random_rotation(x01: torch.Tensor, degrees: float, generator: torch.Generator,
                    mode: str = "nearest") -> torch.Tensor:
    """torchvision's RandomRotation(degrees) on a batch, each image with its own angle: uniform in
    [-degrees, degrees], counter-clockwise about the centre, nearest-neighbour resampling and black
    where the turned image does not reach (RandomRotation's defaults), on images in [0, 1] pixel
    units. The affine map is TrivialAugment's rotate op. Same shape, dtype and device."""
    b, _, h, w = x01.shape
    angle = (2 * torch.rand(b, device=x01.device, generator=generator) - 1) * degrees  # (B,) degrees
    ops = torch.full((b,), OP_INDEX["rotate"], device=x01.device)
    return warp(x01, affine_matrices(ops, angle, h, w), mode)


# ---------------------------------------------------------------------------------------------
# What the training loop calls
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AugmentSpec:
    """Which augmentations a run trains with; the defaults are crop + flip only."""

    crop_flip: bool = True  # the loader's random crop + horizontal flip (DeviceData.augmented)
    rotate_degrees: float = 0.0  # random rotation up to this many degrees either way; 0 turns it off
    trivial_augment: bool = False
    mixup_alpha: float = 0.0  # Beta(alpha, alpha) for Mixup's lambda; 0 turns Mixup off
    cutmix_alpha: float = 0.0  # Beta(alpha, alpha) for CutMix's lambda; 0 turns CutMix off
    mix_prob: float = 1.0  # probability that a batch is mixed at all
    switch_prob: float = 0.5  # probability of CutMix rather than Mixup when both are on

    @classmethod
    def from_params(cls, params: Mapping) -> AugmentSpec:
        """From a params mapping with (some of) the field names as keys; an unknown key is an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValueError(f"unknown augmentation key(s) {unknown}; known: {sorted(known)}")
        spec = cls(**params)
        for name in ("rotate_degrees", "mixup_alpha", "cutmix_alpha", "mix_prob", "switch_prob"):
            if not math.isfinite(getattr(spec, name)):
                raise ValueError(f"augmentation {name} must be finite, got {getattr(spec, name)}")
        if not 0 <= spec.rotate_degrees <= 180:
            raise ValueError(f"augmentation rotate_degrees must lie in [0, 180], got {spec.rotate_degrees}")
        _check_mix_args(spec.mixup_alpha, spec.cutmix_alpha, spec.mix_prob, spec.switch_prob)
        return spec

    @property
    def mixes(self) -> bool:
        return (self.mixup_alpha > 0 or self.cutmix_alpha > 0) and self.mix_prob > 0


def augment_batch(
    x: torch.Tensor,
    y: torch.Tensor,
    spec: AugmentSpec,
    mean: torch.Tensor,
    std: torch.Tensor,
    num_classes: int,
    label_smoothing: float,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random rotation (if on), TrivialAugment (if on), then Mixup/CutMix (if on), of a NORMALIZED
    batch; returns the normalized batch and soft targets (B, num_classes) float32 for
    `soft_cross_entropy`.

    mean, std: (1, C, 1, 1) in [0, 1] pixel units, as DeviceData holds them. With all off the batch
    is returned as it is, with the smoothed one-hot targets (the same loss as F.cross_entropy with
    label_smoothing).
    """
    if spec.rotate_degrees > 0 or spec.trivial_augment:
        x01 = x * std + mean  # (B, C, H, W) in [0, 1]: black fill is black pixels, as in torchvision
        if spec.rotate_degrees > 0:
            x01 = random_rotation(x01, spec.rotate_degrees, generator)
        if spec.trivial_augment:
            x01 = trivial_augment(x01, generator)
        x = (x01 - mean) / std
    return mix(x, y, num_classes, generator, mixup_alpha=spec.mixup_alpha, cutmix_alpha=spec.cutmix_alpha,
               prob=spec.mix_prob, switch_prob=spec.switch_prob, label_smoothing=label_smoothing)
