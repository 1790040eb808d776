"""Validation of the video inputs every model's ``segment`` takes, so all models reject bad input alike."""
from __future__ import annotations

import numpy as np

__all__ = ["check_frames", "check_video"]


def check_frames(frames: np.ndarray) -> np.ndarray:
    """Return ``frames`` as an array after checking it is uint8 RGB (T, H, W, 3)."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    return frames


def check_video(frames: np.ndarray, first_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Check frames (see :func:`check_frames`) and a first-frame label map of the frames' size."""
    frames = check_frames(frames)
    first_mask = np.asarray(first_mask)
    if first_mask.shape != frames.shape[1:3]:
        raise ValueError(f"first_mask shape {first_mask.shape} does not match frames {frames.shape[1:3]}")
    return frames, first_mask
