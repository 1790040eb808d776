"""JHMDB (pose keypoints), split-1 test set, as CRW's pose-propagation protocol reads it.

Layout (official release)::

    Rename_Images/<action>/<video>/00001.png ...              320x240 frames
    joint_positions/<action>/<video>/joint_positions.mat      key ``pos_img``: (2, 15, T), 1-based (x, y)

The split is a list file with one video per line and two whitespace-separated paths, a frame folder and a
``joint_positions.mat``, in **either column order**: CRW's loader wants ``<frames> <mat>``, while the only
public split-1 list (UVC's ``testlist_split1.txt``, 268 lines) has ``<mat> <frames>``.  The order is
detected per line (the ``.mat`` column), and only the trailing ``<action>/<video>`` of each path is used:
both are resolved under ``root`` (the public list carries absolute paths from its author's machine).
Default list: ``<root>/testlist_split1.txt``; ``list_file=`` names another.

Frames: every ``*.png`` of the folder, ordered by integer stem, decoded with OpenCV.  ``.mat`` files are
read with ``scipy.io.loadmat`` (MATLAB v7.3 files with h5py), never executed.  Ground truth = ``pos_img - 1``
(0-based pixels).  A video with fewer frames than annotated frames is an error (CRW's PCK script fails on
it with an IndexError); extra frames are kept and not scored.
"""
from __future__ import annotations

import os
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np

from common.errors import DavisError
from davis_c.davis import Video, check_video_name
from davis_c.datasets.base import VOSDataset
from davis_c.datasets.correspondence import read_frames_cv2, sorted_by_int_stem

__all__ = ["JHMDB", "read_joint_positions", "N_JOINTS", "DEFAULT_LIST"]

N_JOINTS = 15
DEFAULT_LIST = "testlist_split1.txt"


def read_joint_positions(path: Path) -> np.ndarray:
    """``pos_img`` of a ``joint_positions.mat`` as float64 (2, 15, T); errors name the file."""
    if not path.is_file():
        raise DavisError(f"{path}: joint positions file not found")
    try:
        import scipy.io

        try:
            pos = np.asarray(scipy.io.loadmat(str(path), variable_names=["pos_img"]).get("pos_img"))
        except NotImplementedError:  # MATLAB v7.3 = HDF5; h5py reads MATLAB's column-major arrays transposed
            import h5py

            with h5py.File(path, "r") as fh:
                if "pos_img" not in fh:
                    raise DavisError(f"{path}: no 'pos_img' variable") from None
                pos = np.asarray(fh["pos_img"]).T
    except DavisError:
        raise
    except Exception as exc:  # scipy/h5py format errors
        raise DavisError(f"{path}: cannot read the .mat file ({type(exc).__name__}: {exc})") from exc
    if pos is None or pos.ndim == 0:
        raise DavisError(f"{path}: no 'pos_img' variable")
    if pos.ndim != 3 or pos.shape[0] != 2 or pos.shape[1] != N_JOINTS:
        raise DavisError(f"{path}: pos_img has shape {pos.shape}, expected (2, {N_JOINTS}, T)")
    return pos.astype(np.float64)


def _tail(text: str, n: int) -> tuple[str, ...]:
    """The last ``n`` components of a POSIX or Windows path."""
    pure = PureWindowsPath(text) if "\\" in text else PurePosixPath(text)
    return tuple(pure.parts[-n:])


class JHMDB(VOSDataset):
    name = "jhmdb"
    title = "JHMDB"
    protocol = "jhmdb-pck"
    default_split = "test"

    def __init__(self, root: str | os.PathLike, split: str | None = None,
                 list_file: str | os.PathLike | None = None) -> None:
        self.root = Path(root)
        self.split = split or self.default_split
        self._require_root()
        self.set_file = Path(list_file) if list_file else self.root / DEFAULT_LIST
        #: "frames-first" (CRW) or "mat-first" (UVC), as detected in the list
        self.column_order: str | None = None
        self._entries: dict[str, tuple[str, str]] = {}
        self._read_list(self.set_file)
        self.videos = list(self._entries)

    def _read_list(self, path: Path) -> None:
        if not path.is_file():
            raise DavisError(f"{path}: JHMDB split list not found (one '<frame folder> <joint_positions.mat>' "
                             f"line per video, either column order; the split-1 test list is UVC's "
                             f"{DEFAULT_LIST}); pass list_file=")
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise DavisError(f"{path}: cannot read the split list ({exc})") from exc
        orders = set()
        for lineno, line in enumerate(lines, 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2:
                raise DavisError(f"{path}:{lineno}: expected two paths (frame folder, joint_positions.mat), "
                                 f"got {line!r}")
            mats = [p.lower().endswith(".mat") for p in parts]
            if mats.count(True) != 1:
                raise DavisError(f"{path}:{lineno}: exactly one of the two paths must be a .mat file: {line!r}")
            mat_first = mats[0]
            orders.add("mat-first" if mat_first else "frames-first")
            mat, frames = (parts[0], parts[1]) if mat_first else (parts[1], parts[0])
            action_f, video = _tail(frames.rstrip("/\\"), 2)
            action_m, video_m = _tail(mat, 3)[:2]
            if (action_f, video) != (action_m, video_m):
                raise DavisError(f"{path}:{lineno}: frame folder {frames} and joints {mat} are not the same video")
            for part in (action_f, video):
                check_video_name(part, f"{path}:{lineno}")
            if video in self._entries:
                raise DavisError(f"{path}:{lineno}: video {video!r} listed twice")
            self._entries[video] = (action_f, video)
        if not self._entries:
            raise DavisError(f"{path}: lists no video")
        if len(orders) > 1:
            raise DavisError(f"{path}: lines mix both column orders")
        self.column_order = orders.pop()

    def frame_dir(self, name: str) -> Path:
        action, video = self._entry(name)
        return self.root / "Rename_Images" / action / video

    def mat_path(self, name: str) -> Path:
        action, video = self._entry(name)
        return self.root / "joint_positions" / action / video / "joint_positions.mat"

    def _entry(self, name: str) -> tuple[str, str]:
        check_video_name(name)
        if name not in self._entries:
            raise DavisError(f"{self.set_file}: video {name!r} is not listed")
        return self._entries[name]

    def frame_paths(self, name: str) -> tuple[list[Path], list[Path]]:
        folder = self.frame_dir(name)
        if not folder.is_dir():
            raise DavisError(f"video {name!r}: frame folder not found: {folder}")
        pngs = [p for p in folder.iterdir() if p.suffix.lower() == ".png" and p.is_file()]
        if not pngs:
            raise DavisError(f"video {name!r}: no .png frame in {folder}")
        return sorted_by_int_stem(pngs, name), [self.mat_path(name)]

    def check(self, names) -> None:
        super().check(names)
        for name in names:
            for p in (self.frame_dir(name), self.mat_path(name)):
                if not p.exists():
                    raise DavisError(f"video {name!r}: not found: {p}")

    def load(self, name: str) -> Video:
        pngs, (mat,) = self.frame_paths(name)
        pos = read_joint_positions(mat)
        frames = read_frames_cv2(pngs, name)
        if pos.shape[2] > len(frames):
            raise DavisError(f"video {name!r}: {mat} annotates {pos.shape[2]} frames but {self.frame_dir(name)} "
                             f"has only {len(frames)} .png frames")
        joints = pos.transpose(2, 1, 0) - 1  # (T, J, 2) 0-based; no visibility flags (off-image joints keep theirs)
        annotated = tuple(range(pos.shape[2]))
        masks = np.zeros(frames.shape[:3], np.uint8)  # no label maps: the ground truth is `joints`
        return Video(name=name, frames=frames, masks=masks, object_ids=(), frame_names=[p.stem for p in pngs],
                         given={}, annotated=annotated, required=annotated, dataset=self.name, joints=joints)
