"""The offline fixture: the real CIFAR-100 format, deterministic, and multi-scale by design."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.datasets import CIFAR100
from torchvision.datasets.utils import extract_archive

from msga.data.archive import md5sum
from msga.data.cifar import load_split
from msga.data.synthetic import N_TEXTURES, class_names, render, write_archive


def test_torchvision_reads_the_fixture(tmp_path, fixture_archive, monkeypatch):
    archive, md5 = fixture_archive
    extract_archive(str(archive), str(tmp_path))  # torchvision's own extraction
    folder = tmp_path / "cifar-100-python"
    monkeypatch.setattr(CIFAR100, "tgz_md5", md5)
    monkeypatch.setattr(CIFAR100, "train_list", [["train", md5sum(folder / "train")]])
    monkeypatch.setattr(CIFAR100, "test_list", [["test", md5sum(folder / "test")]])
    monkeypatch.setattr(CIFAR100, "meta", {"filename": "meta", "key": "fine_label_names", "md5": md5sum(folder / "meta")})
    for split, train in (("train", True), ("test", False)):
        ds = CIFAR100(str(tmp_path), train=train, download=False)
        images, labels, classes = load_split(tmp_path, split)
        assert ds.classes == classes == class_names()
        assert torch.equal(torch.from_numpy(ds.data).permute(0, 3, 1, 2), images)  # HWC -> CHW
        assert ds.targets == labels.tolist()


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    a = write_archive(tmp_path / "a.tar.gz", 2, 1, seed=5)[1]
    b = write_archive(tmp_path / "b.tar.gz", 2, 1, seed=5)[1]
    c = write_archive(tmp_path / "c.tar.gz", 2, 1, seed=6)[1]
    assert a == b != c
    assert (tmp_path / "a.tar.gz.md5").read_text().split()[0] == a


def test_class_balance(fixture_archive, tmp_path):
    from msga.data.fetch import fetch

    archive, md5 = fixture_archive
    fetch(tmp_path, tarball=archive, md5=md5)
    _, labels, _ = load_split(tmp_path, "test")
    assert torch.bincount(labels, minlength=100).unique().tolist() == [4]


def _nearest_centroid_accuracy(features: np.ndarray, targets: np.ndarray) -> float:
    """Fit centroids on the first half, score on the second."""
    half = len(targets) // 2
    classes = np.unique(targets)
    centroids = np.stack([features[:half][targets[:half] == c].mean(0) for c in classes])
    dist = ((features[half:, None, :] - centroids[None]) ** 2).sum(-1)
    return float((classes[dist.argmin(1)] == targets[half:]).mean())


@pytest.mark.parametrize("seed", [0])
def test_layout_is_coarse_and_texture_is_fine(seed):
    """A coarse view (8x8 average pooling) tells the layout but not the texture."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(100), 20))
    images = torch.from_numpy(render(labels, rng)).float() / 255
    coarse = torch.nn.functional.avg_pool2d(images.mean(1, keepdim=True), 8).flatten(1)  # (N, 16)
    coarse = (coarse - coarse.mean(1, keepdim=True)) / (coarse.std(1, keepdim=True) + 1e-6)
    layout_acc = _nearest_centroid_accuracy(coarse.numpy(), labels // N_TEXTURES)
    texture_acc = _nearest_centroid_accuracy(coarse.numpy(), labels % N_TEXTURES)
    assert layout_acc > 0.8, layout_acc  # 10 layouts: chance is 0.1
    assert texture_acc < 0.25, texture_acc
    # and the texture IS in the fine scale: the high-frequency energy differs by texture
    fine = images.mean(1) - torch.nn.functional.avg_pool2d(images.mean(1, keepdim=True), 3, 1, 1).squeeze(1)
    spectrum = torch.fft.rfft2(fine).abs().flatten(1)  # (N, 32*17): shift-invariant texture features
    spectrum = spectrum / spectrum.norm(dim=1, keepdim=True)
    assert _nearest_centroid_accuracy(spectrum.numpy(), labels % N_TEXTURES) > 0.6
