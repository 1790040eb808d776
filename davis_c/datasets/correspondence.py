"""What the JHMDB and VIP readers share: OpenCV frame decoding and integer-stem ordering.

CRW's JHMDB and VIP loaders read frames with OpenCV (BGR -> RGB) and order files by the integer value of
their name stem; the readers here do the same, so a "-C" build (which decodes with OpenCV too) and a
direct read see the same pixels.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from common.errors import DavisError
from davis_c.codec import decode_image

__all__ = ["read_frames_cv2", "sorted_by_int_stem"]


def sorted_by_int_stem(paths: Sequence[Path], video: str) -> list[Path]:
    """Files ordered by the integer value of their stem (``00010.png`` after ``00009.png``)."""
    bad = [p for p in paths if not p.stem.isdigit()]
    if bad:
        raise DavisError(f"video {video!r}: file {bad[0]} is not named by a frame number")
    return sorted(paths, key=lambda p: int(p.stem))


def read_frames_cv2(paths: Sequence[Path], video: str) -> np.ndarray:
    """(T, H, W, 3) uint8 RGB decoded with OpenCV; every frame must exist and have the first one's size."""
    frames = None
    for t, path in enumerate(paths):
        try:
            img = decode_image(path.read_bytes(), str(path))
        except FileNotFoundError as exc:
            raise DavisError(f"video {video!r}: frame file not found: {path}") from exc
        except (OSError, ValueError) as exc:
            raise DavisError(f"video {video!r}: cannot read frame {path} ({exc})") from exc
        if frames is None:
            frames = np.empty((len(paths), *img.shape), np.uint8)
        if img.shape != frames.shape[1:]:
            raise DavisError(f"video {video!r}: frame {path} is {img.shape[1]}x{img.shape[0]} but the first frame "
                             f"is {frames.shape[2]}x{frames.shape[1]} (WxH)")
        frames[t] = img
    if frames is None:
        raise DavisError(f"video {video!r}: no frame")
    return frames
