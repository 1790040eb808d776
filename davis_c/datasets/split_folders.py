"""Readers for the ``<root>/<split>/{JPEGImages,Annotations}/<video>/`` family: YouTube-VOS, MOSE, LVOS.

Shared rules: frames are the JPEGs of the video folder; annotations are palette PNGs named like their
frame and may exist on a subset of frames (sparse); each object is given on the first annotated frame
where it appears, as a label map holding only the objects that start there (the official YouTube-VOS
scripts of STCN and XMem feed them so).  ``meta.json`` files list videos and, for YouTube-VOS, the
frames whose prediction the server reads.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from davis_c.davis import Video, check_video_name
from davis_c.datasets.base import (FRAME_SUFFIXES, VOSDataset, first_appearance, given_from_first_appearance,
                                   list_files, read_sparse_masks, read_video_frames)
from common.errors import DavisError

__all__ = ["SplitFolderDataset", "YouTubeVOS", "MOSE", "LVOS"]


def _check_meta(meta, path: Path) -> None:
    """The shape of a meta.json: ``{"videos": {name: {"objects": {id: {"frames": [names]}}}}}`` with at least
    one video; anything else is an error naming the file and the key."""
    def bad(key: str, want: str, got) -> DavisError:
        return DavisError(f"{path}: key {key!r}: expected {want}, got {type(got).__name__} {str(got)[:60]!r}")

    if not isinstance(meta, dict):
        raise bad("(top level)", "a JSON object with a 'videos' mapping", meta)
    videos = meta.get("videos")
    if not isinstance(videos, dict):
        raise bad("videos", "a mapping of video name -> {'objects': ...}", videos)
    if not videos:
        raise DavisError(f"{path}: key 'videos' is empty (the meta file lists no video)")
    for name, entry in videos.items():
        if not isinstance(entry, dict):
            raise bad(f"videos.{name}", "a mapping with 'objects'", entry)
        objects = entry.get("objects", {})
        if not isinstance(objects, dict):
            raise bad(f"videos.{name}.objects", "a mapping of object id -> {'frames': [...]}", objects)
        for oid, obj in objects.items():
            if not isinstance(obj, dict):
                raise bad(f"videos.{name}.objects.{oid}", "a mapping with 'frames'", obj)
            frames = obj.get("frames", [])
            if not isinstance(frames, list) or not all(isinstance(f, str) for f in frames):
                raise bad(f"videos.{name}.objects.{oid}.frames", "a list of frame names (strings)", frames)


class SplitFolderDataset(VOSDataset):
    """``<root>/<split>/JPEGImages/<video>/*.jpg`` + ``<root>/<split>/Annotations/<video>/*.png``."""

    #: meta file candidates relative to the root, ``{split}`` filled in; the first that exists is read
    meta_files: tuple[str, ...] = ("{split}/meta.json",)

    def __init__(self, root: str | os.PathLike, split: str | None = None, all_frames: bool = False) -> None:
        self.root = Path(root)
        self.split = split or self.default_split
        check_video_name(self.split, "split")
        self._require_root()
        self.split_dir = self.root / self.split
        self.all_frames = bool(all_frames)
        self.image_root = self._image_root()
        self.annotation_root = self.split_dir / "Annotations"
        for folder, what in ((self.image_root, "frame"), (self.annotation_root, "annotation")):
            if not folder.is_dir():
                raise DavisError(f"{self.root}: {self.title} {what} folder not found: {folder} "
                                 f"(expected {self.root}/{self.split}/JPEGImages and .../Annotations)")
        self.meta, self.meta_file = self._read_meta()
        self.videos = self._list_videos()
        if not self.videos:
            raise DavisError(f"{self.image_root}: no video folder")

    def _image_root(self) -> Path:
        return self.split_dir / "JPEGImages"

    def _read_meta(self) -> tuple[dict, Path | None]:
        for pattern in self.meta_files:
            path = self.root / pattern.format(split=self.split)
            if path.is_file():
                try:
                    meta = json.loads(path.read_text(encoding="utf-8"))
                except (OSError, UnicodeDecodeError, ValueError) as exc:
                    raise DavisError(f"{path}: cannot read meta file ({exc})") from exc
                _check_meta(meta, path)
                return meta, path
        return {}, None

    #: splits whose every frame is annotated (a missing PNG there is an error, never an empty mask)
    dense_splits: tuple[str, ...] = ()
    #: whether the first frame of every video carries an annotation (the first given mask)
    first_frame_annotated = True

    def promised_annotations(self, name: str, frame_names: list[str]) -> dict[str, set[int]]:
        """``{frame name: object labels}`` of the annotations this split promises for a video: every frame
        of a dense split, the first frame, and each meta.json object's first listed frame (holding that
        object).  :meth:`load` checks each exists, naming the file."""
        promised: dict[str, set[int]] = {}
        if self.split in self.dense_splits:
            promised = {n: set() for n in frame_names}
        elif self.first_frame_annotated and frame_names:
            promised[frame_names[0]] = set()
        objects = (self.meta.get("videos", {}).get(name) or {}).get("objects") if self.meta else None
        for key, obj in (objects or {}).items():
            frames = obj.get("frames") if isinstance(obj, dict) else None
            if frames and str(key).isdigit() and 0 < int(key) < 255:
                promised.setdefault(str(frames[0]), set()).add(int(key))
        return promised

    def _check_promised(self, name: str, pngs: list[Path], frame_names: list[str], masks, annotated) -> None:
        have = {p.stem for p in pngs}
        index = {n: i for i, n in enumerate(frame_names)}
        for frame, labels in sorted(self.promised_annotations(name, frame_names).items()):
            path = self.mask_dir(name) / f"{frame}.png"
            if frame not in have:
                why = ("every frame of this split is annotated" if self.split in self.dense_splits
                       else f"{self.meta_file} gives object(s) {sorted(labels)} there" if labels
                       else "the first frame of a video carries its first given mask")
                raise DavisError(f"video {name!r}: annotation {path} is missing ({why})")
            t = index.get(frame)
            absent = sorted(lb for lb in labels if t is not None and not (masks[t] == lb).any())
            if absent:
                raise DavisError(f"video {name!r}: annotation {path} does not contain object(s) {absent} that "
                                 f"{self.meta_file} says start there")

    def _list_videos(self) -> list[str]:
        folders = sorted(p.name for p in self.image_root.iterdir() if p.is_dir())
        if self.meta:
            listed = sorted(self.meta["videos"])
            missing = [v for v in listed if v not in folders]
            if missing:
                raise DavisError(f"{self.meta_file}: video(s) {', '.join(missing[:5])} have no frame folder in "
                                 f"{self.image_root}")
            return [check_video_name(v, str(self.meta_file)) for v in listed]
        return [check_video_name(v, str(self.image_root)) for v in folders]

    def mask_dir(self, name: str) -> Path:
        return self.annotation_root / check_video_name(name)

    def check(self, names) -> None:
        super().check(names)
        for name in names:
            mdir = self.mask_dir(name)
            if not mdir.is_dir() or not any(p.suffix.lower() == ".png" for p in mdir.iterdir()):
                raise DavisError(f"video {name!r} has no annotations: {mdir} is missing or holds no PNG")

    def required_from_meta(self, name: str, frame_names: list[str], first_frame: int) -> tuple[int, ...]:
        """Frames the benchmark reads: the union of meta.json's per-object frame lists, else every frame
        from the first given one on."""
        objects = (self.meta.get("videos", {}).get(name) or {}).get("objects") if self.meta else None
        wanted = set()
        for obj in (objects or {}).values():
            if isinstance(obj, dict) and isinstance(obj.get("frames"), list):
                wanted.update(str(f) for f in obj["frames"])
        if wanted:
            index = {n: i for i, n in enumerate(frame_names)}
            missing = sorted(wanted - set(index))
            if missing:
                raise DavisError(f"{self.meta_file}: video {name!r} lists frame(s) {', '.join(missing[:5])} that "
                                 f"are not in {self.image_root / name}")
            return tuple(sorted(index[n] for n in wanted))
        return tuple(range(first_frame, len(frame_names)))

    def frame_paths(self, name: str) -> tuple[list[Path], list[Path]]:
        """Sorted frame JPEGs and annotation PNGs (a subset of the frames for sparse splits)."""
        check_video_name(name)
        return (list_files(self.image_root / name, FRAME_SUFFIXES, "frame", name),
                list_files(self.mask_dir(name), (".png",), "annotation", name))

    def load(self, name: str) -> Video:
        jpgs, pngs = self.frame_paths(name)
        frames = read_video_frames(jpgs, name)
        frame_names = [p.stem for p in jpgs]
        masks, annotated = read_sparse_masks(pngs, frame_names, frames.shape[1:3], name)
        self._check_promised(name, pngs, frame_names, masks, annotated)
        first = first_appearance(masks, annotated)
        if not first:
            raise DavisError(f"video {name!r}: no annotation in {self.mask_dir(name)} contains an object")
        given = given_from_first_appearance(masks, first)
        required = self.required_from_meta(name, frame_names, min(first.values()))
        return Video(name=name, frames=frames, masks=masks, object_ids=tuple(first), frame_names=frame_names,
                     given=given, annotated=annotated, required=required, dataset=self.name)


class YouTubeVOS(SplitFolderDataset):
    """YouTube-VOS 2018/2019.  ``valid``/``test``: frames every 5th, each object's mask only on its first
    frame, ground truth private (submission archive).  ``all_frames=True`` reads the frames of
    ``<root>/<split>_all_frames/JPEGImages`` (the 30 fps release) with the same annotations; the
    benchmark still reads only the frames meta.json lists."""

    name = "youtube-vos"
    title = "YouTube-VOS"
    protocol = "after-first"
    private_splits = ("valid", "test")
    default_split = "valid"

    def _image_root(self) -> Path:
        if self.all_frames:
            return self.root / f"{self.split}_all_frames" / "JPEGImages"
        return self.split_dir / "JPEGImages"


class MOSE(SplitFolderDataset):
    """MOSE.  ``train``: every frame annotated (scored locally); ``valid``: first-frame masks only,
    ground truth private (submission archive, same format as YouTube-VOS)."""

    name = "mose"
    title = "MOSE"
    protocol = "after-first"
    private_splits = ("valid", "test")
    default_split = "valid"
    meta_files = ("{split}/meta.json", "meta_{split}.json")
    dense_splits = ("train",)


class LVOS(SplitFolderDataset):
    """LVOS (long videos).  ``val``: public annotations, objects may first appear after frame 0 and be
    given there; ``test``: private."""

    name = "lvos"
    title = "LVOS"
    protocol = "after-first"
    private_splits = ("test",)
    default_split = "valid"
    first_frame_annotated = False  # objects may first appear (and be given) after frame 0
    meta_files = ("{split}/{split}_meta.json", "{split}_meta.json", "{split}/meta.json")
