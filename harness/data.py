"""Where the harness reads videos from: one interface over the three ways DAVIS / DAVIS-C is stored.

* a root of a benchmark :mod:`davis_c.datasets` reads (DAVIS-2017: ``JPEGImages/480p``, ``Annotations/480p``,
  ``ImageSets``; DAVIS-2016, YouTube-VOS, MOSE, LVOS, SA-V): the ``clean`` variant;
* a DAVIS-C HDF5 file written by ``davis_c.build`` (read with ``davis_c.open``): ``clean`` plus every
  ``<strength>/<corruption>`` it holds;
* the official DAVIS-C folder tree ``<root>/<strength>/<corruption>/<video>/00000.jpg``: frames only,
  so the ground truth comes from a DAVIS root given with ``annotations=`` (the TTT repository reads
  DAVIS-C the same way); that root also provides ``clean``.

Every source yields :class:`davis_c.davis.Video` objects whose masks are the benchmark's annotations,
says how they are scored (``protocol``, ``scored_locally``, ``split``), and can be re-opened from its
:meth:`spec` in a worker process (HDF5 handles must not cross a fork).
"""
from __future__ import annotations

import abc

import fnmatch
import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from common.errors import DavisError
from common.vocabulary import CLEAN, STRENGTHS, make_variant, parse_variant, strength_rank, variant_sort_key
from davis_c.davis import Video, read_frame

__all__ = ["DataError", "Source", "DatasetSource", "open_source", "select_variants", "select_videos"]

_FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")


class DataError(ValueError):
    """Data that cannot be benchmarked as asked; the message names the file, variant or video."""


class Source(abc.ABC):
    """Common interface: ``variants``, ``videos``, ``load(variant, video)``, ``check(...)``, ``spec()``."""

    kind: str = ""
    path: Path
    variants: list[str]
    videos: list[str]
    #: how its videos are scored (:func:`harness.protocols.score`): DAVIS-2017's rules unless the source
    #: holds another benchmark; ``scored_locally`` False = a private split (predictions go to its server)
    protocol: str = "davis2017"
    scored_locally: bool = True
    split: str | None = None

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


class DatasetSource(Source):
    """A root of any benchmark of :mod:`davis_c.datasets` (DAVIS-2017, DAVIS-2016, YouTube-VOS, MOSE, LVOS,
    SA-V): its ``clean`` videos, with the given masks, annotated and required frames of that benchmark."""

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
        self.protocol, self.scored_locally = self.dataset.protocol, self.dataset.scored_locally
        self.split = self.dataset.split

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
            raise DataError(f"{self.path} is a {self.dataset.title} root: it only holds the 'clean' variant, "
                            f"not {variant!r}")
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
            variants = [CLEAN] + [make_variant(s, c) for s in self.store.strengths for c in self.store.corruptions]
        self.variants = _ordered_variants(list(variants))
        self.videos = list(self.store.videos)
        from davis_c.datasets.stored import dataset_info

        # "-C" of another benchmark (davis_c.build --dataset): how its videos are scored; None = DAVIS-2017
        self.dataset = dataset_info(getattr(self.store, "attrs", {}))
        if self.dataset is not None:
            self.kind = f"{getattr(self.store, 'attrs', {}).get('dataset_title', 'DAVIS-C')} HDF5"
            self.protocol, self.scored_locally = self.dataset.protocol, self.dataset.scored_locally
            self.split = self.dataset.split

    def check(self, videos: Iterable[str], variants: Iterable[str] = ()) -> None:
        for video in videos:
            if video not in self.videos:
                raise DataError(f"{self.path}: video {video!r} is not in the file")

    def load(self, variant: str, video: str) -> Video:
        strength, corruption = parse_variant(variant)
        if strength is None:
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
        self.davis = DatasetSource(annotations, "davis2017")
        self.annotations = Path(annotations)
        variants = [CLEAN]
        videos: set[str] = set()
        for sdir in sorted((p for p in self.path.iterdir() if p.is_dir()), key=lambda p: (strength_rank(p.name), p.name)):
            for cdir in sorted(p for p in sdir.iterdir() if p.is_dir()):
                vids = [p.name for p in cdir.iterdir() if p.is_dir()]
                if vids:
                    variants.append(make_variant(sdir.name, cdir.name))
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
        if parse_variant(variant)[1] == "shake":
            raise DataError(f"{self.path / variant}: the temporal suite's shake moves the ground truth with the "
                            "frames, and a folder tree holds only frames: score it from the HDF5 store")
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
    """clean first, then by strength (low, med, high), corruptions in the official order (the vocabulary's)."""
    return sorted(dict.fromkeys(variants), key=variant_sort_key)


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
        if name is not None:
            return DatasetSource(path, name, split)
    if path.is_file():
        import h5py

        if not h5py.is_hdf5(path):
            raise DataError(f"--data {path}: a file, but not an HDF5 file from davis_c.build")
        return HDF5Source(path)
    if (path / "JPEGImages").is_dir():  # no ImageSets/2017: the DAVIS-2017 reader names what is missing
        return DatasetSource(path, "davis2017")
    if any((path / s).is_dir() for s in STRENGTHS) or annotations is not None:
        return FolderSource(path, annotations)
    raise DataError(f"--data {path}: neither a DAVIS root (no JPEGImages/), a DAVIS-C folder tree "
                    f"(no {'/'.join(STRENGTHS)} folders) nor an HDF5 file")


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
