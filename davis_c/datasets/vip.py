"""VIP (Video Instance-level Parsing) fine annotations, val split, as CRW's part-propagation protocol reads it.

Layout (official ``VIP_Fine`` release; ``root`` is the ``VIP_Fine`` folder or its parent)::

    Images/videos<N>/<12-digit frame number>.jpg              key frames (one every 25 video frames)
    Annotations/Category_ids/videos<N>/<same number>.png      8-bit grey class ids, 0..19
    lists/val_videos.txt                                      one video folder name per line

20 classes (``models.labelprop.parts.VIP_CLASSES``: 0 background ... 19 left-shoe).  Frames and labels
are listed separately, ordered by integer stem and paired by position, as the reference does; here a pair
whose stems differ, or a count mismatch, is an error naming the file.  Frames are decoded with OpenCV.
Every frame is annotated and scored (frame 0 included); frame 0's labels are given.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from common.errors import DavisError
from davis_c.davis import check_video_name
from davis_c.datasets.base import VOSDataset, read_name_list
from davis_c.datasets.correspondence import read_frames_cv2, sorted_by_int_stem
from davis_c.masks import read_mask

__all__ = ["VIP", "N_CLASSES"]

N_CLASSES = 20


class VIP(VOSDataset):
    name = "vip"
    title = "VIP"
    protocol = "vip-miou"
    default_split = "val"

    def __init__(self, root: str | os.PathLike, split: str | None = None) -> None:
        root = Path(root)
        self.root = root / "VIP_Fine" if (root / "VIP_Fine").is_dir() else root
        self.split = split or self.default_split
        self._require_root()
        check_video_name(self.split, "split")
        self.set_file = self.root / "lists" / f"{self.split}_videos.txt"
        self.videos = read_name_list(self.set_file)

    def frame_dir(self, name: str) -> Path:
        return self.root / "Images" / check_video_name(name)

    def mask_dir(self, name: str) -> Path:
        return self.root / "Annotations" / "Category_ids" / check_video_name(name)

    def frame_paths(self, name: str) -> tuple[list[Path], list[Path]]:
        folders = {"frame": (self.frame_dir(name), (".jpg", ".jpeg", ".png")), "label": (self.mask_dir(name), (".png",))}
        found = {}
        for what, (folder, suffixes) in folders.items():
            if not folder.is_dir():
                raise DavisError(f"video {name!r}: {what} folder not found: {folder}")
            files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes]
            if not files:
                raise DavisError(f"video {name!r}: no {what} file in {folder}")
            found[what] = sorted_by_int_stem(files, name)
        frames, labels = found["frame"], found["label"]
        for f, l in zip(frames, labels):
            if int(f.stem) != int(l.stem):
                raise DavisError(f"video {name!r}: frame {f} has no label of the same number (next label: {l})")
        if len(frames) != len(labels):
            extra = (frames if len(frames) > len(labels) else labels)[min(len(frames), len(labels))]
            raise DavisError(f"video {name!r}: {len(frames)} frames but {len(labels)} labels; unpaired: {extra}")
        return frames, labels

    def check(self, names) -> None:
        super().check(names)
        for name in names:
            self.frame_paths(name)

    def load(self, name: str):
        from davis_c.davis import Video

        jpgs, pngs = self.frame_paths(name)
        frames = read_frames_cv2(jpgs, name)
        masks = np.empty(frames.shape[:3], np.uint8)
        for t, path in enumerate(pngs):
            m = read_mask(path)
            if m.shape != frames.shape[1:3]:
                raise DavisError(f"video {name!r}: label {path} is {m.shape[1]}x{m.shape[0]} but the frames are "
                                 f"{frames.shape[2]}x{frames.shape[1]} (WxH)")
            masks[t] = m
        every = tuple(range(len(frames)))
        ids = tuple(int(k) for k in np.unique(masks[0]) if 0 < k < N_CLASSES)
        return Video(name=name, frames=frames, masks=masks, object_ids=ids, frame_names=[p.stem for p in jpgs],
                     given={0: masks[0]}, annotated=every, required=every, dataset=self.name)
