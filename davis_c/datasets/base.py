"""The one interface every benchmark reader implements, and the reading helpers they share.

A reader lists a split's videos (``videos``, in the benchmark's own order) and loads one video at a time
(``load(name)`` -> :class:`davis_c.davis.Video`) with everything the semi-supervised protocol of that
benchmark needs:

* ``frames`` / ``frame_names``: every frame that exists (for sparse sets, the frames of the folder read);
* ``given``: ``{frame index: label map}`` of the masks a method receives (an object on the frame where it
  first appears; DAVIS: frame 0);
* ``masks`` + ``annotated``: the ground-truth label maps and which frame indices have one (other frames are
  zeros and never scored);
* ``required``: the frames whose prediction the benchmark reads (scored locally, or put in a submission).

Whether the ground truth of the split is public (``scored_locally``) and which scoring rules apply
(``protocol``, see :mod:`harness.protocols`) are properties of the reader.
"""
from __future__ import annotations

import abc
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from davis_c.davis import Video, check_video_name, read_frame
from common.errors import DavisError
from davis_c.masks import read_mask

__all__ = ["VOSDataset", "FRAME_SUFFIXES", "list_files", "read_video_frames", "read_sparse_masks",
           "first_appearance", "given_from_first_appearance", "read_name_list"]

FRAME_SUFFIXES = (".jpg", ".jpeg")
VOID = 255


class VOSDataset(abc.ABC):
    """One split of one benchmark.  Subclasses set the class attributes and implement ``load``."""

    #: registry name (``--dataset``), e.g. ``"youtube-vos"``
    name: str = ""
    #: human name used in reports, e.g. ``"YouTube-VOS"``; the corrupted set is ``f"{title}-C"``
    title: str = ""
    #: scoring rules (harness.protocols) for splits whose ground truth is public
    protocol: str = ""
    #: splits with a private ground truth: predictions are exported for the benchmark server instead
    private_splits: tuple[str, ...] = ()
    default_split: str = "val"

    root: Path
    split: str
    videos: list[str]

    def __len__(self) -> int:
        return len(self.videos)

    def __iter__(self) -> Iterator[Video]:
        for video in self.videos:
            yield self.load(video)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={str(self.root)!r}, split={self.split!r}, videos={len(self.videos)})"

    @property
    def scored_locally(self) -> bool:
        """False where the split's ground truth is private (then the harness writes a submission)."""
        return self.split not in self.private_splits

    @property
    def label(self) -> str:
        """``"YouTube-VOS valid"``: title and split, as shown in reports."""
        return f"{self.title} {self.split}"

    @abc.abstractmethod
    def load(self, name: str) -> Video:
        """Frames, given masks and ground truth of one video."""

    def check(self, names: Sequence[str]) -> None:
        """Cheap existence checks of the selected videos (no decoding); raises DavisError."""
        for name in names:
            if name not in self.videos:
                raise DavisError(f"{self.root}: video {name!r} is not in the {self.label} split")

    def frame_paths(self, name: str):
        """(sorted frame files, annotation files) of a video, without decoding (the builder reads them)."""
        raise NotImplementedError

    def _require_root(self) -> None:
        if not self.root.is_dir():
            raise DavisError(f"{self.root}: {self.title} root folder not found")


# ------------------------------------------------------------------------------------------ helpers
def list_files(folder: Path, suffixes: Sequence[str], what: str, video: str) -> list[Path]:
    """Sorted files of ``folder`` with one of ``suffixes``; an error naming the video if none."""
    if not folder.is_dir():
        raise DavisError(f"video {video!r}: {what} folder not found: {folder}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in suffixes and p.is_file())
    if not files:
        raise DavisError(f"video {video!r}: no {what} file in {folder}")
    return files


def read_video_frames(paths: Sequence[Path], video: str) -> np.ndarray:
    """Decode frames into one (T, H, W, 3) uint8 array, checking they all have the first one's size."""
    frames = None
    for t, path in enumerate(paths):
        img = read_frame(path)
        if frames is None:
            frames = np.empty((len(paths), *img.shape), np.uint8)
        if img.shape != frames.shape[1:]:
            raise DavisError(f"video {video!r}: frame {path} is {img.shape[1]}x{img.shape[0]} but the first "
                             f"frame is {frames.shape[2]}x{frames.shape[1]} (WxH)")
        frames[t] = img
    assert frames is not None
    return frames


def read_sparse_masks(mask_paths: Sequence[Path], frame_names: Sequence[str], size: tuple[int, int],
                      video: str, binary: bool = False) -> tuple[np.ndarray, tuple[int, ...]]:
    """Label maps of the annotated frames: ((T, H, W) uint8 with zeros elsewhere, annotated indices).

    Each annotation is matched to the frame of the same file stem; one without a frame is an error.
    ``binary``: any non-zero value is object 1 (DAVIS-2016 0/255 masks, SA-V per-object PNGs).
    """
    index = {n: i for i, n in enumerate(frame_names)}
    masks = np.zeros((len(frame_names), *size), np.uint8)
    annotated = []
    for path in mask_paths:
        t = index.get(path.stem)
        if t is None:
            raise DavisError(f"video {video!r}: annotation {path} has no frame of the same name")
        m = read_mask(path)
        if m.shape != size:
            raise DavisError(f"video {video!r}: annotation {path} is {m.shape[1]}x{m.shape[0]} but the frames "
                             f"are {size[1]}x{size[0]} (WxH)")
        masks[t] = (m > 0) if binary else m
        annotated.append(t)
    return masks, tuple(sorted(annotated))


def first_appearance(masks: np.ndarray, annotated: Sequence[int]) -> dict[int, int]:
    """{object label: first annotated frame where it is present}, labels sorted (0 and 255 excluded)."""
    first: dict[int, int] = {}
    for t in sorted(annotated):
        for label in np.unique(masks[t]).tolist():
            if label not in (0, VOID) and label not in first:
                first[int(label)] = t
    return dict(sorted(first.items()))


def given_from_first_appearance(masks: np.ndarray, first: dict[int, int]) -> dict[int, np.ndarray]:
    """The given masks: on each object's first frame, a label map holding the objects that start there."""
    given: dict[int, np.ndarray] = {}
    for t in sorted(set(first.values())):
        starting = [label for label, f in first.items() if f == t]
        given[t] = np.where(np.isin(masks[t], starting), masks[t], 0).astype(np.uint8)
    return given


def read_name_list(path: Path, what: str = "video list") -> list[str]:
    """One video name per line (blank lines skipped), checked for path escapes and duplicates; ``what``
    names the file in messages (DAVIS-2017: ``"image set file"``)."""
    if not path.is_file():
        raise DavisError(f"{path}: {what} not found (expected one video name per line)")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DavisError(f"{path}: cannot read the {what} ({exc})") from exc
    names = [check_video_name(line.strip(), f"{path}:{i}") for i, line in enumerate(lines, 1) if line.strip()]
    if not names:
        raise DavisError(f"{path}: lists no video")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise DavisError(f"{path}: video(s) listed twice: {', '.join(dup)}")
    return names
