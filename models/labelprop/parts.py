"""CRW's VIP human-part propagation (spec jhmdb_vip.md §2.2-§2.5), with its label-resize mode named.

The reference resizes the frame-0 label image to the ``crop``x``crop`` square with OpenCV *bilinear*
interpolation: the intended ``INTER_NEAREST`` is passed in the ``dst`` slot.  Class ids are then
interpolated at every part boundary and spurious intermediate ids appear (face 13 next to background 0
gives every id 1..12).  Both behaviours are offered, by name:

``released``  bilinear label resize, what the released CRW code does (the default: most likely what
              produced the published number, but that is not verified);
``nearest``   the intended nearest-neighbour resize (what UVC and VFS do).

Label set = the sorted distinct ids of the resized frame-0 labels (spurious ids included); one channel
per id, one-hot, bilinear to the grid; after propagation each map is bilinearly upsampled to the crop,
argmax'ed (first channel wins ties) and mapped to its id.  Frame 0's output is its own down/up-sampled
label map.  The scorer (``harness.parts``) resizes the crop-size prediction to the ground truth's size.
"""
from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import torch

from models.labelprop.crop import encode_square
from models.labelprop.propagation import labels_to_grid, propagate_soft, soft_to_labels, upsample_soft

__all__ = ["LABEL_MODES", "VIP_CLASSES", "PART_SETTINGS", "resize_labels", "part_label_set", "propagate_parts"]

LABEL_MODES = ("released", "nearest")

#: VIP's 20 classes, by id
VIP_CLASSES = ("background", "hat", "hair", "sun-glasses", "upper-clothes", "dress", "coat", "socks", "pants",
               "gloves", "scarf", "skirt", "torso-skin", "face", "right-arm", "left-arm", "right-leg", "left-leg",
               "right-shoe", "left-shoe")

#: the protocol's settings (CRW paper, supplementary E; reference CLI for k and radius)
PART_SETTINGS = {"crop": 560, "context": 4, "k": 10, "radius": 12.0, "temperature": 0.07,
                 "label_mode": "released"}


def resize_labels(labels: np.ndarray, crop: int, mode: str = "released") -> np.ndarray:
    """uint8 (H, W) class ids -> (crop, crop): bilinear (``released``) or nearest (``nearest``)."""
    if mode not in LABEL_MODES:
        raise ValueError(f"unknown label mode {mode!r}; choose one of {', '.join(LABEL_MODES)}")
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.dtype != np.uint8:
        raise ValueError(f"labels must be a uint8 (H, W) map, got {labels.dtype} {labels.shape}")
    interpolation = cv2.INTER_LINEAR if mode == "released" else cv2.INTER_NEAREST
    return cv2.resize(labels, (crop, crop), interpolation=interpolation)


def part_label_set(resized: np.ndarray) -> np.ndarray:
    """Channel -> class id: every distinct id of the resized frame-0 labels, ascending (uint8)."""
    return np.unique(resized).astype(np.uint8)


def propagate_parts(model, frames: np.ndarray, labels0: np.ndarray, *, crop: int = 560, label_mode: str = "released",
                    k: int = 10, radius: float | None = 12.0, context: int = 4, temperature: float = 0.07,
                    return_soft: bool = False, return_neighbours: bool = False,
                    progress: bool = False) -> dict[str, Any]:
    """Propagate frame 0's part labels through a video with ``model`` (a ``models.labelprop`` model).

    frames: uint8 (T, H, W, 3); labels0: uint8 (H, W) class ids of frame 0.  Returns ``labels`` (T, crop,
    crop) uint8 predictions at the crop size, ``label_set`` (K,) and ``resized_label0``; with
    ``return_soft`` also ``soft`` (T, g, g, K); with ``return_neighbours`` the top-k ``topk_weight`` /
    ``topk_frame`` / ``topk_pos`` (T, k, g*g) of ``propagate_soft``.
    """
    frames = np.asarray(frames)
    resized = resize_labels(labels0, crop, label_mode)
    values = part_label_set(resized)
    feats = encode_square(model, frames, crop)
    first = torch.from_numpy(labels_to_grid(resized, values.astype(np.int64), tuple(feats.shape[-2:])))
    res = propagate_soft(feats, first, k=k, radius=radius, context=context, temperature=temperature,
                         return_neighbours=return_neighbours, progress=progress)
    soft = res["soft"].cpu().numpy()
    labels = np.stack([soft_to_labels(upsample_soft(s, (crop, crop)), values) for s in soft])
    out: dict[str, Any] = {"labels": labels, "label_set": values, "resized_label0": resized}
    if return_soft:
        out["soft"] = soft
    out.update({key: res[key].cpu().numpy() for key in ("topk_weight", "topk_frame", "topk_pos") if key in res})
    return out
