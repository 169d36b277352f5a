"""Stronger augmentation on the device: each op against torchvision, Mixup/CutMix against their
definitions, determinism from the generator alone, and no per-image loop or host sync."""

from __future__ import annotations

import math
from collections import Counter

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode
from torchvision.transforms.v2 import functional as TF

from msga.data.augment import (
    GEOMETRIC, OP_INDEX, OPS, AugmentSpec, apply_ops, augment_batch, draw_mix, draw_ops, mix, random_rotation,
    smoothed_one_hot, soft_cross_entropy, trivial_augment,
)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
NUM_CLASSES = 10
BILINEAR = TF.InterpolationMode.BILINEAR
NEAREST = TF.InterpolationMode.NEAREST


def gen(seed: int, device: str = "cpu") -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def images_uint8(n: int = 4, seed: int = 0, size: int = 32) -> torch.Tensor:
    """Images with structure (a gradient, a bright square) plus noise, channels of unequal ranges, so
    contrast, autocontrast and equalize all have work to do. (n, 3, size, size) uint8"""
    g = gen(seed)
    ramp = torch.linspace(0, 1, size)
    base = ramp.view(1, 1, 1, size) * ramp.view(1, 1, size, 1)  # (1, 1, S, S)
    low = torch.tensor([20.0, 60.0, 100.0]).view(1, 3, 1, 1)
    span = torch.tensor([200.0, 120.0, 60.0]).view(1, 3, 1, 1)
    x = low + span * base + 25 * torch.rand(n, 3, size, size, generator=g)
    x[:, :, size // 4:size // 2, size // 4:size // 2] += 40
    return x.round().clamp(0, 255).to(torch.uint8)


def images01(n: int = 4, seed: int = 0, device: str = "cpu") -> torch.Tensor:
    return (images_uint8(n, seed).float() / 255).to(device)


def batch(n: int = 16, seed: int = 0, device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """A normalized-looking batch and labels in which each image's partner (the reversed batch) has another label."""
    x = torch.randn(n, 3, 32, 32, generator=gen(seed)).to(device)
    y = (torch.arange(n) % NUM_CLASSES).to(device)
    return x, y


def run_op(x01: torch.Tensor, op: str, magnitude: float) -> torch.Tensor:
    n = x01.shape[0]
    ops = torch.full((n,), OP_INDEX[op], device=x01.device)
    return apply_ops(x01, ops, torch.full((n,), float(magnitude), device=x01.device))


# ---------------------------------------------------------------------------------------------
# soft targets and loss
# ---------------------------------------------------------------------------------------------


def test_soft_cross_entropy_on_smoothed_one_hot_is_label_smoothed_cross_entropy():
    logits = torch.randn(8, NUM_CLASSES, generator=gen(1))
    y = torch.arange(8) % NUM_CLASSES
    targets = smoothed_one_hot(y, NUM_CLASSES, 0.1)
    assert targets.dtype == torch.float32 and targets.shape == (8, NUM_CLASSES)
    torch.testing.assert_close(targets.sum(1), torch.ones(8))
    expected = F.cross_entropy(logits, y, label_smoothing=0.1)
    torch.testing.assert_close(soft_cross_entropy(logits, targets), expected, rtol=1e-6, atol=1e-6)
    assert soft_cross_entropy(logits.bfloat16(), targets).dtype == torch.float32


# ---------------------------------------------------------------------------------------------
# Mixup and CutMix
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("off", [{"mixup_alpha": 0.0, "cutmix_alpha": 0.0}, {"prob": 0.0}])
def test_mixing_off_returns_the_batch_and_smoothed_one_hot(device, off):
    x, y = batch(device=device)
    kwargs = {"mixup_alpha": 0.8, "cutmix_alpha": 1.0, **off}
    x_out, targets = mix(x, y, NUM_CLASSES, gen(0, device), label_smoothing=0.1, **kwargs)
    assert x_out is x
    assert torch.equal(targets, smoothed_one_hot(y, NUM_CLASSES, 0.1))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("per_sample", [False, True])
def test_mixup_is_a_convex_blend_with_the_reversed_batch(device, per_sample):
    x, y = batch(device=device)
    for seed in range(5):
        x_mixed, targets = mix(x, y, NUM_CLASSES, gen(seed, device), mixup_alpha=0.8, cutmix_alpha=0.0,
                               label_smoothing=0.0, per_sample=per_sample)
        assert x_mixed.shape == x.shape and x_mixed.dtype == x.dtype and x_mixed.device == x.device
        assert targets.dtype == torch.float32 and targets.shape == (16, NUM_CLASSES)
        torch.testing.assert_close(targets.sum(1), torch.ones(16, device=device))
        rows = torch.arange(16, device=device)
        lam = targets[rows, y]  # (B,): the own label's weight is lambda (partners have other labels)
        assert bool(((lam >= 0) & (lam <= 1)).all())
        torch.testing.assert_close(targets[rows, y.flip(0)], 1 - lam)
        expected = lam.view(-1, 1, 1, 1) * x + (1 - lam.view(-1, 1, 1, 1)) * x.flip(0)
        torch.testing.assert_close(x_mixed, expected, rtol=0, atol=1e-6)
        if not per_sample:
            assert bool((lam == lam[0]).all())  # one lambda for the batch, as timm's "batch" mode
    # per-sample lambdas differ between images
    if per_sample:
        assert lam.unique().numel() > 1


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("per_sample", [False, True])
def test_cutmix_pastes_one_box_and_the_label_weight_is_the_area_kept(device, per_sample):
    b, size = 16, 32
    # every image a distinct constant plus noise: each pixel tells which image it came from
    x = torch.arange(b, dtype=torch.float32).view(b, 1, 1, 1) + 0.01 * torch.rand(b, 3, size, size, generator=gen(2))
    x, y = x.to(device), (torch.arange(b) % NUM_CLASSES).to(device)
    boxes_seen = 0
    for seed in range(8):
        x_mixed, targets = mix(x, y, NUM_CLASSES, gen(seed, device), mixup_alpha=0.0, cutmix_alpha=1.0,
                               label_smoothing=0.0, per_sample=per_sample)
        pasted = x_mixed == x.flip(0)
        assert bool((pasted | (x_mixed == x)).all())  # every pixel is the image's own or its partner's
        assert bool((pasted == pasted[:, :1]).all())  # the same box in every channel
        for i in range(b):
            rows = pasted[i, 0].any(dim=1).nonzero().flatten()
            cols = pasted[i, 0].any(dim=0).nonzero().flatten()
            if rows.numel():  # one filled rectangle: its bounding box is all pasted
                boxes_seen += 1
                box = pasted[i, 0, rows.min():rows.max() + 1, cols.min():cols.max() + 1]
                assert bool(box.all()) and int(box.sum()) == int(pasted[i, 0].sum())
            kept_fraction = 1 - pasted[i, 0].float().mean()
            assert float(targets[i, y[i]]) == pytest.approx(float(kept_fraction), abs=1e-6)
            assert float(targets[i, y[b - 1 - i]]) == pytest.approx(1 - float(kept_fraction), abs=1e-6)
    assert boxes_seen > 0


def test_cutmix_boxes_clipped_at_the_border_correct_lambda():
    draw = draw_mix(4096, 32, 32, gen(3), 0.0, 1.0, 1.0, 0.5, per_sample=True)
    area = (draw.boxes[:, 1] - draw.boxes[:, 0]) * (draw.boxes[:, 3] - draw.boxes[:, 2])
    torch.testing.assert_close(draw.lam, 1 - area.float() / 1024)
    torch.testing.assert_close(draw.pixel_weight.mean(dim=(1, 2, 3)), draw.lam)
    touching = (draw.boxes[:, 0] == 0) | (draw.boxes[:, 1] == 32) | (draw.boxes[:, 2] == 0) | (draw.boxes[:, 3] == 32)
    assert bool(touching.any()) and bool(draw.cutmix.all())
    # Beta(1, 1) is uniform: the corrected lambda's mean is above 1/2 because clipping only removes area
    assert 0.5 < float(draw.lam.mean()) < 0.75


def test_switch_prob_and_prob_pick_the_method_and_how_often():
    n = 20_000
    draw = draw_mix(n, 32, 32, gen(4), 0.8, 1.0, prob=0.6, switch_prob=0.25, per_sample=True)
    mixed = draw.lam < 1
    cutmix = draw.cutmix.float().mean()
    mixup = (mixed & ~draw.cutmix).float().mean()
    tolerance = 5 * math.sqrt(0.25 / n)  # five standard deviations of a frequency
    assert abs(float(cutmix) - 0.6 * 0.25) < tolerance
    assert abs(float(mixup) - 0.6 * 0.75) < tolerance


# ---------------------------------------------------------------------------------------------
# TrivialAugment: every op against torchvision on single images
# ---------------------------------------------------------------------------------------------

# (op, magnitude in our units, torchvision on one image, tolerance). Tolerances: 0 where both do the
# same exact arithmetic (selects, and torchvision's factor equals ours); 1e-6 (8 float32 ulps at 1.0)
# where the same float formula is summed in another order, or our factor 1 + m is rounded to float32
# (1 - 0.9 is not 0.1); 1e-5 for resampling, where the sampling
# grids come from the same map computed in another order (about 1e-6 pixel apart) and bilinear
# weights move with them.
REFERENCES = [
    ("brightness", 0.6, lambda i: TF.adjust_brightness(i, 1.6), 0),
    ("brightness", -0.9, lambda i: TF.adjust_brightness(i, 0.1), 1e-6),
    ("color", -0.7, lambda i: TF.adjust_saturation(i, 0.3), 1e-6),
    ("color", 0.99, lambda i: TF.adjust_saturation(i, 1.99), 1e-6),
    ("contrast", 0.8, lambda i: TF.adjust_contrast(i, 1.8), 1e-6),
    ("contrast", -0.5, lambda i: TF.adjust_contrast(i, 0.5), 1e-6),
    ("sharpness", 0.9, lambda i: TF.adjust_sharpness(i, 1.9), 1e-6),
    ("sharpness", -0.99, lambda i: TF.adjust_sharpness(i, 0.01), 1e-6),
    ("solarize", 0.5, lambda i: TF.solarize(i, 0.5), 0),
    ("autocontrast", 0.0, TF.autocontrast, 1e-6),
    ("rotate", 30.0, lambda i: TF.rotate(i, 30.0, interpolation=BILINEAR), 1e-5),
    ("rotate", -117.0, lambda i: TF.rotate(i, -117.0, interpolation=BILINEAR), 1e-5),
    ("shear_x", 0.5, lambda i: TF.affine(i, 0.0, [0, 0], 1.0, [math.degrees(math.atan(0.5)), 0.0], BILINEAR), 1e-5),
    ("shear_y", -0.9, lambda i: TF.affine(i, 0.0, [0, 0], 1.0, [0.0, math.degrees(math.atan(-0.9))], BILINEAR), 1e-5),
    ("translate_x", 7.0, lambda i: TF.affine(i, 0.0, [7, 0], 1.0, [0.0, 0.0], BILINEAR), 1e-5),
    ("translate_y", -12.0, lambda i: TF.affine(i, 0.0, [0, -12], 1.0, [0.0, 0.0], BILINEAR), 1e-5),
]


@pytest.mark.parametrize("op, magnitude, reference, tolerance", REFERENCES,
                         ids=[f"{r[0]}{r[1]:+g}" for r in REFERENCES])
def test_op_matches_torchvision_on_each_image(op, magnitude, reference, tolerance):
    x = images01()
    expected = torch.stack([reference(img) for img in x])
    torch.testing.assert_close(run_op(x, op, magnitude), expected, rtol=0, atol=tolerance)


@pytest.mark.parametrize("op, magnitude, reference", [
    ("rotate", 50.0, lambda i: TF.rotate(i, 50.0, interpolation=BILINEAR)),
    ("shear_x", 0.7, lambda i: TF.affine(i, 0.0, [0, 0], 1.0, [math.degrees(math.atan(0.7)), 0.0], BILINEAR)),
    ("shear_y", 0.7, lambda i: TF.affine(i, 0.0, [0, 0], 1.0, [0.0, math.degrees(math.atan(0.7))], BILINEAR)),
    ("translate_y", 3.0, lambda i: TF.affine(i, 0.0, [0, 3], 1.0, [0.0, 0.0], BILINEAR)),
])
def test_geometric_ops_on_non_square_images(op, magnitude, reference):
    # pixel maps are rescaled to normalized units per axis: a wrong aspect would distort a rotation
    x = images01()[:, :, 4:28, :]  # (4, 3, 24, 32)
    expected = torch.stack([reference(img) for img in x])
    torch.testing.assert_close(run_op(x, op, magnitude), expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("bits", range(2, 9))
def test_posterize_matches_torchvision_on_uint8(bits):
    # torchvision's float posterize quantizes to 2**bits levels of [0, 1]; TA means the 8-bit one
    x8 = images_uint8()
    expected = torch.stack([TF.posterize(img, bits) for img in x8])
    assert torch.equal(run_op(x8.float() / 255, "posterize", bits), expected.float() / 255)


def test_equalize_matches_torchvision_on_uint8_including_flat_and_narrow_channels():
    x8 = images_uint8(6)
    x8[0, 1] = 77  # a flat channel: nothing to equalize
    x8[1] = x8[1] // 16 + 100  # a narrow histogram: 16 levels
    x8[2, 0, :, :] = 255  # all at the top but one pixel
    x8[2, 0, 0, 0] = 3
    expected = torch.stack([TF.equalize(img) for img in x8])
    assert torch.equal(run_op(x8.float() / 255, "equalize", 0), expected.float() / 255)
    # the levels are rounded, so float error from un-normalizing does not move a pixel to another bin
    jittered = x8.float() / 255 + 1e-6 * torch.randn(x8.shape, generator=gen(5))
    assert torch.equal(run_op(jittered, "equalize", 0), expected.float() / 255)


NEUTRAL = [("identity", 0.0), ("brightness", 0.0), ("color", 0.0), ("contrast", 0.0), ("sharpness", 0.0),
           ("posterize", 8.0), ("solarize", 1.01), ("rotate", 0.0), ("shear_x", 0.0), ("shear_y", 0.0),
           ("translate_x", 0.0), ("translate_y", 0.0)]


@pytest.mark.parametrize("op, magnitude", NEUTRAL, ids=[n[0] for n in NEUTRAL])
def test_op_at_zero_strength_is_the_identity(op, magnitude):
    x = images01()
    # resampling through the identity map lands on pixel centres only up to float rounding
    tolerance = 1e-6 if op in GEOMETRIC else 0
    torch.testing.assert_close(run_op(x, op, magnitude), x, rtol=0, atol=tolerance)


def test_each_image_gets_its_own_op():
    x = images01(len(OPS))
    magnitudes = {"posterize": 3.0, "solarize": 0.4, "rotate": 40.0, "shear_x": 0.3, "shear_y": -0.3,
                  "translate_x": 5.0, "translate_y": -4.0, "brightness": 0.5, "color": -0.5,
                  "contrast": 0.5, "sharpness": 0.5}
    m = torch.tensor([magnitudes.get(op, 0.0) for op in OPS])
    together = apply_ops(x, torch.arange(len(OPS)), m)
    for i, op in enumerate(OPS):
        torch.testing.assert_close(together[i:i + 1], run_op(x[i:i + 1], op, float(m[i])), rtol=0, atol=0)


# ---------------------------------------------------------------------------------------------
# TrivialAugment: the draws
# ---------------------------------------------------------------------------------------------


def test_op_choice_is_uniform_and_magnitudes_span_their_ranges():
    n = 28_000
    ops, magnitude = draw_ops(n, 32, 32, gen(6))
    counts = Counter(ops.tolist())
    expected = n / len(OPS)
    spread = 5 * math.sqrt(expected * (1 - 1 / len(OPS)))  # five standard deviations of a count
    assert sorted(counts) == list(range(len(OPS)))
    assert all(abs(counts[i] - expected) < spread for i in range(len(OPS))), counts

    def of(op):
        return magnitude[ops == OP_INDEX[op]]

    for op, top in [("brightness", 0.99), ("color", 0.99), ("rotate", 135.0), ("shear_x", 0.99), ("translate_y", 32.0)]:
        m = of(op)
        assert float(m.abs().max()) == pytest.approx(top, rel=1e-6)  # the full-strength bin is drawn
        assert float(m.min()) < 0 < float(m.max())  # both signs
        assert 0.4 < float((m > 0).float().mean()) < 0.6
    assert set(of("posterize").tolist()) == set(range(2, 9))
    assert set(of("translate_x").tolist()) <= set(range(-32, 33))
    solarize = of("solarize")
    assert float(solarize.min()) == 0.0 and float(solarize.max()) == 1.0
    # the 31 strength levels are equally likely: rotation angles fall in 61 signed values
    assert len(set(of("rotate").tolist())) == 61
    # translations scale with their own axis on a non-square image
    ops, magnitude = draw_ops(n, 24, 40, gen(6))
    assert float(magnitude[ops == OP_INDEX["translate_x"]].abs().max()) == 40
    assert float(magnitude[ops == OP_INDEX["translate_y"]].abs().max()) == 24


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_trivial_augment_keeps_shape_dtype_device_and_range(device, dtype):
    x = images01(64, device=device).to(dtype)
    out = trivial_augment(x, gen(7, device))
    assert out.shape == x.shape and out.dtype == dtype and out.device == x.device
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    changed = (out != x).flatten(1).any(dim=1).float().mean()
    assert 0.6 < float(changed) < 1  # most images change; identity (and posterize at 8 bits, ...) do not


# ---------------------------------------------------------------------------------------------
# random rotation: torchvision's RandomRotation, per image
# ---------------------------------------------------------------------------------------------


def rotation_angles(n: int, degrees: float, seed: int) -> list[float]:
    """The angles random_rotation draws from a generator seeded with `seed`."""
    return ((2 * torch.rand(n, generator=gen(seed)) - 1) * degrees).tolist()


@pytest.mark.parametrize("degrees", [15.0, 90.0])
def test_random_rotation_is_torchvisions_rotate_at_each_images_angle(degrees):
    x = images01(8)
    angles = rotation_angles(8, degrees, 21)
    # RandomRotation's defaults: nearest resampling, black fill, about the centre. Nearest picks the
    # same source pixel unless a sampling point lies within float error (~1e-6 pixel) of a pixel
    # boundary: none does at these angles, so the match is exact
    expected = torch.stack([TF.rotate(img, a, interpolation=NEAREST) for img, a in zip(x, angles)])
    assert torch.equal(random_rotation(x, degrees, gen(21)), expected)
    bilinear = torch.stack([TF.rotate(img, a, interpolation=BILINEAR) for img, a in zip(x, angles)])
    torch.testing.assert_close(random_rotation(x, degrees, gen(21), mode="bilinear"), bilinear, rtol=0, atol=1e-5)


def test_rotation_angles_are_uniform_both_ways_and_per_image():
    angles = torch.tensor(rotation_angles(20_000, 15.0, 22))
    assert float(angles.abs().max()) <= 15.0 and float(angles.min()) < -14.9 and float(angles.max()) > 14.9
    assert abs(float(angles.mean())) < 0.2  # sd of the mean of 20,000 uniform draws: 0.06 degrees
    assert float((angles.abs() < 7.5).float().mean()) == pytest.approx(0.5, abs=0.02)
    x = images01(1).expand(6, -1, -1, -1)  # the same image six times: six different rotations
    out = random_rotation(x, 15.0, gen(23))
    assert len({tuple(img.flatten().tolist()) for img in out}) == 6


def test_rotation_in_a_normalized_batch_fills_with_black_pixels():
    x01 = images01(8)
    mean, std = torch.tensor([0.5, 0.48, 0.44]).view(1, 3, 1, 1), torch.tensor([0.27, 0.26, 0.28]).view(1, 3, 1, 1)
    y = torch.zeros(8, dtype=torch.long)
    out, _ = augment_batch((x01 - mean) / std, y, AugmentSpec(rotate_degrees=45.0), mean, std, NUM_CLASSES, 0.0,
                           gen(24))
    pixels = out * std + mean
    torch.testing.assert_close(pixels, random_rotation(x01, 45.0, gen(24)), rtol=0, atol=1e-6)
    corners = pixels[:, :, 0, 0]  # a 45-degree turn leaves every corner uncovered
    torch.testing.assert_close(corners, torch.zeros_like(corners), rtol=0, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# determinism: the generator decides everything
# ---------------------------------------------------------------------------------------------

EVERYTHING = AugmentSpec(rotate_degrees=15.0, trivial_augment=True, mixup_alpha=0.8, cutmix_alpha=1.0, mix_prob=1.0,
                         switch_prob=0.5)


def augment_all(x, y, seed, device, spec=EVERYTHING):
    mean = torch.tensor([0.5, 0.48, 0.44], device=device).view(1, 3, 1, 1)
    std = torch.tensor([0.27, 0.26, 0.28], device=device).view(1, 3, 1, 1)
    return augment_batch(x, y, spec, mean, std, NUM_CLASSES, 0.1, gen(seed, device))


@pytest.mark.parametrize("device", DEVICES)
def test_same_generator_state_gives_identical_output_and_another_seed_differs(device):
    x01 = images01(32, device=device)
    x, y = (x01 - 0.5) / 0.25, (torch.arange(32) % NUM_CLASSES).to(device)
    global_state = torch.get_rng_state()
    first, second, other = (augment_all(x, y, seed, device) for seed in (11, 11, 12))
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    assert not torch.equal(first[0], other[0]) and not torch.equal(first[1], other[1])
    assert torch.equal(trivial_augment(x01, gen(3, device)), trivial_augment(x01, gen(3, device)))
    assert not torch.equal(trivial_augment(x01, gen(3, device)), trivial_augment(x01, gen(4, device)))
    for per_sample in (False, True):
        a, b = (mix(x, y, NUM_CLASSES, gen(5, device), per_sample=per_sample) for _ in range(2))
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert torch.equal(torch.get_rng_state(), global_state)  # the global RNG was never drawn from


def test_a_generator_advances_so_consecutive_batches_differ():
    x01 = images01(16)
    g = gen(0)
    assert not torch.equal(trivial_augment(x01, g), trivial_augment(x01, g))


# ---------------------------------------------------------------------------------------------
# the spec and the call the training loop makes
# ---------------------------------------------------------------------------------------------


def test_spec_from_params_defaults_and_refusals():
    assert AugmentSpec.from_params({}) == AugmentSpec()
    assert not AugmentSpec().mixes and not AugmentSpec().trivial_augment and AugmentSpec().crop_flip
    spec = AugmentSpec.from_params({"crop_flip": True, "rotate_degrees": 15.0, "trivial_augment": True,
                                    "mixup_alpha": 0.8, "cutmix_alpha": 1.0, "mix_prob": 1.0, "switch_prob": 0.5})
    assert spec == EVERYTHING and spec.mixes
    assert not AugmentSpec.from_params({"mixup_alpha": 0.8, "mix_prob": 0.0}).mixes
    with pytest.raises(ValueError, match="mixup_alfa"):
        AugmentSpec.from_params({"mixup_alfa": 0.8})
    bad_values = ({"mixup_alpha": -1.0}, {"mix_prob": 1.5}, {"switch_prob": float("nan")},
                  {"cutmix_alpha": float("inf")}, {"rotate_degrees": -5.0}, {"rotate_degrees": 200.0},
                  {"rotate_degrees": float("nan")})
    for bad in bad_values:
        with pytest.raises(ValueError):
            AugmentSpec.from_params(bad)


def test_augment_batch_with_nothing_on_is_the_plain_batch_and_loss():
    x, y = batch()
    out, targets = augment_all(x, y, 0, "cpu", AugmentSpec())
    assert out is x
    logits = torch.randn(16, NUM_CLASSES, generator=gen(8))
    torch.testing.assert_close(soft_cross_entropy(logits, targets), F.cross_entropy(logits, y, label_smoothing=0.1))


def test_augment_batch_trivial_augment_works_in_pixel_units():
    x01 = images01(32)
    mean, std = torch.tensor([0.5, 0.48, 0.44]).view(1, 3, 1, 1), torch.tensor([0.27, 0.26, 0.28]).view(1, 3, 1, 1)
    spec = AugmentSpec(trivial_augment=True)
    y = torch.zeros(32, dtype=torch.long)
    out, _ = augment_batch((x01 - mean) / std, y, spec, mean, std, NUM_CLASSES, 0.0, gen(9))
    # the same draws on the pixels directly: equal once normalized back (up to float rounding)
    torch.testing.assert_close(out * std + mean, trivial_augment(x01, gen(9)), rtol=0, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# no per-image loop, no host sync
# ---------------------------------------------------------------------------------------------

# ops that read a value back to the host, or whose output shape depends on the data
HOST_SYNCS = {"_local_scalar_dense", "is_nonzero", "item", "nonzero", "masked_select", "_unique2", "unique_dim",
              "unique_consecutive", "equal", "allclose", "repeat_interleave", "masked_scatter"}


class RecordOps(TorchDispatchMode):
    """Names every ATen op that runs under it, in order."""

    def __init__(self):
        super().__init__()
        self.names: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.append(func.overloadpacket.__name__)
        return func(*args, **(kwargs or {}))


def ops_run(n: int) -> list[str]:
    x01 = images01(n)
    x, y = (x01 - 0.5) / 0.25, torch.arange(n) % NUM_CLASSES
    with RecordOps() as recorder:
        augment_all(x, y, 0, "cpu")
        mix(x, y, NUM_CLASSES, gen(0), per_sample=True)
    return recorder.names


def test_the_work_does_not_grow_with_the_batch_and_never_reads_back():
    small, large = ops_run(4), ops_run(48)
    assert small == large  # the same ops in the same order: no Python loop over images
    assert {"grid_sampler_2d", "sort", "searchsorted", "_standard_gamma"} <= set(small)  # the recorder saw the work
    assert not HOST_SYNCS & set(small), HOST_SYNCS & set(small)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_no_synchronizing_cuda_call_in_the_batch_path():
    x01 = images01(64, device="cuda")
    x, y = (x01 - 0.5) / 0.25, (torch.arange(64) % NUM_CLASSES).cuda()
    mean = torch.full((1, 3, 1, 1), 0.5, device="cuda")
    std = torch.full((1, 3, 1, 1), 0.25, device="cuda")
    generator = gen(0, "cuda")
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for spec in (EVERYTHING, AugmentSpec(cutmix_alpha=1.0), AugmentSpec(mixup_alpha=0.2, mix_prob=0.5)):
            out, targets = augment_batch(x, y, spec, mean, std, NUM_CLASSES, 0.1, generator)
        mix(x, y, NUM_CLASSES, generator, per_sample=True)
        soft_cross_entropy(out.mean(dim=(2, 3)).repeat(1, 4)[:, :NUM_CLASSES], targets)
    finally:
        torch.cuda.set_sync_debug_mode("default")
