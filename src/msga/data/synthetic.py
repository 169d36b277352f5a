"""The offline fixture: a CIFAR-100-format archive whose classes need two scales to tell apart.

Class c = 10 * layout + texture. The LAYOUT is a coarse 4x4 on/off grid of 8-pixel cells that
spans the whole image (only a global view sees it); the TEXTURE is a fine grating or checker of
3-6 pixel period inside the "on" cells (only a high-resolution local view sees it). Colours,
phases, a small shift and pixel noise vary per image and carry no class information, so a
model must combine both scales to score well: the property the paper's model claims to exploit.

The archive holds exactly the pickles of the real one (keys, dtypes, layout), so every line of
the fetch/verify/extract/load path runs on it; the same seed writes the same bytes.
"""

from __future__ import annotations

import gzip
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np

from msga.data.archive import md5sum
from msga.data.format import FOLDER, NUM_CLASSES
from msga.infra.atomic import atomic_output, write_text_atomic

N_LAYOUTS = N_TEXTURES = 10
DEFINITION_SEED = 20240601  # the classes are the same task for every data seed
# Layouts and textures are mirror-symmetric, so the horizontal flip of training augmentation
# keeps every image in its class, as it does for natural images.
TEXTURES = [  # (kind, orientation in degrees, period in pixels)
    ("grating", 0, 3), ("grating", 0, 4), ("grating", 0, 6),
    ("grating", 90, 3), ("grating", 90, 4), ("grating", 90, 6),
    ("checker", 0, 3), ("checker", 0, 4), ("checker", 0, 6),
    ("plaid", 0, 4),
]


def _layouts() -> np.ndarray:
    """10 distinct left-right symmetric 4x4 binary grids with 6-10 cells on. (10, 4, 4)"""
    rng = np.random.default_rng(DEFINITION_SEED)
    grids: list[np.ndarray] = []
    while len(grids) < N_LAYOUTS:
        half = rng.random((4, 2)) < 0.5
        g = np.concatenate([half, half[:, ::-1]], axis=1)  # (4, 4): mirrored columns
        # distinct by at least 4 cells, so layouts differ at the coarse scale, not by a pixel
        if 6 <= g.sum() <= 10 and all((g != h).sum() >= 4 for h in grids):
            grids.append(g)
    return np.stack(grids).astype(np.float32)


def class_names() -> list[str]:
    names = []
    for layout in range(N_LAYOUTS):
        for kind, angle, period in TEXTURES:
            names.append(f"layout{layout}_{kind}{angle}p{period}")
    return names


def _texture(kind: str, angle: float, period: float, phase: np.ndarray) -> np.ndarray:
    """(B, 32, 32) in [-1, 1] with a random phase per image."""
    y, x = np.mgrid[0:32, 0:32].astype(np.float32)
    p = phase[:, None, None]
    if kind == "checker":
        return np.sign(np.sin(2 * np.pi * x / period + p) * np.sin(2 * np.pi * y / period + p)).astype(np.float32)
    if kind == "plaid":
        return (0.5 * np.sin(2 * np.pi * x / period + p) + 0.5 * np.sin(2 * np.pi * y / period + p)).astype(np.float32)
    theta = np.deg2rad(angle)
    return np.sin(2 * np.pi * (x * np.cos(theta) + y * np.sin(theta)) / period + p).astype(np.float32)


def render(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Images for the given fine labels: uint8 (B, 3, 32, 32)."""
    b = len(labels)
    layout_of, texture_of = labels // N_TEXTURES, labels % N_TEXTURES
    grids = _layouts()[layout_of]  # (B, 4, 4)
    mask = grids.repeat(8, axis=1).repeat(8, axis=2)  # (B, 32, 32): 8-pixel cells
    shifts = rng.integers(-2, 3, size=(b, 2))
    for i in range(b):  # a small translation, so the layout is a pattern, not fixed pixels
        mask[i] = np.roll(mask[i], tuple(shifts[i]), axis=(0, 1))
    texture = np.empty((b, 32, 32), np.float32)
    phase = rng.uniform(0, 2 * np.pi, size=b).astype(np.float32)
    for t, (kind, angle, period) in enumerate(TEXTURES):
        sel = texture_of == t
        if sel.any():
            texture[sel] = _texture(kind, angle, period, phase[sel])
    background = rng.uniform(0.0, 0.45, size=(b, 3, 1, 1)).astype(np.float32)
    foreground = rng.uniform(0.55, 0.8, size=(b, 3, 1, 1)).astype(np.float32)
    # "on" cells: the foreground colour plus the texture; "off" cells: flat background
    fg = foreground + 0.2 * texture[:, None]  # (B, 3, 32, 32)
    img = np.where(mask[:, None] > 0, fg, background)
    img = img + rng.normal(0, 0.06, size=img.shape).astype(np.float32)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def make_split(per_class: int, rng: np.random.Generator, prefix: str) -> dict:
    """One split as the CIFAR pickle dict, shuffled like the real files."""
    labels = rng.permutation(np.repeat(np.arange(NUM_CLASSES), per_class))
    images = np.concatenate([render(chunk, rng) for chunk in np.array_split(labels, max(1, len(labels) // 5000))])
    return {
        "filenames": [f"{prefix}_{i:06d}.png" for i in range(len(labels))],
        "batch_label": f"{prefix} batch 1 of 1",
        "fine_labels": labels.tolist(),
        "coarse_labels": (labels // 5).tolist(),
        "data": images.reshape(len(labels), -1),  # (N, 3072): channel-major rows, as in CIFAR
    }


def _add(tar: tarfile.TarFile, name: str, obj) -> None:
    payload = pickle.dumps(obj, protocol=2)
    info = tarfile.TarInfo(f"{FOLDER}/{name}")
    info.size, info.mtime, info.mode = len(payload), 0, 0o644
    tar.addfile(info, io.BytesIO(payload))


def write_archive(archive: str | Path, train_per_class: int = 500, test_per_class: int = 100,
                  seed: int = 0) -> tuple[Path, str]:
    """Write the archive (a .tar.gz) and its md5 file beside it (ARCHIVE.md5); returns (path, md5)."""
    archive = Path(archive)
    rng = np.random.default_rng(seed)
    train = make_split(train_per_class, rng, "synthetic_train")
    test = make_split(test_per_class, rng, "synthetic_test")
    meta = {
        "fine_label_names": class_names(),
        "coarse_label_names": [f"layout{i // 2}_half{i % 2}" for i in range(NUM_CLASSES // 5)],
    }
    with atomic_output(archive) as tmp:
        # no name and mtime=0 in the gzip and tar headers: the same seed gives the same bytes (md5)
        with open(tmp, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0, compresslevel=6) as gz:
            with tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as tar:
                dir_info = tarfile.TarInfo(FOLDER)
                dir_info.type, dir_info.mode, dir_info.mtime = tarfile.DIRTYPE, 0o755, 0
                tar.addfile(dir_info)
                _add(tar, "meta", meta)
                _add(tar, "test", test)
                _add(tar, "train", train)
    digest = md5sum(archive)
    write_text_atomic(archive.with_name(archive.name + ".md5"), f"{digest}  {archive.name}\n")
    return archive, digest
