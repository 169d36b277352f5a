"""The metric names of Table 1 and how the paper prints them. Torch-free: the aggregation, the
report and the claims read these without importing any training code."""

from __future__ import annotations

HEADLINE = ("auc", "acc", "precision", "recall")  # the four columns of Table 1, in the paper's order
LABELS = {"auc": "AUC", "acc": "ACC", "precision": "Precision", "recall": "Recall", "top5": "top-5 ACC"}
DEFINITIONS = {
    "acc": "top-1 accuracy over the test images",
    "auc": "macro one-vs-rest ROC AUC of the softmax probabilities",
    "precision": "macro-averaged precision over the classes",
    "recall": "macro-averaged recall over the classes",
    "top5": "top-5 accuracy over the test images",
}
