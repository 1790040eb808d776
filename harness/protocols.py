"""Each benchmark's own scoring rules, applied to one video's predicted label maps.

``score(video, labels)`` returns the unit-record fields (``objects``, ``J``, ``F``, ``JF``, ``per_frame``
plus ``dataset``, ``split``, ``protocol``, ``scoring``; a DAVIS-2017 video scored locally gets the score
fields alone, as DAVIS-2017 unit records always had).  Rules (J = region IoU, 1 where both masks are
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

This module is the one home of "score a video under a protocol": ``harness.run`` (the executor) scores
label maps it predicted with :func:`score`, ``harness.score`` and ``harness.evaluate`` score palette PNGs
from disk with :func:`score_folder` / :func:`evaluate_sequence`.  It imports only ``harness.metrics`` and
``davis_c``, so nothing that calls it is imported back (no executor <-> protocols circle).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from common.errors import DavisError
from davis_c.datasets import Davis2017
from davis_c.davis import Video, check_video_name, no_object_message
from davis_c.masks import read_mask
from harness.metrics import (EvaluationError, VideoScores, bound_radius, evaluate_video, f_measure, j_measure,
                             score_frame, sequence_stats)

__all__ = ["PROTOCOLS", "SCORING_LOCAL", "SCORING_SERVER", "score", "score_objects", "score_video", "unit_scores",
           "evaluate_sequence", "score_folder", "scored_frames", "protocol_of", "open_reader", "warm_up"]

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
    if protocol == "davis2017":  # the score fields alone: DAVIS-2017 unit records have never carried the meta
        return score_video(video.masks, labels, video.name, names)
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


VOID_LABEL = 255


def score_video(gt: np.ndarray, pred: np.ndarray, name: str = "video",
                frame_names: list[str] | None = None) -> dict:
    """Official DAVIS-2017 semi-supervised scores of one video, as unit-record fields.

    Objects are 1..K with K the largest first-frame label and frames 1..T-2 are scored (official rules);
    ``per_frame`` lists the scores of those frames, named in ``per_frame["frames"]``.
    """
    return unit_scores(evaluate_video(gt, pred, name=name, frame_names=frame_names), frame_names)


def unit_scores(res: VideoScores, frame_names: list[str] | None = None) -> dict:
    """The score fields of a unit record (objects, J, F, JF, per_frame) from a ``harness.metrics.VideoScores``."""
    objects = []
    for k, (jm, jr, jd, fm, fr, fd) in zip(res.object_ids, res.stats.tolist()):
        objects.append({"id": int(k), "J": jm, "F": fm, "JF": (jm + fm) / 2, "J_recall": jr, "J_decay": jd,
                        "F_recall": fr, "F_decay": fd})
    frame_names = frame_names or res.frame_names
    names = [frame_names[t] if frame_names else f"{t:05d}" for t in res.frames.tolist()]
    return {"objects": objects, "J": res.j_mean, "F": res.f_mean, "JF": res.jf_mean,
            "per_frame": {"J": res.J.tolist(), "F": res.F.tolist(), "frames": names}}


def evaluate_sequence(dataset: Any, results_dir: str | os.PathLike, video: str,
                      bound_th: float = 0.008, pred_dir: str | os.PathLike | None = None) -> VideoScores:
    """DAVIS-2017: score ``results_dir/<video>/<frame>.png`` (or the PNGs in ``pred_dir``) against the
    annotations of one video of ``dataset`` (a :class:`davis_c.davis.Davis2017`).

    Objects are 1..K with K the largest id of the first annotation (official rule); frames 1..T-2 are
    scored and the predictions of the first and last frame are not read.  Only the annotation PNGs and
    the predictions are decoded, each once per frame (not once per object); ``JPEGImages/`` is not needed.
    """
    check_video_name(video)
    pngs = dataset.annotation_paths(video)
    if len(pngs) < 3:
        raise EvaluationError(f"video {video!r}: {len(pngs)} annotated frames; the evaluation drops the first "
                              "and last frame, so at least 3 are needed")
    raw = read_mask(pngs[0])
    first = raw.copy()
    first[first == VOID_LABEL] = 0
    k = int(first.max())
    if k == 0:
        raise DavisError(no_object_message(video, pngs[0], raw))
    object_ids = tuple(range(1, k + 1))
    pred_dir = Path(pred_dir) if pred_dir is not None else Path(results_dir) / video
    if not pred_dir.is_dir():
        raise EvaluationError(f"video {video!r}: prediction folder not found: {pred_dir}")
    radius = bound_radius(first.shape, bound_th)
    evaluated = range(1, len(pngs) - 1)
    j = np.empty((k, len(evaluated)), np.float64)
    f = np.empty_like(j)
    for n, t in enumerate(evaluated):
        stem = pngs[t].stem
        pred_path = pred_dir / f"{stem}.png"
        if not pred_path.is_file():
            raise EvaluationError(f"video {video!r}: prediction for frame {stem} not found: {pred_path}")
        gt = read_mask(pngs[t])
        if gt.shape != first.shape:  # as the builder: every annotation of a video has the first one's size
            raise DavisError(f"video {video!r}: annotation {pngs[t]} is {gt.shape[1]}x{gt.shape[0]} but the "
                             f"video's first annotation {pngs[0].name} is {first.shape[1]}x{first.shape[0]} (WxH)")
        pred = read_mask(pred_path)
        if pred.shape != gt.shape:
            raise EvaluationError(f"video {video!r}: prediction {pred_path} is {pred.shape[1]}x{pred.shape[0]} "
                                  f"but the annotation is {gt.shape[1]}x{gt.shape[0]} (WxH)")
        pmax = int(pred.max())
        if pmax > k:
            raise EvaluationError(f"video {video!r}: prediction {pred_path} (frame {stem}) contains label {pmax} "
                                  f"but the first annotation has only {k} object(s) (ids must be 0..{k}; a palette PNG "
                                  "converted to grey or RGB loses its ids)")
        j[:, n], f[:, n] = score_frame(gt, pred, object_ids, radius)
    return VideoScores(name=video, object_ids=object_ids, frames=np.arange(1, len(pngs) - 1), J=j, F=f,
                       frame_names=[p.stem for p in pngs])


def protocol_of(reader: Any) -> str:
    """The protocol of a dataset reader (``davis_c.datasets``); a plain DAVIS-2017 root: ``davis2017``."""
    return getattr(reader, "protocol", "") or "davis2017"


def scored_frames(video: Video, protocol: str) -> list[int]:
    """The frame indices whose prediction ``protocol`` reads to score ``video`` (the only PNGs needed)."""
    t = len(video)
    if protocol in ("davis2017", "davis2016"):
        return list(range(1, t - 1))
    annotated = list(video.annotated_frames())
    if protocol == "sav":
        return annotated[1:-1]
    if protocol == "after-first":
        given = video.given_masks()
        firsts = [f for f in sorted(given) if np.isin(given[f], (0, VOID_LABEL), invert=True).any()]
        start = min(firsts) if firsts else 0
        return [a for a in annotated if a > start]
    raise ValueError(f"unknown scoring protocol {protocol!r}; expected one of {', '.join(PROTOCOLS)}")


def read_predictions(video: Video, pred_dir: str | os.PathLike, frames: Sequence[int]) -> np.ndarray:
    """(T, H, W) label maps: the PNG of every frame in ``frames`` from ``pred_dir`` (others 0).  A missing,
    unreadable or mis-sized PNG is an :class:`EvaluationError` naming the file."""
    pred_dir = Path(pred_dir)
    if not pred_dir.is_dir():
        raise EvaluationError(f"video {video.name!r}: prediction folder not found: {pred_dir}")
    labels = np.zeros(video.masks.shape, np.uint8)
    for t in frames:
        path = pred_dir / f"{video.frame_names[t]}.png"
        if not path.is_file():
            raise EvaluationError(f"video {video.name!r}: prediction for frame {video.frame_names[t]} not found: "
                                  f"{path}")
        pred = read_mask(path)
        if pred.shape != labels.shape[1:]:
            raise EvaluationError(f"video {video.name!r}: prediction {path} is {pred.shape[1]}x{pred.shape[0]} but "
                                  f"the annotation is {labels.shape[2]}x{labels.shape[1]} (WxH)")
        labels[t] = pred
    return labels


def score_folder(reader: Any, video: str, pred_dir: str | os.PathLike, *, protocol: str | None = None) -> dict:
    """Unit-record score fields (plus ``n_frames``) of the palette PNGs in ``pred_dir`` for one video of a
    dataset reader, by the reader's protocol.  DAVIS-2017 reads only the annotations (the official
    evaluator's way, :func:`evaluate_sequence`); the other benchmarks load the video through their reader."""
    protocol = protocol or protocol_of(reader)
    if protocol == "davis2017" and hasattr(reader, "annotation_paths"):
        res = evaluate_sequence(reader, pred_dir, video, pred_dir=pred_dir)
        return {"dataset": "davis2017", "split": getattr(reader, "image_set", None), "protocol": protocol,
                "scoring": SCORING_LOCAL, **unit_scores(res), "n_frames": len(res.frame_names or [])}
    if not getattr(reader, "scored_locally", True):
        raise EvaluationError(f"{getattr(reader, 'label', reader)}: the ground truth of this split is private; "
                              "it cannot be scored locally (harness.submission packs predictions for its server)")
    vid = reader.load(video)
    labels = read_predictions(vid, pred_dir, scored_frames(vid, protocol))
    out = score(vid, labels, protocol=protocol, split=getattr(reader, "split", None))
    if out.get("JF") is None:
        raise EvaluationError(f"video {video!r}: no object has a frame scored by the {protocol} rules")
    return {**out, "n_frames": len(vid)}


def open_reader(annotations: str | Path, dataset: str | None = None, *, image_set: str = "val",
                resolution: str = "480p", split: str | None = None):
    """The ground-truth reader of ``--annotations``: a DAVIS-2017 root (only ``Annotations/`` and
    ``ImageSets/`` read), or any benchmark ``harness.run`` knows (``--dataset``, or recognised from the
    layout as ``harness.run`` does: ``davis_c.datasets.detect``)."""
    from davis_c.datasets import DATASETS, dataset_class, detect


    name = dataset
    if name is None and Path(annotations).is_dir():
        name = detect(annotations)
    key = dataset_class(name).name if name is not None else "davis2017"
    if key == "davis2017":
        return Davis2017(annotations, image_set if split is None else split, resolution)
    from davis_c.datasets import open_dataset

    assert key in DATASETS
    return open_dataset(key, annotations, split)



def warm_up() -> None:
    """Compile (or load from cache) the numba kernels once, before worker processes are started."""
    tiny = np.zeros((4, 4), np.uint8)
    tiny[1:3, 1:3] = 1
    score_frame(tiny, tiny, (1,), 1.0)
