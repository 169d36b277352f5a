"""Metrics of Table 1 from test-set probabilities, with torchmetrics.

ACC is top-1 accuracy over images (average="micro": torchmetrics' MulticlassAccuracy would
otherwise average per class); AUC is the macro one-vs-rest ROC AUC of the softmax
probabilities; Precision and Recall are macro averages over classes.
"""

from __future__ import annotations

import torch
from torchmetrics.functional.classification import (
    multiclass_accuracy,
    multiclass_auroc,
    multiclass_confusion_matrix,
    multiclass_precision,
    multiclass_recall,
)



def compute_metrics(probs: torch.Tensor, labels: torch.Tensor) -> dict:
    """probs (N, C) float (rows sum to 1), labels (N,) int -> metrics; Python floats and lists."""
    probs = probs.detach().float().cpu()
    labels = labels.detach().long().cpu()
    c = probs.shape[1]
    kw = {"num_classes": c}
    return {
        "acc": float(multiclass_accuracy(probs, labels, average="micro", **kw)),
        "auc": float(multiclass_auroc(probs, labels, average="macro", thresholds=None, **kw)),
        "precision": float(multiclass_precision(probs, labels, average="macro", **kw)),
        "recall": float(multiclass_recall(probs, labels, average="macro", **kw)),
        "top5": float(multiclass_accuracy(probs, labels, average="micro", top_k=min(5, c), **kw)),
        "per_class_recall": multiclass_recall(probs, labels, average="none", **kw).tolist(),
        "confusion_matrix": multiclass_confusion_matrix(probs, labels, **kw).tolist(),
    }
