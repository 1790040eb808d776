"""SA-V (SAM 2's video set): 24 fps frames, 6 fps per-object masks, one folder per object.

Layout of an SA-V split folder (``sav_val`` / ``sav_test``)::

    JPEGImages_24fps/<video>/00000.jpg ...            every frame
    Annotations_6fps/<video>/<object>/00000.png ...   one binary PNG per object and annotated frame (every 4th)
    sav_val.txt                                       one video name per line (sav_test.txt for test)

Objects are numbered 1..N in the sorted order of their folders (``object_names`` keeps "000", "001" ...);
the label maps paint them in that order (a later object wins an overlap), while the per-object binary
masks are kept in ``object_masks`` for scoring exactly as the SA-V evaluator does.  Each object is given
on the first annotated frame where its mask is non-empty.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from davis_c.davis import Video, check_video_name
from davis_c.datasets.base import (FRAME_SUFFIXES, VOSDataset, list_files, read_name_list, read_sparse_masks,
                                   read_video_frames)
from common.errors import DavisError

__all__ = ["SAV"]


class SAV(VOSDataset):
    name = "sav"
    title = "SA-V"
    protocol = "sav"
    default_split = "val"

    def __init__(self, root: str | os.PathLike, split: str | None = None) -> None:
        self.root = Path(root)
        self.split = split or self.default_split
        check_video_name(self.split, "split")
        self._require_root()
        self.image_root = self.root / "JPEGImages_24fps"
        self.annotation_root = self.root / "Annotations_6fps"
        for folder in (self.image_root, self.annotation_root):
            if not folder.is_dir():
                raise DavisError(f"{self.root}: SA-V folder not found: {folder}")
        list_file = self.root / f"sav_{self.split}.txt"
        if list_file.is_file():
            self.videos = read_name_list(list_file)
        else:
            self.videos = sorted(p.name for p in self.annotation_root.iterdir() if p.is_dir())
            if not self.videos:
                raise DavisError(f"{self.annotation_root}: no video folder (and no {list_file.name})")

    def mask_dir(self, name: str) -> Path:
        return self.annotation_root / check_video_name(name)

    def object_dirs(self, name: str) -> list[Path]:
        vdir = self.mask_dir(name)
        if not vdir.is_dir():
            raise DavisError(f"video {name!r}: annotation folder not found: {vdir}")
        dirs = sorted(p for p in vdir.iterdir() if p.is_dir())
        if not dirs:
            raise DavisError(f"video {name!r}: no object folder in {vdir} (SA-V keeps <video>/<object>/<frame>.png)")
        return dirs

    def frame_paths(self, name: str) -> tuple[list[Path], list[Path]]:
        """Sorted 24 fps frame JPEGs and every object's annotation PNGs."""
        check_video_name(name)
        return (list_files(self.image_root / name, FRAME_SUFFIXES, "frame", name),
                sorted(p for d in self.object_dirs(name) for p in d.glob("*.png")))

    def check(self, names) -> None:
        super().check(names)
        for name in names:
            self.object_dirs(name)

    def load(self, name: str) -> Video:
        check_video_name(name)
        jpgs = self.frame_paths(name)[0]
        frames = read_video_frames(jpgs, name)
        frame_names = [p.stem for p in jpgs]
        size = frames.shape[1:3]
        labels = np.zeros((len(frames), *size), np.uint8)
        object_masks: dict[int, np.ndarray] = {}
        object_names: dict[int, str] = {}
        annotated: set[int] = set()
        given: dict[int, np.ndarray] = {}
        dirs = self.object_dirs(name)
        per_object = {odir: list_files(odir, (".png",), "annotation", name) for odir in dirs}
        promised = sorted({p.stem for pngs in per_object.values() for p in pngs})
        for odir, pngs in per_object.items():  # every object has a mask on every annotated frame
            missing = sorted(set(promised) - {p.stem for p in pngs})
            if missing:
                raise DavisError(f"video {name!r}: annotation {odir / (missing[0] + '.png')} is missing (the other "
                                 f"objects are annotated on frame(s) {', '.join(missing[:5])}; SA-V annotates every "
                                 "object on every annotated frame)")
        for label, odir in enumerate(dirs, 1):
            if label > 254:
                raise DavisError(f"video {name!r}: more than 254 objects")
            pngs = per_object[odir]
            binary, frames_of_obj = read_sparse_masks(pngs, frame_names, size, name, binary=True)
            object_masks[label] = binary.astype(bool)
            object_names[label] = odir.name
            annotated.update(frames_of_obj)
            labels[object_masks[label]] = label
            present = [t for t in frames_of_obj if binary[t].any()]
            if present:
                t0 = present[0]
                given.setdefault(t0, np.zeros(size, np.uint8))[object_masks[label][t0]] = label
        object_masks = {k: v for k, v in object_masks.items() if any(k in np.unique(g) for g in given.values())}
        if not given:
            raise DavisError(f"video {name!r}: every object mask in {self.mask_dir(name)} is empty")
        ann = tuple(sorted(annotated))
        return Video(name=name, frames=frames, masks=labels, object_ids=tuple(sorted(object_masks)),
                     frame_names=frame_names, given=dict(sorted(given.items())), annotated=ann, required=ann,
                     dataset=self.name, object_masks=object_masks, object_names=object_names)
