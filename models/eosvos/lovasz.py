"""Binary Lovász hinge loss (Berman et al., CVPR 2018) as e-OSVOS's mask loss uses it (spec §3.5).

Per RoI: drop pixels labelled ``ignore``; ``errors = 1 - logit * (2t - 1)``; sort errors descending;
the loss is ``relu(errors_sorted) · Δ Jaccard`` with the Jaccard increments of the sorted targets;
the batch loss is the mean over RoIs, accumulated in RoI order.  Targets may be fractional (the
RoIAligned GT masks).  Arithmetic stays in the logits' dtype (the official code's hard float32
casts are no-ops for a float32 model).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["lovasz_grad", "lovasz_hinge_flat", "lovasz_hinge"]


def lovasz_grad(gt_sorted: torch.Tensor) -> torch.Tensor:
    """Jaccard-loss increments along targets sorted by decreasing error."""
    gts = gt_sorted.sum()
    intersection = gts - gt_sorted.cumsum(0)
    union = gts + (1 - gt_sorted).cumsum(0)
    jaccard = 1.0 - intersection / union
    if gt_sorted.numel() > 1:
        jaccard[1:] = jaccard[1:] - jaccard[:-1]
    return jaccard


def lovasz_hinge_flat(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    if labels.numel() == 0:
        return logits.sum() * 0.0
    signs = 2.0 * labels.to(logits.dtype) - 1.0
    errors = 1.0 - logits * signs
    errors_sorted, perm = torch.sort(errors, dim=0, descending=True)
    grad = lovasz_grad(labels[perm].to(logits.dtype))
    return torch.dot(F.relu(errors_sorted), grad)


def lovasz_hinge(logits: torch.Tensor, labels: torch.Tensor, ignore: float | None = None) -> torch.Tensor:
    """Mean over the first dimension of the per-image flat Lovász hinge (``per_image=True``)."""
    acc = None
    n = 0
    for log, lab in zip(logits, labels):
        s, t = log.reshape(-1), lab.reshape(-1)
        if ignore is not None:
            valid = t != ignore
            s, t = s[valid], t[valid]
        loss = lovasz_hinge_flat(s, t)
        acc = loss if acc is None else acc + loss
        n += 1
    if acc is None:
        return logits.sum() * 0.0
    return acc if n == 1 else acc / n
