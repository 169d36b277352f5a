"""A trained model on a split: its softmax probabilities, then the metrics of Table 1 from them
(torchmetrics).

ACC is top-1 accuracy over images (average="micro": torchmetrics' MulticlassAccuracy would
otherwise average per class); AUC is the macro one-vs-rest ROC AUC of the softmax
probabilities; Precision and Recall are macro averages over classes.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from msga.data.loader import DeviceData


@torch.no_grad()
def predict(model: nn.Module, data: DeviceData, batch_size: int) -> torch.Tensor:
    """Softmax probabilities of the whole split, float32 on the device. (N, C)

    In float32 throughout, not under bf16 autocast: bf16 logits keep 8 bits of mantissa, which
    ties the top classes of some images and coarsens the ranking the AUC is computed from.
    """
    model.eval()
    out = []
    for x, _ in data.eval_batches(batch_size):
        x = x.contiguous(memory_format=torch.channels_last)
        out.append(model(x).float().softmax(dim=-1))
    model.train()
    return torch.cat(out)


def compute_metrics(probs: torch.Tensor, labels: torch.Tensor) -> dict:
    """probs (N, C) float (rows sum to 1), labels (N,) int -> metrics; Python floats and lists."""
    # torchmetrics is imported once training is done: a job pays for it once, at its end
    from torchmetrics.functional.classification import (
        multiclass_accuracy, multiclass_auroc, multiclass_confusion_matrix, multiclass_precision, multiclass_recall,
    )

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
