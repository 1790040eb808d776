"""VIP part propagation scored as CRW's ``eval/eval_vip.py`` does (spec jhmdb_vip.md §2.6).

* A prediction (any size, e.g. the 560x560 crop) is resized to the ground truth's size with PIL
  ``NEAREST`` (always).
* One 20x20 confusion histogram ``hist[gt, pred]`` over the pixels with ``0 <= gt < 20`` (ground truth
  outside 0..19, e.g. 255, is ignored), summed over **all** frames of all videos, frame 0 included.  A
  predicted id >= 20 corrupts the reference's bincount; here it raises :class:`PartsError`.
* From the histogram: pixel accuracy = trace / sum; per-class accuracy = diag / row sum, mean accuracy =
  nanmean; IoU_c = diag / (row + column - diag), mIoU = nanmean over the 20 classes (a class neither in
  the ground truth nor predicted is NaN and skipped; predicted but absent counts 0); fwIoU =
  sum over classes with ground truth of (row sum / total) * IoU_c.

Unit records keep each video's histogram (``hist``) so that a set's metrics come from their sum.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from PIL import Image

__all__ = ["N_CLASSES", "PartsError", "prediction_at_gt", "confusion", "part_metrics", "pool_hist",
           "score_parts"]

N_CLASSES = 20


class PartsError(ValueError):
    """A prediction the reference cannot score (id out of range, wrong shape)."""


def prediction_at_gt(pred: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 (h, w) prediction -> (H, W) with PIL NEAREST, as eval_vip.py reads it."""
    pred = np.asarray(pred)
    if pred.ndim != 2 or pred.dtype != np.uint8:
        raise PartsError(f"a part prediction must be a uint8 (H, W) label map, got {pred.dtype} {pred.shape}")
    return np.asarray(Image.fromarray(pred).resize((size[1], size[0]), Image.NEAREST))


def confusion(gt: np.ndarray, pred: np.ndarray, n: int = N_CLASSES) -> np.ndarray:
    """(n, n) int64 histogram, rows = ground truth, columns = prediction, over pixels with 0 <= gt < n."""
    gt = np.asarray(gt).astype(np.int64)
    pred = np.asarray(pred).astype(np.int64)
    if gt.shape != pred.shape:
        raise PartsError(f"prediction {pred.shape} and ground truth {gt.shape} differ in size")
    keep = (gt >= 0) & (gt < n)
    bad = pred[keep]
    if bad.size and (bad.max() >= n or bad.min() < 0):
        raise PartsError(f"predicted class id {int(bad.max())} is outside 0..{n - 1} (the reference's "
                         "histogram cannot count it)")
    return np.bincount(n * gt[keep] + pred[keep], minlength=n * n).reshape(n, n)


def part_metrics(hist: np.ndarray) -> dict:
    """pixel_acc, mean_acc, mIoU, fwIoU (fractions) plus per-class ``iou`` / ``class_acc`` (None = NaN)."""
    hist = np.asarray(hist, dtype=np.int64)
    diag = np.diag(hist).astype(np.float64)
    rows = hist.sum(1).astype(np.float64)
    cols = hist.sum(0).astype(np.float64)
    total = float(hist.sum())
    with np.errstate(divide="ignore", invalid="ignore"):
        class_acc = diag / rows
        iou = diag / (rows + cols - diag)
        freq = rows / total
    have = freq > 0

    def _nanmean(x: np.ndarray) -> float | None:
        return None if np.isnan(x).all() else float(np.nanmean(x))

    return {"pixel_acc": float(diag.sum() / total) if total else None, "mean_acc": _nanmean(class_acc),
            "mIoU": _nanmean(iou), "fwIoU": float((freq[have] * iou[have]).sum()) if total else None,
            "iou": [None if np.isnan(v) else float(v) for v in iou],
            "class_acc": [None if np.isnan(v) else float(v) for v in class_acc]}


def pool_hist(records: Sequence[Mapping]) -> np.ndarray:
    """The sum of several videos' ``hist`` fields."""
    total = np.zeros((N_CLASSES, N_CLASSES), np.int64)
    for rec in records:
        total += np.asarray(rec["hist"], dtype=np.int64)
    return total


def score_parts(pred: np.ndarray, gt: np.ndarray, frames: Sequence[int] | None = None) -> dict:
    """Unit-record fields of one video: ``hist`` (20x20 list, for pooling) and this video's metrics.

    pred: (T, h, w) uint8 predictions of every frame (any size; resized to the ground truth with NEAREST);
    gt: (T, H, W) ground-truth class ids; ``frames``: the frames scored (default all, frame 0 included).
    """
    gt = np.asarray(gt)  # pred: any sequence of (h, w) maps (sizes may differ)
    idx = range(len(gt)) if frames is None else frames
    if len(pred) < len(gt):
        raise PartsError(f"{len(gt)} ground-truth frames but predictions for only {len(pred)}")
    hist = np.zeros((N_CLASSES, N_CLASSES), np.int64)
    for t in idx:
        hist += confusion(gt[t], prediction_at_gt(pred[t], gt.shape[1:3]))
    return {"hist": hist.tolist(), **part_metrics(hist)}
