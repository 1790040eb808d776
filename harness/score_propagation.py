"""Score JHMDB keypoints / VIP part labels predicted by another tool (``harness.score --dataset jhmdb|vip``).

File formats (one per benchmark; ``PRED`` is ``--predictions``):

* **JHMDB**: ``PRED/<video>.npy``, a float array (T, 15, 2) of predicted **pixel** (x, y) coordinates in the
  original frame, 0-based, joints in JHMDB's ``pos_img`` order, one row per annotated frame (more rows are
  ignored); a negative x marks a joint not predicted (CRW's -1 sentinel: that joint is not scored in that
  frame).  Frame 0 is never scored.  Loaded with ``allow_pickle=False`` (CRW's own ``.dat`` pickles are not
  read: convert them with ``coords / 40 * (W, H)``, transposed to (T, 15, 2)).
* **VIP**: ``PRED/<video>/<frame name>.png`` for every frame (frame 0 included), single-channel class ids
  0..19 at any size (resized to the ground truth with PIL nearest, as ``eval_vip.py`` does).

Each video becomes a ``clean`` unit record (seed 1) under ``--out/<method>/`` with the pooled-metric fields of
``harness.correspondence``, so ``leaderboard.build`` tabulates it next to ``harness.run``'s.
"""
from __future__ import annotations

import datetime as _dt
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from common.errors import DavisError
from davis_c.store import sha256_hex
from harness.results import read_unit, remove_stale_temps, write_run_json
from harness.units import RecordError, Unit, UnitIdentity, new_record, write_unit

__all__ = ["score_propagation", "PROTOCOL_OF"]

PROTOCOL_OF = {"jhmdb": "jhmdb-pck", "vip": "vip-miou"}
_SEED = 1


def _score_video(dataset: str, ds, video: str, predictions: Path) -> dict:
    from davis_c.masks import read_mask
    from harness.keypoints import score_keypoints
    from harness.parts import score_parts
    from common.vocabulary import JHMDB_JOINTS

    v = ds.load(video)
    if dataset == "jhmdb":
        path = predictions / f"{video}.npy"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: prediction file not found")
        pred = np.load(path, allow_pickle=False)
        if pred.ndim != 3 or pred.shape[1:] != v.joints.shape[1:]:
            raise ValueError(f"{path}: shape {pred.shape}, expected (T, {v.joints.shape[1]}, 2) pixel (x, y)")
        return score_keypoints(pred, v.joints, v.frames.shape[1:3], None, joint_names=JHMDB_JOINTS)
    labels = []
    for name in v.frame_names:
        path = predictions / video / f"{name}.png"
        labels.append(read_mask(path))  # DavisError naming a missing or non-label file
    return score_parts(labels, v.masks)


def score_propagation(predictions: str | Path, method: str, root: str | Path, dataset: str, *,
                      out: str | Path = "results", split: str | None = None, videos: Sequence[str] | None = None,
                      source: str | None = None, notify: Callable[[str], None] = print) -> list[dict]:
    """Score every video of the split that is not scored ok yet; returns all its records."""
    from davis_c.datasets import open_dataset

    if dataset not in PROTOCOL_OF:
        raise ValueError(f"--dataset {dataset}: keypoint/part predictions are scored for {', '.join(PROTOCOL_OF)}")
    ds = open_dataset(dataset, root, split)
    names = [v for v in ds.videos if not videos or v in set(videos)]
    predictions = Path(predictions)
    info = {"method": method, "config": {"description": f"{dataset} predictions made by another tool, scored with "
                                                        "harness.score", "model": "imported"},
            "checkpoint": None, "checkpoint_sha256": None, "random_init": False, "device": "n/a (imported predictions)",
            "seeds": [_SEED], "variants": ["clean"], "videos": names,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "imported": {"tool": "harness.score", "source": source, "predictions": str(predictions.resolve()),
                         "layout": dataset}}
    write_run_json(out, method, info)
    records = []
    for video in names:  # identity and record through harness.identity / harness.units, as harness.score
        from harness.identity import hashes_digest, predictions_digest, reuse_decision, video_annotations_digest

        unit = Unit(method, "clean", video, _SEED)
        path = unit.path(out)
        if dataset == "jhmdb":
            npy = predictions / f"{video}.npy"
            digest = hashes_digest([sha256_hex(npy.read_bytes())]) if npy.is_file() else None
        else:
            digest = predictions_digest(predictions / video)
        fields = {"predictions": str(predictions), "protocol": PROTOCOL_OF[dataset], "dataset": dataset,
                  "split": ds.split, "scoring": "local", "settings": {"imported": True}, "label_mode": None,
                  "temperature_setting": None}
        identity = None
        try:
            truth = video_annotations_digest(ds.load(video))
        except (DavisError, OSError, ValueError):
            truth = None  # the ground truth cannot be read: the unit fails below, naming the file
        if truth is not None:  # other ground truth than a finished unit's: RunMismatch, nothing written
            data = {"kind": "annotations", "dataset": dataset, "split": ds.split, "video": video,
                    "masks_sha256": truth}
            decision = reuse_decision(read_unit(path), path, data=data, data_path=str(root),
                                      predictions_sha256=digest or "none", unidentified="recompute")
            if decision.action == "reuse":
                records.append(read_unit(path))
                continue
            if decision.reason:
                notify(f"note: {decision.reason}")
            identity = UnitIdentity(data=data, data_path=str(root), annotations_sha256=truth,
                                    predictions_sha256=digest or "none")
        remove_stale_temps(path)
        try:
            record = new_record(unit, **fields)
            record.update(_score_video(dataset, ds, video, predictions))
        except (DavisError, OSError, ValueError) as exc:
            record = new_record(unit, **fields, status="failed", error=f"{type(exc).__name__}: {exc}")
        try:
            write_unit(out, unit, record, identity)
        except RecordError as exc:
            record = new_record(unit, **fields, status="failed", error=f"RecordError: {exc}")
            write_unit(out, unit, record, identity)
        records.append(record)
    notify(f"{method}: {len(names)} {dataset} video(s) -> {Path(out) / method}")
    return records
