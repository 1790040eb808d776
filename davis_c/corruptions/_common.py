"""Helpers shared by the corruption modules: input checks and the official float -> uint8 conversion."""
from __future__ import annotations

import numpy as np

__all__ = ["to_uint8", "check_frames", "check_frame"]


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Convert a float image in [0, 255] the way ``cv2.imwrite`` does: round half to even, then saturate.

    The official script hands float arrays to OpenCV's JPEG writer; truncating (``astype(uint8)``) would
    shift about half of all values down by one.
    """
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def check_frames(frames: np.ndarray, what: str = "frames") -> np.ndarray:
    """Validate a video as uint8 RGB ``(T, H, W, 3)`` and return it C-contiguous."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8:
        raise TypeError(f"{what}: expected uint8 RGB frames, got dtype {frames.dtype}")
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"{what}: expected shape (T, H, W, 3), got {frames.shape}")
    if frames.shape[0] == 0 or frames.shape[1] < 2 or frames.shape[2] < 2:
        raise ValueError(f"{what}: empty video or frame smaller than 2x2 ({frames.shape})")
    return np.ascontiguousarray(frames)


def check_frame(frame: np.ndarray) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[-1] != 3:
        raise ValueError(f"expected one uint8 RGB frame (H, W, 3), got {frame.dtype} {frame.shape}")
    return frame
