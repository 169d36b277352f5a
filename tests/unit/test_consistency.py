"""The paper-consistency check: macro recall over a balanced set is ACC; per-batch averaging is
computed as scikit-learn would on each batch; the finding follows the numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import precision_score, recall_score

from msga.results import consistency


def _predictions(seed: int, n_classes: int = 20, per_class: int = 10, accuracy: float = 0.6):
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(n_classes), per_class))
    pred = np.where(rng.random(labels.size) < accuracy, labels, rng.integers(0, n_classes, labels.size))
    return labels, pred


@pytest.mark.parametrize("seed", range(3))
def test_macro_recall_over_a_balanced_set_is_accuracy_and_matches_scikit_learn(seed):
    labels, pred = _predictions(seed)
    recall, precision = consistency.macro_recall_precision(labels, pred)
    assert recall == pytest.approx(np.mean(labels == pred), abs=1e-12)
    assert recall == pytest.approx(recall_score(labels, pred, average="macro", zero_division=0))
    assert precision == pytest.approx(precision_score(labels, pred, average="macro", zero_division=0))


@pytest.mark.parametrize("batch", [16, 64])
def test_per_batch_averaging_is_the_mean_of_each_batchs_scikit_learn_score(batch):
    labels, pred = _predictions(7)
    want_r = np.mean([recall_score(labels[i:i + batch], pred[i:i + batch], average="macro", zero_division=0)
                      for i in range(0, labels.size, batch)])
    want_p = np.mean([precision_score(labels[i:i + batch], pred[i:i + batch], average="macro", zero_division=0)
                      for i in range(0, labels.size, batch)])
    assert consistency.per_batch_macro(labels, pred, batch) == pytest.approx((want_r, want_p))
    assert want_r != pytest.approx(np.mean(labels == pred), abs=1e-3)  # per batch, recall is no longer ACC


PAPER = pd.DataFrame({"model": ["a", "b"], "acc": [0.8, 0.9], "recall": [0.78, 0.88], "precision": [0.79, 0.89]})


def _ours(gap: float) -> pd.DataFrame:
    return pd.DataFrame([{"model": "a", **{f"acc_minus_recall_batch{b}": gap for b in consistency.BATCHES}}])


@pytest.mark.parametrize("gap,words", [
    (0.02, "consistent with an undisclosed computation"),
    (0.2, "same sign on our runs but not of the same size"),
    (-0.02, "does not reproduce it"),
])
def test_the_finding_follows_the_numbers(gap, words):
    text = consistency.finding(PAPER, _ours(gap))
    assert "inconsistent with macro recall over the whole test set" in text and words in text


def test_no_predictions_say_so():
    assert "no saved predictions" in consistency.finding(PAPER, pd.DataFrame())


def test_our_gaps_read_each_runs_predictions_from_its_folder(tmp_path):
    """The predictions are found where the run's folder is (msga.grid.paths), under any runs root."""
    from msga.grid.runs import Run
    from msga.results.consistency import our_gaps

    labels = np.repeat(np.arange(4), 5)
    probs = np.eye(4, dtype=np.float32)[labels]
    run = Run("msga", "base", 3)
    folder = Path(run.folder("0123456789ab", str(tmp_path / "elsewhere")))
    folder.mkdir(parents=True)
    np.savez_compressed(folder / "predictions.npz", probs=probs, labels=labels)
    runs = pd.DataFrame([{"experiment": "table1", "model": "msga", "variant": "base", "seed": 3,
                          "key": "0123456789ab"}])
    gaps = our_gaps(runs, tmp_path / "elsewhere")
    assert list(gaps["model"]) == ["msga"] and float(gaps["acc_minus_recall"].iloc[0]) == 0.0
