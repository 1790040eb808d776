"""motion_blur (DAVIS-C's own, temporal): a linearly weighted mean of the last n frames, in float32.

Not ImageNet-C's motion blur.  Frame t averages frames max(0, t-n+1)..t with weights 1..k (oldest to
newest) divided by k(k+1)/2, so frame 0 is unchanged and the window fills up over the first n-1 frames.
The accumulation order and the float32 arithmetic follow the official inline code; many results are exact
.5 ties, which the final round-half-to-even settles as ``cv2.imwrite`` does.
"""
from __future__ import annotations

import numpy as np

from davis_c.corruptions._common import check_frames, to_uint8

__all__ = ["MOTION_BLUR", "motion_blur"]

#: window length n (severity 1..5; 0 at 1-2 behaves like 1: no blur)
MOTION_BLUR = (0, 0, 2, 3, 4)


def motion_blur(frames: np.ndarray, severity: int) -> np.ndarray:
    """Blur a whole video (T, H, W, 3) uint8 RGB; the window restarts at the start of every call."""
    frames = check_frames(frames)
    n = max(MOTION_BLUR[severity - 1], 1)
    out = np.empty_like(frames)
    for t in range(frames.shape[0]):
        start = max(0, t - n + 1)
        acc = frames[start].astype(np.float32)
        total = 1
        for k, j in enumerate(range(start + 1, t + 1), start=2):
            acc += np.float32(k) * frames[j].astype(np.float32)
            total += k
        acc /= np.float32(total)
        out[t] = to_uint8(acc)
    return out
