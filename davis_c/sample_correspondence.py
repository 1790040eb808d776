"""Synthetic JHMDB and VIP roots for ``davis_c.sample --layout jhmdb|vip`` (label-propagation benchmarks).

``jhmdb``: ``Rename_Images/synth_action/<video>/00001.png ...`` (PNG frames), ``joint_positions/synth_action/
<video>/joint_positions.mat`` (``pos_img`` (2, 15, T), 1-based) and ``testlist_split1.txt`` written in
UVC's column order (``<mat> <frames>``) with absolute paths from another machine, as the public list
is, so the reader's column detection and path rewriting are exercised.  The 15 joints are points of a
textured object at frame 0 that then move with the object's centroid.

``vip``: ``VIP_Fine/Images/<video>/000000000001.jpg`` (every 25th frame number), grey class-id PNGs in
``VIP_Fine/Annotations/Category_ids/<video>/`` (objects drawn as face 13, upper-clothes 4, pants 8) and
``VIP_Fine/lists/val_videos.txt``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

__all__ = ["LAYOUTS", "write_layout"]

LAYOUTS = ("jhmdb", "vip")
_ACTION = "synth_action"
_FOREIGN = "/home/someone/datasets/JHMDB"  # where the public list's paths point
_VIP_CLASSES = (13, 4, 8)


def _render(seed: int, i: int, frames: int, height: int, width: int, n_objects: int):
    from davis_c.render import render_video

    return render_video(np.random.default_rng([int(seed), i]), frames, height, width, n_objects=n_objects)


def _joints(rng: np.random.Generator, labels: np.ndarray) -> np.ndarray:
    """(2, 15, T) 1-based pos_img: 15 points of the object in frame 0, moved with its centroid."""
    ys, xs = np.nonzero(labels[0] == 1)
    pick = rng.choice(len(xs), 15, replace=len(xs) < 15)
    base = np.stack([xs[pick], ys[pick]]).astype(np.float64) + rng.uniform(0, 1, (2, 15))
    c0 = np.array([xs.mean(), ys.mean()])
    pos = np.empty((2, 15, len(labels)))
    for t, lab in enumerate(labels):
        yt, xt = np.nonzero(lab == 1)
        ct = np.array([xt.mean(), yt.mean()]) if len(xt) else c0
        pos[:, :, t] = base + (ct - c0)[:, None]
    return pos + 1


def write_layout(tmp: Path, layout: str, names: Sequence[str], frames: int, height: int, width: int,
                 seed: int) -> None:
    if layout == "jhmdb":
        import scipy.io

        lines = []
        for i, name in enumerate(names):
            rgb, lab = _render(seed, i, frames, height, width, 1)
            fdir = tmp / "Rename_Images" / _ACTION / name
            fdir.mkdir(parents=True)
            for t in range(frames):
                Image.fromarray(rgb[t]).save(fdir / f"{t + 1:05d}.png")
            mdir = tmp / "joint_positions" / _ACTION / name
            mdir.mkdir(parents=True)
            pos = _joints(np.random.default_rng([int(seed), i, 1]), lab)
            scipy.io.savemat(str(mdir / "joint_positions.mat"), {"pos_img": pos})
            lines.append(f"{_FOREIGN}/joint_positions/{_ACTION}/{name}/joint_positions.mat "
                         f"{_FOREIGN}/Rename_Images/{_ACTION}/{name}\n")
        (tmp / "testlist_split1.txt").write_text("".join(lines))
    elif layout == "vip":
        base = tmp / "VIP_Fine"
        for i, name in enumerate(names):
            rgb, lab = _render(seed, i, frames, height, width, len(_VIP_CLASSES))
            ids = np.zeros(256, np.uint8)
            ids[1:1 + len(_VIP_CLASSES)] = _VIP_CLASSES
            for t in range(frames):
                stem = f"{25 * t + 1:012d}"
                img = base / "Images" / name / f"{stem}.jpg"
                img.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(rgb[t]).save(img, quality=95)
                png = base / "Annotations" / "Category_ids" / name / f"{stem}.png"
                png.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(ids[lab[t]], mode="L").save(png)
        (base / "lists").mkdir(parents=True)
        (base / "lists" / "val_videos.txt").write_text("".join(n + "\n" for n in names))
    else:
        raise ValueError(f"unknown label-propagation layout {layout!r}")
