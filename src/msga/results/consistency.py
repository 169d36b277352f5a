"""Is the paper's Table 1 consistent with how its metrics are defined, and what computation could
give its numbers? Torch-free (numpy, pandas).

CIFAR-100's test set holds 100 images of each class, so macro recall over the whole test set
equals top-1 accuracy exactly (recall of class c is its correct share; their mean over equal-size
classes is the overall correct share). The paper's Recall is below its ACC in every row. Macro
metrics averaged over test mini-batches (classes unequally present in each batch, each batch's
macro mean over the classes it holds) differ from ACC; this module computes that on our own runs'
saved predictions, so the report can show whether such an undisclosed computation gives gaps of
the paper's sign and size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from msga.grid.paths import PREDICTIONS
from msga.grid.runs import Run

BATCHES = (64, 128, 256)  # usual evaluation batch sizes


def paper_gaps(paper: pd.DataFrame) -> pd.DataFrame:
    """The paper's ACC - Recall and ACC - Precision per row."""
    return pd.DataFrame({"model": paper["model"], "acc_minus_recall": paper["acc"] - paper["recall"],
                         "acc_minus_precision": paper["acc"] - paper["precision"]})


def macro_recall_precision(labels: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    """Macro recall and precision over the classes seen in labels or predictions (as scikit-learn
    averages them), a class never predicted counting precision 0."""
    classes = np.union1d(labels, pred)
    size = int(classes.max()) + 1
    correct = np.bincount(labels[labels == pred], minlength=size)[classes].astype(float)
    support = np.bincount(labels, minlength=size)[classes].astype(float)
    predicted = np.bincount(pred, minlength=size)[classes].astype(float)
    recall = np.divide(correct, support, out=np.zeros_like(correct), where=support > 0)
    precision = np.divide(correct, predicted, out=np.zeros_like(correct), where=predicted > 0)
    return float(recall.mean()), float(precision.mean())


def per_batch_macro(labels: np.ndarray, pred: np.ndarray, batch: int) -> tuple[float, float]:
    """Macro recall and precision computed on each consecutive test batch (file order, as an
    unshuffled evaluation loop sees them), then averaged over the batches."""
    scores = [macro_recall_precision(labels[i:i + batch], pred[i:i + batch]) for i in range(0, len(labels), batch)]
    recall, precision = np.mean(scores, axis=0)
    return float(recall), float(precision)


def run_gaps(predictions: Path) -> dict:
    """One run's ACC, whole-set macro recall and precision, and the per-batch ones, from its predictions."""
    with np.load(predictions, allow_pickle=False) as saved:
        probs, labels = saved["probs"], saved["labels"]
    pred = probs.argmax(axis=1)
    recall, precision = macro_recall_precision(labels, pred)
    row = {"acc": float(np.mean(pred == labels)), "recall": recall, "precision": precision}
    for batch in BATCHES:
        row[f"recall_batch{batch}"], row[f"precision_batch{batch}"] = per_batch_macro(labels, pred, batch)
    return row


def our_gaps(runs: pd.DataFrame, runs_root: Path) -> pd.DataFrame:
    """Per Table 1 model, means over its seeds of ACC - Recall computed the standard way and per
    batch (and the same for Precision); runs whose predictions cannot be read are left out."""
    rows = []
    table1 = runs[runs["experiment"] == "table1"] if not runs.empty else runs
    for r in table1.to_dict("records"):
        path = Path(Run(r["model"], r["variant"], int(r["seed"])).folder(r["key"], str(runs_root))) / PREDICTIONS
        try:
            rows.append({"model": r["model"], "seed": r["seed"], **run_gaps(path)})
        except (OSError, KeyError, ValueError):
            continue
    columns = ["model", "n_seeds", "acc_minus_recall", "acc_minus_precision",
               *(f"acc_minus_{m}_batch{b}" for b in BATCHES for m in ("recall", "precision"))]
    if not rows:
        return pd.DataFrame(columns=columns)
    df = pd.DataFrame(rows)
    out = pd.DataFrame({"model": df["model"], "acc_minus_recall": df["acc"] - df["recall"],
                        "acc_minus_precision": df["acc"] - df["precision"],
                        **{f"acc_minus_{m}_batch{b}": df["acc"] - df[f"{m}_batch{b}"]
                           for b in BATCHES for m in ("recall", "precision")}})
    means = out.groupby("model", sort=False).mean().reset_index()
    means.insert(1, "n_seeds", df.groupby("model", sort=False)["seed"].nunique().values)
    return means[columns]


def finding(paper: pd.DataFrame, ours: pd.DataFrame) -> str:
    """What the numbers say, in words, from the numbers themselves."""
    gaps = paper_gaps(paper)
    text = (f"The paper's ACC - Recall is {gaps['acc_minus_recall'].min():+.3f} to {gaps['acc_minus_recall'].max():+.3f} "
            "across its rows. Macro recall over CIFAR-100's whole, class-balanced test set equals ACC exactly, so the "
            "paper's Recall is inconsistent with macro recall over the whole test set")
    usable = ours.dropna(subset=[f"acc_minus_recall_batch{b}" for b in BATCHES]) if not ours.empty else ours
    if usable.empty:
        return text + "; no saved predictions were available to test other computations."
    paper_mean = float(gaps["acc_minus_recall"].mean())
    ours_by_batch = {b: float(usable[f"acc_minus_recall_batch{b}"].mean()) for b in BATCHES}
    same_sign = {b: g for b, g in ours_by_batch.items() if np.sign(g) == np.sign(paper_mean) and g != 0}
    close = {b: g for b, g in same_sign.items() if 0.5 <= g / paper_mean <= 2}
    shown = ", ".join(f"{g:+.3f} at batch {b}" for b, g in ours_by_batch.items())
    if close:
        verdict = ("; it is consistent with an undisclosed computation such as macro recall averaged over test "
                   "mini-batches, which on our runs gives ACC - Recall of ")
    elif same_sign:
        verdict = ("; averaging macro recall over test mini-batches gives a gap of the same sign on our runs but "
                   "not of the same size: ")
    else:
        verdict = "; averaging macro recall over test mini-batches does not reproduce it on our runs: "
    return text + verdict + shown + f" (the paper's mean gap: {paper_mean:+.3f})."
