"""DAVIS-2016 (single object): binary 0/255 masks and ``ImageSets/<res>/<split>.txt`` image/annotation pairs.

Layout (official release)::

    JPEGImages/480p/<video>/00000.jpg
    Annotations/480p/<video>/00000.png        8-bit grey, 0 = background, 255 = the object (no void)
    ImageSets/480p/val.txt                    one line per frame: "/JPEGImages/480p/v/00000.jpg /Annotations/480p/v/00000.png"

The DAVIS-2017 release also carries ``ImageSets/2016/<split>.txt`` (one video name per line); that form is
read too.  The object is any non-zero pixel and becomes label 1; it is given on frame 0.
"""
from __future__ import annotations

import os
from pathlib import Path

from davis_c.davis import Video, check_video_name
from davis_c.datasets.base import (FRAME_SUFFIXES, VOSDataset, list_files, read_name_list, read_sparse_masks,
                                   read_video_frames)
from common.errors import DavisError

__all__ = ["Davis2016"]


class Davis2016(VOSDataset):
    name = "davis2016"
    title = "DAVIS-2016"
    protocol = "davis2016"
    default_split = "val"

    def __init__(self, root: str | os.PathLike, split: str | None = None, resolution: str = "480p") -> None:
        self.root = Path(root)
        self.split = split or self.default_split
        self.resolution = resolution
        self._require_root()
        check_video_name(self.split, "split")
        pairs_file = self.root / "ImageSets" / resolution / f"{self.split}.txt"
        names_file = self.root / "ImageSets" / "2016" / f"{self.split}.txt"
        self._pairs: dict[str, list[tuple[Path, Path]]] = {}
        if pairs_file.is_file():
            self.set_file = pairs_file
            self._read_pairs(pairs_file)
            self.videos = list(self._pairs)
        elif names_file.is_file():
            self.set_file = names_file
            self.videos = read_name_list(names_file)
        else:
            raise DavisError(f"{self.root}: no DAVIS-2016 split file: expected {pairs_file} (image/annotation "
                             f"path pairs) or {names_file} (video names)")

    def _read_pairs(self, path: Path) -> None:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise DavisError(f"{path}: cannot read the split file ({exc})") from exc
        for lineno, line in enumerate(lines, 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2:
                raise DavisError(f"{path}:{lineno}: expected '<image path> <annotation path>', got {line!r}")
            image, annotation = (self._resolve(p, path, lineno) for p in parts)
            video = image.parent.name
            check_video_name(video, f"{path}:{lineno}")
            if annotation.parent.name != video or annotation.stem != image.stem:
                raise DavisError(f"{path}:{lineno}: image {parts[0]} and annotation {parts[1]} are not the same "
                                 "video frame")
            self._pairs.setdefault(video, []).append((image, annotation))
        if not self._pairs:
            raise DavisError(f"{path}: lists no frame")

    def _resolve(self, text: str, source: Path, lineno: int) -> Path:
        rel = Path(text.lstrip("/"))
        if ".." in rel.parts or rel.is_absolute():
            raise DavisError(f"{source}:{lineno}: path {text!r} would escape the dataset root")
        return self.root / rel

    def frame_paths(self, name: str) -> tuple[list[Path], list[Path]]:
        check_video_name(name)
        if self._pairs:
            if name not in self._pairs:
                raise DavisError(f"{self.set_file}: video {name!r} is not listed")
            pairs = sorted(self._pairs[name], key=lambda p: p[0].stem)
            return [p[0] for p in pairs], [p[1] for p in pairs]
        jpgs = list_files(self.root / "JPEGImages" / self.resolution / name, FRAME_SUFFIXES, "frame", name)
        pngs = list_files(self.root / "Annotations" / self.resolution / name, (".png",), "annotation", name)
        return jpgs, pngs

    def mask_dir(self, name: str) -> Path:
        return self.root / "Annotations" / self.resolution / check_video_name(name)

    def load(self, name: str) -> Video:
        jpgs, pngs = self.frame_paths(name)
        for p in jpgs + pngs:
            if not p.is_file():
                raise DavisError(f"video {name!r}: listed file not found: {p}")
        frames = read_video_frames(jpgs, name)
        frame_names = [p.stem for p in jpgs]
        masks, annotated = read_sparse_masks(pngs, frame_names, frames.shape[1:3], name, binary=True)
        if annotated != tuple(range(len(frames))):
            missing = sorted(set(range(len(frames))) - set(annotated))
            raise DavisError(f"video {name!r}: annotation {self.mask_dir(name) / (frame_names[missing[0]] + '.png')} "
                             f"is missing (DAVIS-2016 annotates every frame; frame(s) "
                             f"{', '.join(frame_names[t] for t in missing[:5])} have no annotation)")
        if not masks[0].any():
            raise DavisError(f"video {name!r}: first-frame annotation {pngs[0]} contains no object")
        return Video(name=name, frames=frames, masks=masks, object_ids=(1,), frame_names=frame_names,
                     given={0: masks[0]}, annotated=annotated, required=tuple(range(len(frames))),
                     dataset=self.name)
