"""Each benchmark's own scoring rules, applied to one video's predicted label maps.

``score(video, labels)`` returns the unit-record fields (``objects``, ``J``, ``F``, ``JF``, ``per_frame``
plus ``dataset``, ``split``, ``protocol``, ``scoring``).  Rules (J = region IoU, 1 where both masks are
empty; F = the DAVIS boundary F-measure, radius ceil(0.008 * image diagonal); per object the mean over
its scored frames, recall and decay as DAVIS; a video's J/F = mean over its objects):

``davis2017``  objects 1..K of frame 0, frames 1..T-2 (the DAVIS-2017 semi-supervised evaluation).
``davis2016``  one object = every non-zero label, in the ground truth and in the prediction alike;
               frames 1..T-2 (first and last frame excluded, as in the DAVIS-2016 evaluation code).
``after-first`` (MOSE train, LVOS val, YouTube-VOS train)  each object over the annotated frames strictly
               after the frame where it is given; an object with no such frame is not scored.
``sav``        (SA-V val/test, its ``sav_evaluator``)  each object's own binary PNGs; the frames are that
               object's annotated (6 fps) frames without the first and the last one; an object whose
               ground truth is empty on all of them is not reported.

``jhmdb-pck`` / ``vip-miou``  (JHMDB pose, VIP parts) label propagation scored by PCK / mIoU pooled over the
               set: run and scored by :mod:`harness.correspondence` (metrics: :mod:`harness.keypoints`,
               :mod:`harness.parts`), not by :func:`score`.

Splits whose ground truth is private (YouTube-VOS valid/test, MOSE valid) are not scored: the record
says ``scoring: "server"`` (the leaderboard shows "submit to score") and the predicted masks of the
frames the server reads are saved for :mod:`harness.submission`.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from davis_c.davis import Video
from harness.metrics import f_measure, j_measure, sequence_stats

__all__ = ["PROTOCOLS", "SCORING_LOCAL", "SCORING_SERVER", "score", "score_objects"]

PROTOCOLS = ("davis2017", "davis2016", "after-first", "sav", "jhmdb-pck", "vip-miou")  # the last two: harness.correspondence
SCORING_LOCAL = "local"
SCORING_SERVER = "server"


def score_objects(gt: dict[int, np.ndarray], pred: dict[int, np.ndarray], frames: dict[int, Sequence[int]],
                  frame_names: Sequence[str] | None = None) -> dict:
    """Unit fields from per-object binary stacks: ``gt[o]``/``pred[o]`` (T, H, W) bool, ``frames[o]`` the
    indices scored for object o.  Objects with no frame are skipped."""
    objects = []
    per_object = {}
    for obj in sorted(gt):
        idx = list(frames[obj])
        if not idx:
            continue
        j = j_measure(gt[obj][idx], pred[obj][idx])
        f = f_measure(gt[obj][idx], pred[obj][idx])
        jm, jr, jd = sequence_stats(j)
        fm, fr, fd = sequence_stats(f)
        objects.append({"id": int(obj), "J": jm, "F": fm, "JF": (jm + fm) / 2, "J_recall": jr, "J_decay": jd,
                        "F_recall": fr, "F_decay": fd})
        per_object[obj] = (j.tolist(), f.tolist(), [frame_names[t] if frame_names else f"{t:05d}" for t in idx])
    if not objects:
        return {"objects": [], "J": None, "F": None, "JF": None, "per_frame": None}
    jv = float(np.mean([o["J"] for o in objects]))
    fv = float(np.mean([o["F"] for o in objects]))
    rows = list(per_object.values())
    if all(r[2] == rows[0][2] for r in rows):  # one frame list: the (K, N) layout of DAVIS unit records
        per_frame = {"J": [r[0] for r in rows], "F": [r[1] for r in rows], "frames": rows[0][2]}
    else:  # objects scored on different frames: one entry per object
        per_frame = None
    out = {"objects": objects, "J": jv, "F": fv, "JF": (jv + fv) / 2, "per_frame": per_frame}
    if per_frame is None:
        out["per_object_frames"] = {str(o): {"J": r[0], "F": r[1], "frames": r[2]} for o, r in per_object.items()}
    return out


def _meta(video: Video, protocol: str, scoring: str, split: str | None) -> dict:
    return {"dataset": video.dataset, "split": split, "protocol": protocol, "scoring": scoring}


def score(video: Video, labels: np.ndarray, *, protocol: str, scored_locally: bool = True,
          split: str | None = None) -> dict:
    """Score ``labels`` ((T, H, W) label maps of every frame) by ``protocol`` (see the module doc)."""
    labels = np.asarray(labels)
    if labels.shape != video.masks.shape:
        raise ValueError(f"{video.name}: prediction shape {labels.shape} differs from the video {video.masks.shape}")
    if not scored_locally:
        return {**_meta(video, protocol, SCORING_SERVER, split), "objects": [], "J": None, "F": None, "JF": None,
                "per_frame": None}
    names = list(video.frame_names)
    meta = _meta(video, protocol, SCORING_LOCAL, split)
    if protocol == "davis2017":
        from harness.executor import score_video

        return {**meta, **score_video(video.masks, labels, video.name, names)}
    t = len(video)
    if protocol == "davis2016":
        if t < 3:
            raise ValueError(f"{video.name}: {t} frames; DAVIS-2016 drops the first and last frame")
        gt = video.masks.copy()
        gt[gt == 255] = 0
        return {**meta, **score_objects({1: gt > 0}, {1: labels > 0}, {1: range(1, t - 1)}, names)}
    given = video.given_masks()
    first = {}
    for f in sorted(given):
        for label in np.unique(given[f]).tolist():
            if label not in (0, 255):
                first.setdefault(int(label), f)
    annotated = video.annotated_frames()
    if protocol == "after-first":
        gt = {o: video.masks == o for o in first}
        pred = {o: labels == o for o in first}
        frames = {o: [a for a in annotated if a > f] for o, f in first.items()}
        return {**meta, **score_objects(gt, pred, frames, names)}
    if protocol == "sav":
        if video.object_masks is None:
            raise ValueError(f"{video.name}: SA-V scoring needs the per-object masks (object_masks)")
        gt, pred, frames = {}, {}, {}
        for o, mask in video.object_masks.items():
            idx = list(annotated)[1:-1]
            if not mask[idx].any():
                continue  # not in the ground truth of the scored frames: the evaluator does not report it
            gt[o], pred[o], frames[o] = mask, labels == o, idx
        return {**meta, **score_objects(gt, pred, frames, names)}
    if protocol in ("jhmdb-pck", "vip-miou"):
        raise ValueError(f"{protocol} scores keypoints / part histograms pooled over the set: harness.correspondence")
    raise ValueError(f"unknown scoring protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}")
