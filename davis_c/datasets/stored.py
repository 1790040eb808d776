"""What a "-C" build keeps of a benchmark video beyond frames and label maps, and how it comes back.

``davis_c.build --dataset NAME`` writes into the clean shard's per-video attributes (same HDF5 layout,
format unchanged; DAVIS-2017 builds write none of this and stay byte-identical):

* ``dataset``: the reader name (``youtube-vos`` ...); the index and every shard also carry ``dataset``,
  ``split`` and ``dataset_title`` (``YouTube-VOS-C``);
* ``annotated``: frame indices with a ground-truth annotation (others are zeros in ``masks``);
* ``required``: frame indices the benchmark reads;
* ``object_names``: SA-V object folder names per label (JSON object);
* ``joints``: JHMDB's keypoint ground truth, (T, 15, 2) 0-based pixels (JSON list).  VIP videos get
  every part given on frame 0 (the label-propagation protocol), not each on its first frame.

The given masks are not stored separately: each object is given on its first annotated frame, so they
follow from ``masks`` + ``annotated`` exactly as the readers derive them.  SA-V's per-object masks are
stored as one label map per frame (where two objects overlap, the later object wins), so SA-V-C scores
each object on ``masks == label``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from davis_c.datasets.base import first_appearance, given_from_first_appearance

__all__ = ["open_reader", "clean_video_attrs", "video_extras", "DatasetInfo", "dataset_info", "build_attrs"]


def open_reader(root: str | os.PathLike, image_set: str | None, resolution: str, year: str,
                dataset: str | None = None):
    """The reader the builder uses: :class:`davis_c.datasets.Davis2017` (with its resolution and ImageSets
    year) for DAVIS-2017, else
    the :mod:`davis_c.datasets` reader of ``dataset`` with ``image_set`` as its split.  Without
    ``dataset`` the root's layout decides, as for ``harness.run`` (:func:`davis_c.datasets.detect`, the one
    detection both call); a layout it does not recognise is read as DAVIS-2017."""
    if dataset is None:
        from davis_c.datasets import detect

        dataset = detect(root)
    if dataset is None or dataset.lower() in ("davis2017", "davis", "davis17"):
        from davis_c.datasets import Davis2017

        return Davis2017(root, image_set, resolution, year)
    from davis_c.datasets import open_dataset

    return open_dataset(dataset, root, image_set)


def build_attrs(reader) -> dict[str, Any]:
    """Build-level attributes naming the dataset ({} for DAVIS-2017, so its build key does not change)."""
    name = getattr(reader, "name", None)
    if not name or name == "davis2017":
        return {}
    return {"dataset": name, "split": reader.split, "dataset_title": f"{reader.title}-C"}


def clean_video_attrs(video) -> dict[str, Any]:
    """Per-video attributes of the clean shard for a non-DAVIS-2017 video ({} otherwise)."""
    if video.given is None:
        return {}
    out = {"dataset": video.dataset, "annotated": [int(t) for t in video.annotated_frames()],
           "required": [int(t) for t in video.required_frames()]}
    if video.object_names:
        out["object_names"] = {str(k): v for k, v in video.object_names.items()}
    if video.joints is not None:  # JHMDB: the keypoint ground truth
        out["joints"] = np.asarray(video.joints, dtype=np.float64).tolist()
    return out


def video_extras(attrs: Mapping[str, Any], masks: np.ndarray) -> dict[str, Any]:
    """Keyword arguments for :class:`davis_c.davis.Video` from stored attributes ({} for DAVIS-2017)."""
    if "annotated" not in attrs:
        return {}
    annotated = tuple(int(t) for t in attrs["annotated"])
    first = first_appearance(masks, annotated)
    extras: dict[str, Any] = {"given": given_from_first_appearance(masks, first), "annotated": annotated,
                              "required": tuple(int(t) for t in attrs["required"]),
                              "dataset": str(attrs.get("dataset", "davis2017"))}
    if extras["dataset"] == "vip":  # every part is given on frame 0 (label propagation), not on its first frame
        extras["given"] = {0: masks[0]}
    if "joints" in attrs:
        extras["joints"] = np.asarray(attrs["joints"], dtype=np.float64)
    if extras["dataset"] == "sav":
        extras["object_masks"] = {label: masks == label for label in first}
    names = attrs.get("object_names")
    if names:
        extras["object_names"] = {int(k): v for k, v in dict(names).items()}
    return extras


@dataclass(frozen=True)
class DatasetInfo:
    """How a store's videos are scored (what the harness needs of a reader)."""

    name: str
    split: str
    protocol: str
    scored_locally: bool


def dataset_info(attrs: Mapping[str, Any]) -> DatasetInfo | None:
    """From a store's index attributes; None for DAVIS-2017 stores."""
    name = attrs.get("dataset")
    if not name:
        return None
    from davis_c.datasets import dataset_class

    cls = dataset_class(str(name))
    split = str(attrs.get("split") or cls.default_split)
    return DatasetInfo(cls.name, split, cls.protocol, split not in cls.private_splits)
