"""JHMDB keypoint propagation scored as CRW's ``eval/eval_pck.py`` does (spec jhmdb_vip.md §1.6).

* Predictions are grid coordinates; pixels = ``coord / grid * (W, H)`` with W, H the size of the video's
  first frame.  The reference hard-codes ``grid = 40`` (right only for its 320 crop); here the grid
  the prediction was made on is passed in (``grid_size``), which equals 40 at crop 320.
* Ground truth = ``pos_img - 1`` (0-based pixels).
* Visible(j, t) = the *predicted* x is not negative (not the -1 sentinel): derived from the prediction,
  not from the ground truth.
* Normaliser of frame t = 0.6 x the diagonal of the box around the ground truth of the visible joints.
* Frame 0 is skipped; every other annotated frame counts.  ``d = ||pred - gt|| / normaliser``, one
  list per joint pooled over all frames of all videos.
* PCK_j@a = 100 * #{d <= a} / #d_j (note ``<=``); PCK@a = the unweighted mean over joints of PCK_j.  A
  joint with no distance in the whole set makes the reference divide by zero; here it raises
  :class:`PCKError` naming the joint.

Unit records keep each video's per-joint distances (``pck_dist``) so that a set's PCK pools them.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

__all__ = ["ALPHAS", "REPORTED_ALPHAS", "PCKError", "pixel_predictions", "visible_joints", "box_normaliser",
           "joint_distances", "pck", "pck_curve", "pool", "score_keypoints"]

#: the thresholds eval_pck.py prints; papers quote 0.1 and 0.2
ALPHAS = (0.1, 0.2, 0.3, 0.4, 0.5)
REPORTED_ALPHAS = (0.1, 0.2)


class PCKError(ValueError):
    """PCK cannot be computed as the reference does (a joint without any scored entry, bad shapes)."""


def pixel_predictions(grid: np.ndarray, size: tuple[int, int], grid_size: int | None) -> np.ndarray:
    """(T, J, 2) grid (x, y) -> pixels of an (H, W) frame, in float32 like the reference's ``.dat`` maths.

    ``grid_size`` None: the predictions are pixels already (imported predictions)."""
    grid = np.asarray(grid, dtype=np.float32)
    height, width = size
    out = grid.copy()
    if grid_size is None:
        return out
    out[..., 0] = grid[..., 0] / float(grid_size) * width
    out[..., 1] = grid[..., 1] / float(grid_size) * height
    return out


def visible_joints(grid: np.ndarray) -> np.ndarray:
    """(T, J) bool: the predicted x is not negative."""
    return ~(np.asarray(grid)[..., 0] < 0)


def box_normaliser(gt: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """(T,) 0.6 x the diagonal of the box around the visible joints' ground truth (gt: (T, J, 2) pixels)."""
    gt = np.asarray(gt, dtype=np.float64)
    out = np.zeros(len(gt))
    for t in range(len(gt)):
        pts = gt[t][visible[t]]
        if len(pts) == 0:  # the reference's start values; no distance uses it
            lo, hi = np.array([1e6, 1e6]), np.array([-1.0, -1.0])
        else:
            lo = np.minimum(pts.min(0), 1e6)
            hi = np.maximum(pts.max(0), -1.0)
        out[t] = 0.6 * np.linalg.norm(hi - lo)
    return out


def joint_distances(grid: np.ndarray, gt: np.ndarray, size: tuple[int, int], grid_size: int | None) -> dict:
    """One video: normalised distances per joint over the scored frames.

    grid: (T_pred, J, 2) predicted grid coordinates (-1 = invisible); gt: (T_gt, J, 2) 0-based pixel ground
    truth; the frames scored are 1..T_gt-1 (a prediction for every annotated frame is required).  Returns
    ``dist`` (J lists), ``frames`` (J lists of the frame indices), ``visible`` (T_gt, J), ``norm`` (T_gt,)
    and ``pred_px`` (T_gt, J, 2).
    """
    grid = np.asarray(grid, dtype=np.float32)
    gt = np.asarray(gt, dtype=np.float64)
    if grid.ndim != 3 or gt.ndim != 3 or grid.shape[1:] != gt.shape[1:] or grid.shape[2] != 2:
        raise PCKError(f"prediction {grid.shape} and ground truth {gt.shape} must both be (T, J, 2) with the "
                       "same joints")
    if len(grid) < len(gt):
        raise PCKError(f"{len(gt)} annotated frames but predictions for only {len(grid)}")
    grid = grid[:len(gt)]
    visible = visible_joints(grid)
    px = pixel_predictions(grid, size, grid_size)
    norm = box_normaliser(gt, visible)
    dist: list[list[float]] = [[] for _ in range(gt.shape[1])]
    frames: list[list[int]] = [[] for _ in range(gt.shape[1])]
    for j in range(gt.shape[1]):
        for t in range(1, len(gt)):
            if not visible[t, j]:
                continue
            d = np.linalg.norm(np.subtract([px[t, j, 0], px[t, j, 1]], [gt[t, j, 0], gt[t, j, 1]]))
            dist[j].append(float(d / norm[t]))
            frames[j].append(t)
    return {"dist": dist, "frames": frames, "visible": visible, "norm": norm, "pred_px": px}


def pck(dist: Sequence[Sequence[float]], alpha: float, joint_names: Sequence[str] | None = None) -> tuple[np.ndarray, float]:
    """(per-joint PCK_j, their unweighted mean) in percent; ``dist`` is one pooled list per joint."""
    per_joint = np.zeros(len(dist))
    for j, d in enumerate(dist):
        if len(d) == 0:
            name = joint_names[j] if joint_names else f"joint {j}"
            raise PCKError(f"{name} has no scored entry in the whole set (never visible after frame 0); the "
                           "reference divides by zero here: score more videos together")
        per_joint[j] = 100.0 * int(np.count_nonzero(np.asarray(d, dtype=np.float64) <= alpha)) / len(d)
    return per_joint, float(np.mean(per_joint))


def pck_curve(dist: Sequence[Sequence[float]], alphas: Sequence[float] = ALPHAS,
              joint_names: Sequence[str] | None = None) -> dict[str, float]:
    """``{"0.1": PCK@0.1, ...}`` (mean over joints) for every alpha."""
    return {f"{a:g}": pck(dist, a, joint_names)[1] for a in alphas}


def pool(records: Sequence[Mapping]) -> list[list[float]]:
    """Per-joint distance lists of several videos' ``pck_dist`` fields, concatenated in record order."""
    pooled: list[list[float]] | None = None
    for rec in records:
        d = rec["pck_dist"]
        if pooled is None:
            pooled = [[] for _ in d]
        if len(d) != len(pooled):
            raise PCKError("records disagree on the number of joints")
        for j, values in enumerate(d):
            pooled[j].extend(values)
    return pooled or []


def score_keypoints(grid: np.ndarray, gt: np.ndarray, size: tuple[int, int], grid_size: int | None,
                    joint_names: Sequence[str] | None = None) -> dict:
    """Unit-record fields of one video: ``pck_dist`` (per-joint distances, for pooling), ``pck_frames``,
    ``pck_entries`` and this video alone's ``pck`` curve (None where a joint has no entry)."""
    res = joint_distances(grid, gt, size, grid_size)
    try:
        curve: dict[str, float] | None = pck_curve(res["dist"], joint_names=joint_names)
    except PCKError:
        curve = None  # this video alone cannot be scored; the pooled set may be
    return {"pck_dist": res["dist"], "pck_frames": res["frames"], "pck_entries": sum(map(len, res["dist"])),
            "pck": curve, "PCK@0.1": None if curve is None else curve["0.1"],
            "PCK@0.2": None if curve is None else curve["0.2"]}
