"""What every benchmark reader hands out: :class:`Video` (one video in memory), and the helpers they share
(decoding a frame, checking a video name, explaining an empty first-frame annotation).

The readers themselves are :mod:`davis_c.datasets` (DAVIS-2017 is :class:`davis_c.datasets.Davis2017`).
Every problem with the input raises :class:`DavisError` naming the file or video, because a silent
half-read dataset makes benchmark numbers meaningless.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np
from PIL import Image

from common.errors import DavisError

__all__ = ["DavisError", "Video", "RESOLUTIONS", "VOID_LABEL", "read_frame", "check_video_name", "no_object_message"]

RESOLUTIONS = ("480p", "Full-Resolution")
VOID_LABEL = 255


@dataclass
class Video:
    """One DAVIS video in memory: RGB frames, label maps and the objects given in the first frame."""

    name: str
    frames: np.ndarray  # (T, H, W, 3) uint8 RGB
    masks: np.ndarray  # (T, H, W) uint8 label maps (0 background, 1..K objects, 255 void kept)
    object_ids: tuple[int, ...]  # sorted non-zero labels of the first-frame mask (255 excluded)
    frame_names: list[str] = field(default_factory=list)  # file stems in order, e.g. ["00000", ...]
    # What DAVIS-2017 does not need (davis_c.datasets fills them for other benchmarks; None = the DAVIS-2017
    # semi-supervised protocol: all objects given on frame 0, every frame annotated and predicted).
    given: dict[int, np.ndarray] | None = None  # {frame index: label map of the objects given there}
    annotated: tuple[int, ...] | None = None  # frame indices that have a ground-truth annotation
    required: tuple[int, ...] | None = None  # frame indices whose prediction the benchmark reads
    dataset: str = "davis2017"  # davis_c.datasets name of the benchmark the video comes from
    object_masks: dict[int, np.ndarray] | None = None  # SA-V: label -> (T, H, W) bool ground truth per object
    object_names: dict[int, str] | None = None  # label -> the benchmark's object name (SA-V folder "000")
    joints: np.ndarray | None = None  # JHMDB: (T_annotated, J, 2) 0-based pixel (x, y) ground truth (pos_img - 1)
    # the temporal suite (davis_c.corruptions.temporal_suite): (start, end) half-open runs of frames under a
    # freeze or a burst (recovery is measured from ``end``); None = not a temporal-suite variant
    events: tuple[tuple[int, int], ...] | None = None

    def __len__(self) -> int:
        return int(self.frames.shape[0])

    def given_masks(self) -> dict[int, np.ndarray]:
        """The given masks as ``{frame: label map}`` (models.inputs contract); DAVIS-2017: ``{0: masks[0]}``."""
        return dict(self.given) if self.given is not None else {0: self.masks[0]}

    def annotated_frames(self) -> tuple[int, ...]:
        return self.annotated if self.annotated is not None else tuple(range(len(self)))

    def required_frames(self) -> tuple[int, ...]:
        return self.required if self.required is not None else tuple(range(len(self)))


def read_frame(path: str | os.PathLike) -> np.ndarray:
    """Decode one frame as ``(H, W, 3)`` uint8 RGB (PIL, as the official VOS code does)."""
    path = Path(path)
    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"))
    except FileNotFoundError as exc:
        raise DavisError(f"{path}: frame file not found") from exc
    except Exception as exc:  # UnidentifiedImageError, truncated JPEG ...
        raise DavisError(f"{path}: cannot read frame image ({type(exc).__name__}: {exc})") from exc


def no_object_message(video: str, png: str | os.PathLike, labels: np.ndarray) -> str:
    """Why a first-frame annotation holds no object; a 0/255 mask is recognised as DAVIS-2016's."""
    msg = (f"video {video!r}: first-frame annotation {png} contains no object (only background 0 / void "
           f"{VOID_LABEL}); semi-supervised VOS needs the objects in frame 0")
    if VOID_LABEL in np.unique(labels):
        msg += (f". Its object pixels are {VOID_LABEL}, which is DAVIS-2017's void label: this looks like a "
                "DAVIS-2016 annotation (0 = background, 255 = the one object). Read it as DAVIS-2016 "
                "(`--dataset davis2016`) or convert the masks (255 -> 1)")
    return msg


def check_video_name(name: str, source: str = "video name") -> str:
    """Refuse names that would read outside the dataset root (``..``, absolute paths, separators)."""
    if not isinstance(name, str) or not name.strip():
        raise DavisError(f"{source}: empty video name")
    if name != name.strip():
        raise DavisError(f"{source}: video name {name!r} has leading/trailing white space")
    for pure in (PurePosixPath(name), PureWindowsPath(name)):
        if pure.is_absolute() or pure.anchor or len(pure.parts) != 1 or name in (".", ".."):
            raise DavisError(f"{source}: video name {name!r} would escape the dataset root "
                             "(absolute path, '..' or a path separator)")
    if "\x00" in name:
        raise DavisError(f"{source}: video name {name!r} contains a NUL byte")
    return name
