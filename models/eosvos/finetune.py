"""First-frame fine-tuning of e-OSVOS: seeded augmentation, the random-stream of the official data
loader, and one step of plain per-neuron SGD with the learned rates (spec §3.2-§3.5).

Per step ``s = seed + epoch + online_step``: ``random``, ``numpy`` and ``torch`` are seeded with
``s``; the official DataLoader then draws one int64 (its base seed) and one per batch element (the
RandomSampler's seed) on the global torch generator; each batch element is augmented with Python's
``random`` (flip, then rotation/scale, re-drawn while the label loses a value); the Mask R-CNN
forward draws the samplers' ``randperm``s.  Reproducing these draws in this order is what makes the
fine-tuning (and the EXTEND jitter of the frames after it) match the official run.
"""
from __future__ import annotations

import random
from typing import Mapping, Sequence

import cv2
import numpy as np
import torch

from models.eosvos.network import MaskRCNN, targets_from_mask

__all__ = ["LOSS_ORDER", "seed_all", "loader_draws", "augment_sample", "training_batch", "sgd_step",
           "finetune_step"]

#: the order in which the official code sums the losses
LOSS_ORDER = ("loss_classifier", "loss_box_reg", "loss_mask", "loss_objectness", "loss_rpn_box_reg")


def seed_all(seed: int) -> None:
    """``random.seed``, ``np.random.seed``, ``torch.manual_seed`` (the official ``set_random_seeds``)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def loader_draws(batch_size: int) -> None:
    """The global-generator draws of iterating the official train loader once: the loader's base
    seed and one RandomSampler seed per batch element (one int64 each)."""
    for _ in range(1 + batch_size):
        torch.empty((), dtype=torch.int64).random_()


def augment_sample(image: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """e-OSVOS's train augmentation of one ``(H,W,3)`` float32 image and ``(H,W)`` float32 label:
    horizontal flip with p=0.5, then rotation in [-30, 30) degrees and scale in [0.75, 1.25) about the
    centre (label nearest, image cubic; rotation/scale re-drawn while the label loses a value)."""
    if random.random() < 0.5:
        image, gt = cv2.flip(image, flipCode=1), cv2.flip(gt, flipCode=1)
    h, w = gt.shape[:2]
    num_labels = len(np.unique(gt))
    while True:
        rot = (30 - -30) * random.random() - (30 - -30) / 2
        sc = (1.25 - 0.75) * random.random() - (1.25 - 0.75) / 2 + 1
        M = cv2.getRotationMatrix2D((w / 2, h / 2), rot, sc)
        aug_gt = cv2.warpAffine(gt, M, (w, h), flags=cv2.INTER_NEAREST)
        if num_labels <= 1 or len(np.unique(aug_gt)) == num_labels:
            break
    return cv2.warpAffine(image, M, (w, h), flags=cv2.INTER_CUBIC), aug_gt


def training_batch(image: np.ndarray, gt: np.ndarray, batch_size: int, augment: bool,
                   dtype: torch.dtype = torch.float32) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """``batch_size`` (augmented) copies of frame 0 as CHW tensors, after the loader's draws."""
    loader_draws(batch_size)
    images, gts = [], []
    for _ in range(batch_size):
        img, lab = (augment_sample(image, gt) if augment else (image, gt))
        images.append(torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).to(dtype))
        gts.append(torch.from_numpy(np.ascontiguousarray(lab)))
    return images, gts


def sgd_step(model: MaskRCNN, loss: torch.Tensor, lrs: Mapping[str, torch.Tensor]) -> None:
    """``p <- p - grad * lr`` for every parameter (rates broadcast per neuron; no momentum)."""
    params = [p for p in model.parameters()]
    names = [n for n, _ in model.named_parameters()]
    grads = torch.autograd.grad(loss, params)
    with torch.no_grad():
        for name, p, g in zip(names, params, grads):
            p.copy_(p - g * lrs[name])


def finetune_step(model: MaskRCNN, lrs: Mapping[str, torch.Tensor], images: Sequence[torch.Tensor],
                  gts: Sequence[torch.Tensor], record: dict | None = None) -> dict[str, float]:
    """One official fine-tuning step on a batch; returns the loss terms (floats) and ``loss``."""
    model.train()
    targets = [targets_from_mask(g) for g in gts]
    with torch.enable_grad():  # also under a caller's no_grad (the harness segments under no_grad)
        losses = model.losses(list(images), targets, record)
        loss = 0
        for k in LOSS_ORDER:
            loss = loss + losses[k]
        sgd_step(model, loss, lrs)
    out = {k: float(losses[k].detach()) for k in LOSS_ORDER}
    out["loss"] = float(loss.detach())
    return out
