"""The metrics every run records, Table 1's among them, and how the paper prints them. Torch-free:
training, the aggregation, the report and the claims all read these names from here."""

from __future__ import annotations

HEADLINE = ("auc", "acc", "precision", "recall")  # the four columns of Table 1, in the paper's order
SCORES = (*HEADLINE, "top5")  # every score a run records: fractions in [0, 1]
LABELS = {"auc": "AUC", "acc": "ACC", "precision": "Precision", "recall": "Recall", "top5": "top-5 ACC"}
DEFINITIONS = {
    "acc": "top-1 accuracy over the test images",
    "auc": "macro one-vs-rest ROC AUC of the softmax probabilities",
    "precision": "macro-averaged precision over the classes",
    "recall": "macro-averaged recall over the classes",
    "top5": "top-5 accuracy over the test images",
}
