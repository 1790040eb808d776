"""Which frame and label map test-time training starts from when objects are given on later frames.

TTT (tt-MCC / tt-Ent / tt-AE) needs one frame where every object's mask is known: it cycles from that
frame forward and back.  DAVIS gives all objects on frame 0.  With masks given later (YouTube-VOS, MOSE,
LVOS, SA-V) we use this rule:

* the *anchor* is the frame where the last object is first given (t* = max of the objects' first frames);
  when every object is first given on one frame, that frame and its map are used as they are;
* otherwise the anchor's label map is the un-adapted model's prediction on frame t* (given masks up to
  t* only; nothing after t* is looked at), with the masks given on t* painted over it;
* TTT adapts on ``frames[t*:]`` with that map as its first mask; the adapted model then segments the
  whole video with the original given masks.

No ground truth beyond the given masks is used, so the rule is valid for private benchmarks.
"""
from __future__ import annotations

import numpy as np

from models.inputs import given_masks, object_first_frames

__all__ = ["ttt_anchor"]


def ttt_anchor(vos, frames: np.ndarray, masks, segment: dict | None = None) -> tuple[int, np.ndarray]:
    """(t*, (H, W) uint8 label map with every object) per the rule above; ``segment`` = model options."""
    given = given_masks(frames, masks)
    first = object_first_frames(given)
    anchor = max(first.values())
    labels = sorted(first)
    present = {int(v) for v in np.unique(given[anchor])}
    if all(label in present for label in labels):
        return anchor, np.where(np.isin(given[anchor], labels), given[anchor], 0).astype(np.uint8)
    upto = {t: m for t, m in given.items() if t <= anchor}
    probs = vos.segment(np.asarray(frames)[:anchor + 1], upto, **(segment or {}))
    pred = np.asarray([0] + labels, dtype=np.uint8)[probs[:, anchor].argmax(0)]
    mine = np.isin(given[anchor], labels)
    return anchor, np.where(mine, given[anchor], pred).astype(np.uint8)
