"""Benchmark readers behind one interface (:class:`VOSDataset`): DAVIS-2017, DAVIS-2016, YouTube-VOS, MOSE,
LVOS and SA-V, plus the label-propagation benchmarks JHMDB (pose keypoints) and VIP (human parts).

``open_dataset("youtube-vos", root, split="valid")`` returns a reader; ``reader.videos`` lists the split
and ``reader.load(name)`` gives a :class:`davis_c.davis.Video` with frames, the given masks
(``video.given_masks()``: ``{frame: label map}``), the ground truth on the annotated frames and the frames
the benchmark reads.  ``detect(root)`` guesses the dataset of a folder where the layout is unambiguous.
"""
from __future__ import annotations

import os
from pathlib import Path

from davis_c.datasets.base import VOSDataset
from davis_c.datasets.davis2016 import Davis2016
from davis_c.datasets.davis2017 import Davis2017
from davis_c.datasets.jhmdb import JHMDB
from davis_c.datasets.sav import SAV
from davis_c.datasets.split_folders import LVOS, MOSE, YouTubeVOS
from davis_c.datasets.vip import VIP
from common.errors import DavisError

__all__ = ["VOSDataset", "DATASETS", "Davis2017", "Davis2016", "YouTubeVOS", "MOSE", "LVOS", "SAV", "JHMDB", "VIP",
           "open_dataset", "detect", "dataset_class", "corrupted_name"]

#: ``--dataset`` name -> reader class
DATASETS: dict[str, type[VOSDataset]] = {cls.name: cls for cls in (Davis2017, Davis2016, YouTubeVOS, MOSE, LVOS, SAV,
                                                                      JHMDB, VIP)}
_ALIASES = {"davis": "davis2017", "davis17": "davis2017", "davis16": "davis2016", "ytvos": "youtube-vos",
            "youtubevos": "youtube-vos", "yt-vos": "youtube-vos", "sa-v": "sav"}


def dataset_class(name: str) -> type[VOSDataset]:
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in DATASETS:
        raise DavisError(f"unknown dataset {name!r}; supported: {', '.join(DATASETS)}")
    return DATASETS[key]


def corrupted_name(dataset: str) -> str:
    """``"youtube-vos"`` -> ``"YouTube-VOS-C"``: how the corrupted build is named in attributes and reports."""
    return f"{dataset_class(dataset).title}-C"


def detect(root: str | os.PathLike) -> str | None:
    """The dataset a folder's layout identifies, or None where it is ambiguous (YouTube-VOS, MOSE and LVOS
    share ``<split>/JPEGImages``; name it with ``--dataset``)."""
    root = Path(root)
    if (root / "Rename_Images").is_dir() and (root / "joint_positions").is_dir():
        return "jhmdb"
    if (root / "VIP_Fine").is_dir() or ((root / "Images").is_dir() and (root / "Annotations" / "Category_ids").is_dir()):
        return "vip"
    if (root / "JPEGImages_24fps").is_dir() and (root / "Annotations_6fps").is_dir():
        return "sav"
    if (root / "JPEGImages").is_dir():
        if (root / "ImageSets" / "2017").is_dir():
            return "davis2017"
        if any((root / "ImageSets" / r).is_dir() for r in ("480p", "1080p", "2016")):
            return "davis2016"
    return None


def open_dataset(name: str | None, root: str | os.PathLike, split: str | None = None, **options) -> VOSDataset:
    """Reader of ``split`` (default: the benchmark's usual evaluation split) of the dataset at ``root``."""
    if name is None:
        name = detect(root)
        if name is None:
            raise DavisError(f"{root}: cannot tell which dataset this is; name it (--dataset "
                             f"{'|'.join(DATASETS)})")
    return dataset_class(name)(root, split, **options)
