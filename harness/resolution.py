"""The official evaluation's resolution rules (spec stcn_ttt.md section 3).

Models see frames whose shorter side is 480 (bicubic; the first-frame mask nearest), which is a no-op
for DAVIS / DAVIS-C at 480p; their probabilities are resized back (bilinear, align_corners False) to
the annotation size before the argmax, so scores are always computed at the annotations' resolution.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["model_size", "resize_frames", "resize_mask", "probs_to_labels"]


def model_size(height: int, width: int, short_side: int | None) -> tuple[int, int]:
    """Size fed to the model: shorter side ``short_side`` (None = unchanged), long side truncated
    as torchvision's ``Resize(int)`` does."""
    if short_side is None or min(height, width) == short_side:
        return height, width
    if height <= width:
        return short_side, int(short_side * width / height)
    return int(short_side * height / width), short_side


def resize_frames(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bicubic resize of uint8 RGB frames (T, H, W, 3); rounded and clipped back to uint8."""
    if tuple(frames.shape[1:3]) == tuple(size):
        return frames
    out = []
    for start in range(0, len(frames), 16):  # chunks bound the float copy's memory
        x = torch.from_numpy(np.ascontiguousarray(frames[start:start + 16])).permute(0, 3, 1, 2).float()
        y = F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True)
        out.append(y.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy())
    return np.concatenate(out)


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a (H, W) label map (pixel-centre sampling, as PIL's NEAREST)."""
    if tuple(mask.shape) == tuple(size):
        return mask
    x = torch.from_numpy(np.ascontiguousarray(mask))[None, None].float()
    return F.interpolate(x, size=size, mode="nearest-exact")[0, 0].to(torch.uint8).numpy()


def probs_to_labels(probs: np.ndarray | torch.Tensor, object_ids: Sequence[int],
                    size: tuple[int, int] | None = None) -> np.ndarray:
    """(K+1, T, h, w) probabilities -> (T, H, W) uint8 label map holding the original object ids.

    Channel 0 is background and channel i the i-th id of ``object_ids`` (sorted first-frame labels).
    When ``size`` differs from (h, w) the probabilities are resized bilinearly first, as the official
    code does before its argmax.
    """
    probs = torch.as_tensor(probs)
    if probs.ndim != 4 or probs.shape[0] != len(object_ids) + 1:
        raise ValueError(f"expected probabilities of shape (K+1={len(object_ids) + 1}, T, H, W), "
                         f"got {tuple(probs.shape)}")
    lut = torch.tensor([0, *object_ids], dtype=torch.uint8)
    size = tuple(size) if size is not None else tuple(probs.shape[2:])
    out = np.empty((probs.shape[1], *size), dtype=np.uint8)
    for t in range(probs.shape[1]):
        p = probs[:, t].float()
        if tuple(p.shape[1:]) != size:
            p = F.interpolate(p[None], size=size, mode="bilinear", align_corners=False)[0]
        out[t] = lut[p.argmax(0).cpu()].numpy()
    return out
