"""DAVIS-2017 (semi-supervised): a split of a DAVIS-2017 root (480p or Full-Resolution), one video at a time.

Layout (official): ``JPEGImages/<res>/<video>/00000.jpg ...``, ``Annotations/<res>/<video>/00000.png ...``
(palette PNGs, 255 = void) and ``ImageSets/<year>/<split>.txt`` (one video name per line).  All objects are
given on frame 0; every frame is annotated; frames 1..T-2 are scored (:func:`harness.metrics.evaluate_video`).
Every problem with the input raises :class:`DavisError` naming the file or video, because a silent half-read
dataset makes benchmark numbers meaningless.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from common.errors import DavisError
from davis_c.datasets.base import VOSDataset, read_name_list
from davis_c.davis import RESOLUTIONS, VOID_LABEL, Video, check_video_name, no_object_message, read_frame
from davis_c.masks import read_mask

__all__ = ["Davis2017"]


class Davis2017(VOSDataset):
    """A DAVIS-2017 split: ``for video in Davis2017(root): ...`` loads one video at a time.

    ``videos`` lists the names of ``ImageSets/<year>/<split>.txt`` in file order (the official evaluation
    order).  ``load(name)`` reads every frame and annotation of one video and checks them; the videos carry
    no ``given``/``annotated``/``required`` (DAVIS-2017's protocol is the default of :class:`Video`).
    """

    name = "davis2017"
    title = "DAVIS-2017"
    protocol = "davis2017"
    private_splits = ("test-dev", "test-challenge")
    default_split = "val"

    def __init__(self, root: str | os.PathLike, split: str | None = None, resolution: str = "480p",
                 year: str = "2017") -> None:
        self.root = Path(root)
        self.split = split or self.default_split
        self.resolution = resolution
        self.year = str(year)
        if resolution not in RESOLUTIONS:
            raise DavisError(f"{self.root}: unknown resolution {resolution!r}; expected one of {RESOLUTIONS}")
        if not self.root.is_dir():
            raise DavisError(f"{self.root}: DAVIS root folder not found")
        check_video_name(self.split, "image set")
        self.set_file = self.root / "ImageSets" / self.year / f"{self.split}.txt"
        self.videos: list[str] = read_name_list(self.set_file, "image set file")

    def __repr__(self) -> str:
        return (f"Davis2017(root={str(self.root)!r}, split={self.split!r}, "
                f"resolution={self.resolution!r}, videos={len(self.videos)})")

    def check(self, names: Sequence[str]) -> None:
        """Every selected video has an annotation folder holding PNGs (cheap: no decoding)."""
        for name in names:
            mdir = self.mask_dir(name)
            if not mdir.is_dir() or not any(p.suffix.lower() == ".png" for p in mdir.iterdir()):
                raise DavisError(f"video {name!r} has no annotations: {mdir} is missing or holds no PNG")

    def frame_dir(self, name: str) -> Path:
        return self.root / "JPEGImages" / self.resolution / check_video_name(name)

    def mask_dir(self, name: str) -> Path:
        return self.root / "Annotations" / self.resolution / check_video_name(name)

    def annotation_paths(self, name: str) -> list[Path]:
        """Sorted annotation PNGs of a video; needs only ``Annotations/`` (scoring never reads the frames)."""
        mdir = self.mask_dir(name)
        if not mdir.is_dir():
            raise DavisError(f"video {name!r}: annotation folder not found: {mdir}")
        pngs = sorted(p for p in mdir.iterdir() if p.suffix.lower() == ".png" and p.is_file())
        if not pngs:
            raise DavisError(f"video {name!r}: no annotation PNG in {mdir}")
        return pngs

    def frame_paths(self, name: str) -> tuple[list[Path], list[Path]]:
        """Sorted JPEG and annotation paths of a video, checked to pair up one to one by file stem."""
        fdir, mdir = self.frame_dir(name), self.mask_dir(name)
        for folder, what in ((fdir, "frame"), (mdir, "annotation")):
            if not folder.is_dir():
                raise DavisError(f"video {name!r}: {what} folder not found: {folder}")
        jpgs = sorted(p for p in fdir.iterdir() if p.suffix.lower() in (".jpg", ".jpeg") and p.is_file())
        pngs = sorted(p for p in mdir.iterdir() if p.suffix.lower() == ".png" and p.is_file())
        if not jpgs:
            raise DavisError(f"video {name!r}: no JPEG frame in {fdir}")
        if not pngs:
            raise DavisError(f"video {name!r}: no annotation PNG in {mdir}")
        if len(jpgs) != len(pngs):
            raise DavisError(f"video {name!r}: {len(jpgs)} frames in {fdir} but {len(pngs)} annotations in {mdir}")
        for jpg, png in zip(jpgs, pngs):
            if jpg.stem != png.stem:
                raise DavisError(f"video {name!r}: frame {jpg} has no annotation of the same name "
                                 f"(next annotation is {png})")
        return jpgs, pngs

    def load(self, name: str) -> Video:
        """Read one video fully into memory, checking sizes, mask format and the first-frame objects."""
        check_video_name(name)
        jpgs, pngs = self.frame_paths(name)
        frames = None
        masks = None
        for t, (jpg, png) in enumerate(zip(jpgs, pngs)):
            img = read_frame(jpg)
            mask = read_mask(png)
            if frames is None:
                h, w = img.shape[:2]
                frames = np.empty((len(jpgs), h, w, 3), dtype=np.uint8)
                masks = np.empty((len(jpgs), h, w), dtype=np.uint8)
            if img.shape[:2] != frames.shape[1:3]:
                raise DavisError(f"video {name!r}: frame {jpg} is {img.shape[1]}x{img.shape[0]} but the video's "
                                 f"first frame is {frames.shape[2]}x{frames.shape[1]} (WxH)")
            if mask.shape != img.shape[:2]:
                raise DavisError(f"video {name!r}: annotation {png} is {mask.shape[1]}x{mask.shape[0]} but its "
                                 f"frame {jpg.name} is {img.shape[1]}x{img.shape[0]} (WxH)")
            frames[t] = img
            masks[t] = mask
        first = np.unique(masks[0])
        object_ids = tuple(int(v) for v in first if v != 0 and v != VOID_LABEL)
        if not object_ids:
            raise DavisError(no_object_message(name, pngs[0], masks[0]))
        return Video(name=name, frames=frames, masks=masks, object_ids=object_ids,
                     frame_names=[p.stem for p in jpgs])
