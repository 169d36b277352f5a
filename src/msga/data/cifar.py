"""Step 4 of the data: read the extracted CIFAR pickles safely and pack both splits into one
tensor file that records which archive it came from; load it back, checked."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from msga.data import FetchError
from msga.data.format import FOLDER, IMAGE_SHAPE, NUM_CLASSES, SPLITS
from msga.io import atomic_output


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and plain Python values only; anything else is refused."""

    ALLOWED_MODULES = {
        "numpy", "numpy.core.multiarray", "numpy._core.multiarray",
        "numpy.core.numeric", "numpy._core.numeric", "_codecs",
    }

    def find_class(self, module, name):
        if module in self.ALLOWED_MODULES:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR pickle")


def read_pickle(path: str | Path) -> dict:
    with open(path, "rb") as f:
        try:
            obj = _ArrayUnpickler(f, encoding="latin1").load()
        except Exception as err:
            raise FetchError(f"{path} is not a CIFAR pickle: {err}") from err
    if not isinstance(obj, dict):
        raise FetchError(f"{path} holds a {type(obj).__name__}, expected a dict")
    return obj


def _folder(root: str | Path) -> Path:
    root = Path(root)
    return root if root.name == FOLDER else root / FOLDER


def load_split(root: str | Path, split: str) -> tuple:
    """(images uint8 (N, 3, 32, 32), fine labels int64 (N,), class names), in file order."""
    import torch

    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    folder = _folder(root)
    entry = read_pickle(folder / split)
    meta = read_pickle(folder / "meta")
    for key in ("data", "fine_labels"):
        if key not in entry:
            raise FetchError(f"{folder / split} lacks the key {key!r} (keys: {sorted(entry)})")
    if "fine_label_names" not in meta:
        raise FetchError(f"{folder / 'meta'} lacks the key 'fine_label_names'")
    data = np.asarray(entry["data"])
    labels = np.asarray(entry["fine_labels"])
    n = data.shape[0] if data.ndim else 0
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != int(np.prod(IMAGE_SHAPE)):
        raise FetchError(f"{folder / split}: 'data' is {data.dtype} {data.shape}, expected uint8 (N, 3072)")
    if labels.shape != (n,) or (n and (labels.min() < 0 or labels.max() >= NUM_CLASSES)):
        raise FetchError(f"{folder / split}: 'fine_labels' must be {n} integers in [0, {NUM_CLASSES})")
    classes = [str(c) for c in meta["fine_label_names"]]
    if len(classes) != NUM_CLASSES:
        raise FetchError(f"{folder / 'meta'}: {len(classes)} class names, expected {NUM_CLASSES}")
    images = torch.from_numpy(data.reshape(n, *IMAGE_SHAPE).copy())  # (N, 3, 32, 32): rows are channel-major
    return images, torch.from_numpy(labels.astype(np.int64)), classes


def pack(root: str | Path, out: str | Path, dataset_id: str, archive_md5: str) -> Path:
    """Both splits in one tensor file (a few hundred MB that reload in well under a second), with
    the identity of the data: the dataset id the DAG gave it and the md5 of its archive."""
    import torch

    train_x, train_y, classes = load_split(root, "train")
    test_x, test_y, _ = load_split(root, "test")
    payload = {
        "train_images": train_x, "train_labels": train_y,
        "test_images": test_x, "test_labels": test_y,
        "classes": classes,
        "dataset": {"id": dataset_id, "archive_md5": archive_md5},
    }
    with atomic_output(out) as tmp:
        torch.save(payload, tmp)
    return Path(out)


PACKED_KEYS = {"train_images", "train_labels", "test_images", "test_labels", "classes", "dataset"}


def load_packed(path: str | Path) -> dict:
    """The packed tensors; weights_only=True so the file cannot run code."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise FetchError(f"packed data {path} does not exist; run `snakemake data` (or `msga pack`)")
    data = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(data, dict) or set(data) != PACKED_KEYS:
        found = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise FetchError(f"{path} is not a packed CIFAR file of this version (keys {found}); delete it and "
                         "run `snakemake data` to pack it again")
    return data
