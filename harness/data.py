"""Where the harness reads videos from: one interface over the three ways DAVIS / DAVIS-C is stored.

* a DAVIS-2017 root (``JPEGImages/480p``, ``Annotations/480p``, ``ImageSets``): the ``clean`` variant;
* a DAVIS-C HDF5 file written by ``davis_c.build`` (read with ``davis_c.open``): ``clean`` plus every
  ``<strength>/<corruption>`` it holds;
* the official DAVIS-C folder tree ``<root>/<strength>/<corruption>/<video>/00000.jpg``: frames only,
  so the ground truth comes from a DAVIS root given with ``annotations=`` (the TTT repository reads
  DAVIS-C the same way); that root also provides ``clean``.

Every source yields :class:`davis_c.davis.Video` objects whose masks are the DAVIS annotations, and
can be re-opened from its :meth:`spec` in a worker process (HDF5 handles must not cross a fork).
"""
from __future__ import annotations

import abc

import fnmatch
import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from davis_c.davis import DavisDataset, Video, read_frame
from common.errors import DavisError

__all__ = ["DataError", "Source", "DatasetSource", "open_source", "select_variants", "select_videos", "split_variant",
           "STRENGTH_ORDER", "CLEAN"]

CLEAN = "clean"
#: Strength folder names in increasing severity (DAVIS-C: low = 3, med = 4, high = 5).
STRENGTH_ORDER = ("low", "med", "high")
_FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")


class DataError(ValueError):
    """Data that cannot be benchmarked as asked; the message names the file, variant or video."""


def split_variant(variant: str) -> tuple[str | None, str | None]:
    """``"clean"`` -> (None, None); ``"high/glass_blur"`` -> ("high", "glass_blur")."""
    if variant == CLEAN:
        return None, None
    parts = variant.split("/")
    if len(parts) != 2 or not all(parts):
        raise DataError(f"variant {variant!r}: expected 'clean' or '<strength>/<corruption>'")
    return parts[0], parts[1]


def _strength_key(name: str) -> tuple[int, str]:
    return (STRENGTH_ORDER.index(name) if name in STRENGTH_ORDER else len(STRENGTH_ORDER), name)


class Source(abc.ABC):
    """Common interface: ``variants``, ``videos``, ``load(variant, video)``, ``check(...)``, ``spec()``."""

    kind: str = ""
    path: Path
    variants: list[str]
    videos: list[str]

    @abc.abstractmethod
    def load(self, variant: str, video: str) -> Video:
        """Frames and annotations of one (variant, video)."""

    def check(self, videos: Iterable[str], variants: Iterable[str] = ()) -> None:
        """Fail before any work when a selected video has no annotations or frames (cheap: no decoding)."""

    def spec(self) -> dict:
        return {"data": str(self.path), "annotations": None}

    def describe(self) -> str:
        return f"{self.kind} {self.path}"

    def close(self) -> None:
        pass

    def __enter__(self) -> "Source":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class DavisSource(Source):
    """A DAVIS root: the clean videos of its ``val`` image set."""

    kind = "DAVIS root"

    def __init__(self, root: str | os.PathLike, image_set: str = "val") -> None:
        self.path = Path(root)
        try:
            self.dataset = DavisDataset(self.path, image_set=image_set)
        except DavisError as exc:
            raise DataError(str(exc)) from exc
        self.variants = [CLEAN]
        self.videos = list(self.dataset.videos)

    def check(self, videos: Iterable[str], variants: Iterable[str] = ()) -> None:
        for video in videos:
            mdir = self.dataset.mask_dir(video)
            if not mdir.is_dir() or not any(p.suffix.lower() == ".png" for p in mdir.iterdir()):
                raise DataError(f"video {video!r} has no annotations: {mdir} is missing or holds no PNG")

    def load(self, variant: str, video: str) -> Video:
        if variant != CLEAN:
            raise DataError(f"{self.path} is a DAVIS root: it only holds the 'clean' variant, not {variant!r}")
        return self.dataset.load(video)


class DatasetSource(Source):
    """A root of any benchmark of :mod:`davis_c.datasets` (DAVIS-2016, YouTube-VOS, MOSE, LVOS, SA-V):
    its ``clean`` videos, with the given masks, annotated and required frames of that benchmark."""

    kind = "dataset root"

    def __init__(self, root: str | os.PathLike, dataset: str | None = None, split: str | None = None) -> None:
        from davis_c.datasets import open_dataset

        self.path = Path(root)
        try:
            self.dataset = open_dataset(dataset, self.path, split)
        except DavisError as exc:
            raise DataError(str(exc)) from exc
        self.variants = [CLEAN]
        self.videos = list(self.dataset.videos)

    def spec(self) -> dict:
        return {"data": str(self.path), "annotations": None, "dataset": self.dataset.name,
                "split": self.dataset.split}

    def describe(self) -> str:
        return f"{self.dataset.label} root {self.path}"

    def check(self, videos: Iterable[str], variants: Iterable[str] = ()) -> None:
        try:
            self.dataset.check(list(videos))
        except DavisError as exc:
            raise DataError(str(exc)) from exc

    def load(self, variant: str, video: str) -> Video:
        if variant != CLEAN:
            raise DataError(f"{self.path} is a dataset root: it only holds the 'clean' variant, not {variant!r}")
        return self.dataset.load(video)


class HDF5Source(Source):
    """A DAVIS-C HDF5 file from ``davis_c.build``."""

    kind = "DAVIS-C HDF5"

    def __init__(self, path: str | os.PathLike) -> None:
        import davis_c

        self.path = Path(path)
        try:
            self.store = davis_c.open(self.path)
        except (OSError, ValueError, KeyError) as exc:
            raise DataError(f"{self.path}: cannot open as a DAVIS-C HDF5 file ({exc})") from exc
        variants = getattr(self.store, "variants", None)
        if variants is None:
            variants = [CLEAN] + [f"{s}/{c}" for s in self.store.strengths for c in self.store.corruptions]
        self.variants = _ordered_variants(list(variants))
        self.videos = list(self.store.videos)
        from davis_c.datasets.stored import dataset_info

        # "-C" of another benchmark (davis_c.build --dataset): how its videos are scored; None = DAVIS-2017
        self.dataset = dataset_info(getattr(self.store, "attrs", {}))
        if self.dataset is not None:
            self.kind = f"{getattr(self.store, 'attrs', {}).get('dataset_title', 'DAVIS-C')} HDF5"

    def check(self, videos: Iterable[str], variants: Iterable[str] = ()) -> None:
        for video in videos:
            if video not in self.videos:
                raise DataError(f"{self.path}: video {video!r} is not in the file")

    def load(self, variant: str, video: str) -> Video:
        strength, corruption = split_variant(variant)
        if variant == CLEAN:
            return self.store.clean(video)
        return self.store[strength, corruption, video]

    def close(self) -> None:
        self.store.close()


class FolderSource(Source):
    """The official DAVIS-C folder tree; annotations (and ``clean``) from a DAVIS root."""

    kind = "DAVIS-C folder tree"

    def __init__(self, root: str | os.PathLike, annotations: str | os.PathLike | None) -> None:
        self.path = Path(root)
        if annotations is None:
            raise DataError(f"{self.path} is a DAVIS-C folder tree (frames only): give the DAVIS root that holds "
                            "its ground truth with --annotations DAVIS_ROOT")
        self.davis = DavisSource(annotations)
        self.annotations = Path(annotations)
        variants = [CLEAN]
        videos: set[str] = set()
        for sdir in sorted((p for p in self.path.iterdir() if p.is_dir()), key=lambda p: _strength_key(p.name)):
            for cdir in sorted(p for p in sdir.iterdir() if p.is_dir()):
                vids = [p.name for p in cdir.iterdir() if p.is_dir()]
                if vids:
                    variants.append(f"{sdir.name}/{cdir.name}")
                    videos.update(vids)
        if len(variants) == 1:
            raise DataError(f"{self.path}: no <strength>/<corruption>/<video>/ folders found")
        self.variants = _ordered_variants(variants)
        # Evaluation order = the DAVIS image set's order; videos only in the tree come after, sorted.
        self.videos = [v for v in self.davis.videos if v in videos] + sorted(videos - set(self.davis.videos))

    def spec(self) -> dict:
        return {"data": str(self.path), "annotations": str(self.annotations)}

    def describe(self) -> str:
        return f"{self.kind} {self.path} (annotations: {self.annotations})"

    def check(self, videos: Iterable[str], variants: Iterable[str] = ()) -> None:
        videos = list(videos)
        self.davis.check(videos)
        for variant in variants:
            if variant == CLEAN:
                continue
            missing = [v for v in videos if not (self.path / variant / v).is_dir()]
            if missing:
                raise DataError(f"{self.path / variant}: no frames for video(s) {', '.join(missing)}")

    def load(self, variant: str, video: str) -> Video:
        clean = self.davis.load(CLEAN, video)
        if variant == CLEAN:
            return clean
        folder = self.path / variant / video
        if not folder.is_dir():
            raise DataError(f"variant {variant!r}: video folder not found: {folder}")
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in _FRAME_SUFFIXES and p.is_file())
        names = [p.stem for p in files]
        if names != clean.frame_names:
            raise DataError(f"{folder}: frames {names[:3]}... ({len(names)}) do not match the annotations "
                            f"{clean.frame_names[:3]}... ({len(clean.frame_names)}) of video {video!r}")
        frames = np.stack([read_frame(p) for p in files])
        if frames.shape[1:3] != clean.masks.shape[1:3]:
            raise DataError(f"{folder}: frames are {frames.shape[2]}x{frames.shape[1]} but the annotations of "
                            f"{video!r} are {clean.masks.shape[2]}x{clean.masks.shape[1]} (WxH)")
        return Video(name=video, frames=frames, masks=clean.masks, object_ids=clean.object_ids,
                     frame_names=list(clean.frame_names))


def _ordered_variants(variants: list[str]) -> list[str]:
    """clean first, then by strength (low, med, high), corruptions in their given order."""
    corrupted = [v for v in variants if v != CLEAN]
    order = {v: i for i, v in enumerate(corrupted)}
    corrupted.sort(key=lambda v: (_strength_key(split_variant(v)[0]), order[v]))
    return ([CLEAN] if CLEAN in variants else []) + corrupted


def open_source(data: str | os.PathLike, annotations: str | os.PathLike | None = None,
                dataset: str | None = None, split: str | None = None) -> Source:
    """Open ``data`` as whatever it is: HDF5 file, DAVIS root, DAVIS-C folder tree, or (with ``dataset``,
    or a layout :func:`davis_c.datasets.detect` recognises) a root of another benchmark."""
    path = Path(data)
    if not path.exists():
        raise DataError(f"--data {path}: no such file or folder")
    if path.is_dir() and annotations is None:
        from davis_c.datasets import detect

        name = dataset or detect(path)
        if name is not None and name.lower() not in ("davis2017", "davis", "davis17"):
            return DatasetSource(path, name, split)
        if name is not None and split not in (None, "val"):
            return DavisSource(path, image_set=split)
    if path.is_file():
        import h5py

        if not h5py.is_hdf5(path):
            raise DataError(f"--data {path}: a file, but not an HDF5 file from davis_c.build")
        return HDF5Source(path)
    if (path / "JPEGImages").is_dir():
        return DavisSource(path)
    if any((path / s).is_dir() for s in STRENGTH_ORDER) or annotations is not None:
        return FolderSource(path, annotations)
    raise DataError(f"--data {path}: neither a DAVIS root (no JPEGImages/), a DAVIS-C folder tree "
                    f"(no {'/'.join(STRENGTH_ORDER)} folders) nor an HDF5 file")


def select_variants(available: Sequence[str], patterns: Sequence[str] | None, source: str = "data") -> list[str]:
    """Resolve ``--variants``: ``all``, ``clean``, exact names and globs (``high/*``, ``*/glass_blur``).

    The result keeps the source's order; a pattern that matches nothing is an error listing what exists.
    """
    if not patterns:
        return list(available)
    chosen: set[str] = set()
    for pattern in patterns:
        if pattern == "all":
            hits = list(available)
        else:
            hits = [v for v in available if fnmatch.fnmatchcase(v, pattern)]
        if not hits:
            raise DataError(f"variant {pattern!r} is not in {source}; available: {', '.join(available)}")
        chosen.update(hits)
    return [v for v in available if v in chosen]


def select_videos(available: Sequence[str], names: Sequence[str] | None, source: str = "data") -> list[str]:
    """Resolve ``--videos`` (exact names or globs), keeping the source's order."""
    if not names:
        return list(available)
    chosen: set[str] = set()
    for name in names:
        hits = [v for v in available if fnmatch.fnmatchcase(v, name)]
        if not hits:
            raise DataError(f"video {name!r} is not in {source}; available: {', '.join(available)}")
        chosen.update(hits)
    return [v for v in available if v in chosen]
