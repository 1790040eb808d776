"""Reader for a DAVIS-2017 dataset root (480p or Full-Resolution), one video at a time.

Layout (official): ``JPEGImages/<res>/<video>/00000.jpg ...``, ``Annotations/<res>/<video>/00000.png ...``
and ``ImageSets/<year>/<set>.txt`` (one video name per line).  Every problem with the input raises
:class:`DavisError` naming the file or video, because a silent half-read dataset makes benchmark numbers
meaningless.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Iterator

import numpy as np
from PIL import Image

from common.errors import DavisError
from davis_c.masks import read_mask

__all__ = ["DavisDataset", "DavisError", "Video", "RESOLUTIONS", "VOID_LABEL", "read_frame", "no_object_message"]

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


class DavisDataset:
    """Lazily iterable DAVIS-2017 split: ``for video in DavisDataset(root): ...`` loads one video at a time.

    ``videos`` lists the names of ``ImageSets/<year>/<image_set>.txt`` in file order (the official
    evaluation order).  ``load(name)`` reads every frame and annotation of one video and checks them.
    """

    def __init__(self, root: str | os.PathLike, image_set: str = "val", resolution: str = "480p",
                 year: str = "2017") -> None:
        self.root = Path(root)
        self.image_set = image_set
        self.resolution = resolution
        self.year = str(year)
        if resolution not in RESOLUTIONS:
            raise DavisError(f"{self.root}: unknown resolution {resolution!r}; expected one of {RESOLUTIONS}")
        if not self.root.is_dir():
            raise DavisError(f"{self.root}: DAVIS root folder not found")
        check_video_name(image_set, "image set")
        set_file = self.root / "ImageSets" / self.year / f"{image_set}.txt"
        if not set_file.is_file():
            raise DavisError(f"{set_file}: image set file not found (expected one video name per line)")
        try:
            lines = set_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise DavisError(f"{set_file}: cannot read image set ({exc})") from exc
        names: list[str] = []
        for lineno, line in enumerate(lines, 1):
            name = line.strip()
            if name:
                names.append(check_video_name(name, f"{set_file}:{lineno}"))
        if not names:
            raise DavisError(f"{set_file}: image set lists no video")
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise DavisError(f"{set_file}: video(s) listed twice: {', '.join(dup)}")
        self.set_file = set_file
        self.videos: list[str] = names

    def __len__(self) -> int:
        return len(self.videos)

    def __iter__(self) -> Iterator[Video]:
        for name in self.videos:
            yield self.load(name)

    def __repr__(self) -> str:
        return (f"DavisDataset(root={str(self.root)!r}, image_set={self.image_set!r}, "
                f"resolution={self.resolution!r}, videos={len(self.videos)})")

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
