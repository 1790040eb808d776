"""harness.protocols: each benchmark's scoring rules on tiny hand-made videos with hand-computed values.

Masks are squares, so J is a ratio of areas; F is 1 for a perfect frame, 0 where the prediction is
empty but the ground truth is not, and 1 where both are empty (DAVIS boundary rules).
"""
from __future__ import annotations

import numpy as np
import pytest

from davis_c.davis import Video
from harness.protocols import score


def _square(t: int, h: int = 20, w: int = 20, top: int = 4, size: int = 8) -> np.ndarray:
    m = np.zeros((t, h, w), bool)
    m[:, top:top + size, top:top + size] = True
    return m


def _video(masks: np.ndarray, **kw) -> Video:
    t, h, w = masks.shape
    return Video(name="v", frames=np.zeros((t, h, w, 3), np.uint8), masks=masks.astype(np.uint8),
                 object_ids=tuple(int(k) for k in np.unique(masks) if k), frame_names=[f"{i:05d}" for i in range(t)],
                 **kw)


def test_davis2016_any_nonzero_label_and_first_last_frames_dropped():
    gt = _square(4).astype(np.uint8)  # object = 1
    pred = np.where(_square(4), 3, 0).astype(np.uint8)  # a different non-zero label is still the object
    pred[0] = 0  # first and last frame are not scored
    pred[3] = 7
    video = _video(gt, dataset="davis2016")
    rec = score(video, pred, protocol="davis2016")
    assert rec["J"] == 1.0 and rec["F"] == 1.0 and [o["id"] for o in rec["objects"]] == [1]
    pred[2] = 0  # frame 2 empty: J = F = 0 there -> means 0.5
    rec = score(video, pred, protocol="davis2016")
    assert rec["J"] == 0.5 and rec["F"] == 0.5 and rec["JF"] == 0.5
    assert rec["per_frame"]["frames"] == ["00001", "00002"] and rec["scoring"] == "local"


def test_after_first_scores_annotated_frames_after_each_objects_first_frame():
    t = 5
    gt = np.zeros((t, 20, 20), np.uint8)
    gt[:, 2:8, 2:8] = 1
    gt[2:, 12:18, 12:18] = 2  # object 2 given on frame 2
    given = {0: np.where(gt[0] == 1, 1, 0).astype(np.uint8), 2: np.where(gt[2] == 2, 2, 0).astype(np.uint8)}
    pred = gt.copy()
    pred[3:][pred[3:] == 1] = 0  # object 1 lost on frames 3 and 4 (the last annotated frame counts)
    pred[2][pred[2] == 2] = 0  # object 2 wrong on its given frame: not scored
    video = _video(gt, given=given, annotated=tuple(range(t)), dataset="mose")
    rec = score(video, pred, protocol="after-first", split="train")
    by_id = {o["id"]: o for o in rec["objects"]}
    assert by_id[1]["J"] == 0.5 and by_id[1]["F"] == 0.5  # frames 1-4: perfect, perfect, empty, empty
    assert by_id[2]["J"] == 1.0 and by_id[2]["F"] == 1.0  # frames 3-4
    assert rec["J"] == 0.75 and rec["JF"] == 0.75 and rec["per_frame"] is None
    assert rec["per_object_frames"]["2"]["frames"] == ["00003", "00004"]
    assert rec["dataset"] == "mose" and rec["split"] == "train"


def test_after_first_uses_only_annotated_frames():
    t = 6
    gt = np.zeros((t, 20, 20), np.uint8)
    gt[:, 2:10, 2:10] = 1
    pred = gt.copy()
    pred[1, 2:10, 2:6] = 0  # frame 1 (annotated): J = 0.5
    pred[2] = 0  # frame 2 not annotated: ignored
    video = _video(gt, given={0: gt[0]}, annotated=(0, 1, 3, 5), dataset="lvos")
    rec = score(video, pred, protocol="after-first")
    assert rec["objects"][0]["J"] == pytest.approx((0.5 + 1 + 1) / 3)


def test_sav_per_object_masks_drop_first_and_last_annotated_frame():
    t = 17
    annotated = (0, 4, 8, 12, 16)
    obj1 = np.zeros((t, 20, 20), bool)
    obj1[:, 2:10, 2:10] = True
    obj2 = np.zeros((t, 20, 20), bool)
    obj2[16, 12:18, 12:18] = True  # only on the last annotated frame: not evaluated, so not reported
    obj1_overlap = obj1.copy()
    labels = np.where(obj1, 1, 0).astype(np.uint8)
    video = _video(labels, given={0: labels[0]}, annotated=annotated, required=annotated, dataset="sav",
                   object_masks={1: obj1_overlap, 2: obj2})
    pred = labels.copy()
    pred[12] = 0  # scored frames 4, 8, 12 -> J = 2/3
    pred[0] = pred[16] = 0  # first and last annotated frame: not scored
    rec = score(video, pred, protocol="sav", split="val")
    assert [o["id"] for o in rec["objects"]] == [1]
    assert rec["J"] == pytest.approx(2 / 3) and rec["F"] == pytest.approx(2 / 3)
    assert rec["per_frame"]["frames"] == ["00004", "00008", "00012"]


def test_private_split_is_not_scored():
    gt = _square(3).astype(np.uint8)
    rec = score(_video(gt, dataset="youtube-vos"), gt, protocol="after-first", scored_locally=False, split="valid")
    assert rec["scoring"] == "server" and rec["JF"] is None and rec["objects"] == []


def test_davis2017_is_the_harness_scorer():
    from harness.executor import score_video

    gt = np.zeros((4, 20, 20), np.uint8)
    gt[:, 2:10, 2:10] = 1
    gt[:, 12:18, 12:18] = 2
    pred = gt.copy()
    pred[1][pred[1] == 2] = 0
    rec = score(_video(gt), pred, protocol="davis2017")
    ref = score_video(gt, pred, "v", [f"{i:05d}" for i in range(4)])
    assert rec["JF"] == ref["JF"] and rec["objects"] == ref["objects"]
    assert rec["objects"][1]["J"] == 0.5  # object 2: frame 1 empty, frame 2 perfect
