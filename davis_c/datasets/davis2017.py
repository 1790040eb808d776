"""DAVIS-2017 (semi-supervised): the existing :class:`davis_c.davis.DavisDataset` behind the common interface.

Layout: ``JPEGImages/480p/<video>/00000.jpg``, ``Annotations/480p/<video>/00000.png`` (palette PNGs, 255 =
void) and ``ImageSets/2017/<split>.txt``.  All objects are given on frame 0; every frame is annotated;
frames 1..T-2 are scored (:func:`harness.metrics.evaluate_video`).  Nothing about the reading changes.
"""
from __future__ import annotations

import os
from pathlib import Path

from davis_c.davis import DavisDataset, Video
from davis_c.datasets.base import VOSDataset

__all__ = ["Davis2017"]


class Davis2017(VOSDataset):
    name = "davis2017"
    title = "DAVIS-2017"
    protocol = "davis2017"
    private_splits = ("test-dev", "test-challenge")
    default_split = "val"

    def __init__(self, root: str | os.PathLike, split: str | None = None, resolution: str = "480p") -> None:
        self.root = Path(root)
        self.split = split or self.default_split
        self.reader = DavisDataset(self.root, image_set=self.split, resolution=resolution)
        self.videos = list(self.reader.videos)

    def load(self, name: str) -> Video:
        return self.reader.load(name)

    def mask_dir(self, name: str) -> Path:
        return self.reader.mask_dir(name)

    def frame_paths(self, name: str) -> tuple[list[Path], list[Path]]:
        return self.reader.frame_paths(name)

    @property
    def set_file(self) -> Path:
        return self.reader.set_file
