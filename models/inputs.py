"""Validation of the video inputs every model's ``segment`` takes, so all models reject bad input alike."""
from __future__ import annotations

import numpy as np

__all__ = ["check_frames", "check_video", "given_masks", "object_first_frames"]


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


# ------------------------------------------------------------------------------ given masks (contract)
# Every model's ``segment(frames, masks, ...)`` takes the *given masks* in one of two forms:
#
# * a single (H, W) label map: the masks given on frame 0 (DAVIS-2017 semi-supervised protocol);
# * a mapping ``{frame_index: (H, W) label map}``: the masks given on later frames too (YouTube-VOS,
#   MOSE, LVOS, SA-V give each object's mask on the frame where it first appears).
#
# Label 0 is background / "nothing given here", 255 is void and never an object.  An object is one
# non-zero label; its *first frame* is the smallest frame index whose map contains it.  A label map on
# frame t only states the objects it contains: pixels of other objects there are not constrained (a
# model keeps propagating them), exactly as the official YouTube-VOS scripts of STCN/XMem merge a new
# object's mask into the running prediction.  The output stays ``float32 (K+1, T, H, W)``: channel 0
# background, then the objects in sorted label order; an object's probability is 0 on frames before its
# first frame.  :func:`given_masks` normalises both forms so every model validates them alike.

def given_masks(frames: np.ndarray, masks) -> dict[int, np.ndarray]:
    """Normalise the given masks (one first-frame label map or ``{frame: label map}``) to a sorted dict.

    Checks that each map is (H, W) like the frames, that frame indices are in range, and that at least
    one object is given.  The returned maps are the caller's arrays (not copied) keyed by ``int``.
    """
    frames = check_frames(frames)
    t, h, w = frames.shape[:3]
    if isinstance(masks, dict) or hasattr(masks, "items"):
        items = [(int(k), np.asarray(v)) for k, v in masks.items()]
    else:
        items = [(0, np.asarray(masks))]
    if not items:
        raise ValueError("no mask given: pass a first-frame label map or {frame: label map}")
    out: dict[int, np.ndarray] = {}
    for index, m in sorted(items, key=lambda kv: kv[0]):
        if not 0 <= index < t:
            raise ValueError(f"mask given on frame {index}, but the video has {t} frames")
        if m.shape != (h, w):
            raise ValueError(f"mask of frame {index} has shape {m.shape}, frames are {(h, w)}")
        out[index] = m
    if not object_first_frames(out):
        raise ValueError("the given masks contain no object (only background 0 / void 255)")
    return out


def object_first_frames(given: dict[int, np.ndarray]) -> dict[int, int]:
    """{object label: first frame where it is given}, labels sorted; 0 and 255 are not objects."""
    first: dict[int, int] = {}
    for index in sorted(given):
        for label in np.unique(given[index]):
            label = int(label)
            if label not in (0, 255) and label not in first:
                first[label] = index
    return dict(sorted(first.items()))
