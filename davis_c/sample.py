"""A small synthetic DAVIS-2017 dataset, so that every test and demo runs without downloading DAVIS.

Each video has a textured, slowly panning background and 1-3 textured objects of clearly different colours
that move along crossing paths (so they occlude each other), deform (wobbling outline, breathing
stretch) and at least one of which partly leaves the frame.  Output is the exact DAVIS layout: JPEG frames,
palette PNG annotations with the DAVIS palette and ``ImageSets/2017/val.txt``.  Everything is drawn from
``numpy.random.default_rng([seed, video_index])``, so a seed always gives the same bytes.

CLI::

    python -m davis_c.sample --out sample/DAVIS            # 3 videos x 12 frames x 240x432, ~1 s
    python -m davis_c.sample --out tiny --videos 2 --frames 8 --height 64 --width 112 --seed 1
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from common.atomic import atomic_dir
from common.cli import cli_main, prog
from davis_c.masks import write_mask
from davis_c.render import render_video

__all__ = ["LAYOUTS", "make_sample", "render_video", "main"]

MARKER = "davis_c_sample.json"
JPEG_QUALITY = 90


#: ``--layout`` names: the official folder layout of each benchmark (see :func:`make_sample`)
LAYOUTS = ("davis2017", "davis2016", "youtube-vos", "mose", "lvos", "sav", "jhmdb", "vip")
#: frames of the full-rate video per sampled frame: YouTube-VOS valid keeps every 5th, SA-V masks are 6 of 24 fps
_STRIDE = {"youtube-vos": 5, "sav": 4}


def memory_estimate(frames: int, height: int, width: int, layout: str = "davis2017") -> int:
    """Peak bytes of drawing one video (measured with tracemalloc: ~100 bytes per pixel for the padded
    background and its noise layers plus 4 per pixel and frame; 1.4x margin)."""
    full = _STRIDE.get(layout, 1) * (frames - 1) + 1
    return int(1.4 * height * width * (100 + 4 * full))


def available_memory() -> int | None:
    """MemAvailable of /proc/meminfo in bytes (None where it cannot be read)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _later_object_plan(i: int, frames: int) -> tuple[int | None, dict[int, int]]:
    """Video 0 of the multi-object layouts has two objects, object 2 entering at sampled frame frames//3."""
    if i == 0:
        return 2, {2: max(1, frames // 3)}
    return None, {}


def _save_grey(path: Path, binary: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.where(binary, 255, 0).astype(np.uint8), mode="L").save(path)


def _write_layout(tmp: Path, layout: str, names: list[str], frames: int, height: int, width: int,
                  seed: int) -> None:
    """The non-DAVIS-2017 layouts (the DAVIS-2017 one is written by :func:`make_sample` itself)."""
    if layout in ("jhmdb", "vip"):  # label-propagation benchmarks: davis_c.sample_correspondence
        from davis_c.sample_correspondence import write_layout

        return write_layout(tmp, layout, names, frames, height, width, seed)
    stride = _STRIDE.get(layout, 1)
    meta: dict = {"videos": {}}
    for i, name in enumerate(names):
        rng = np.random.default_rng([int(seed), i])
        if layout == "davis2016":
            n_obj, hidden = 1, {}
        else:
            n_obj, hidden = _later_object_plan(i, frames)
        full = stride * (frames - 1) + 1
        rgb, lab = render_video(rng, full, height, width, n_objects=n_obj,
                                hidden_before={k: v * stride for k, v in hidden.items()})
        if layout == "davis2016":
            for t in range(frames):
                _save_jpeg(tmp / "JPEGImages" / "480p" / name / f"{t:05d}.jpg", rgb[t])
                _save_grey(tmp / "Annotations" / "480p" / name / f"{t:05d}.png", lab[t] > 0)
            continue
        if layout == "youtube-vos":
            sparse = list(range(0, full, stride))
            for t in range(full):
                _save_jpeg(tmp / "valid_all_frames" / "JPEGImages" / name / f"{t:05d}.jpg", rgb[t])
            seen: set[int] = set()
            objects: dict[str, dict] = {}
            for t in sparse:
                _save_jpeg(tmp / "valid" / "JPEGImages" / name / f"{t:05d}.jpg", rgb[t])
                new = [int(k) for k in np.unique(lab[t]) if k and int(k) not in seen]
                if new:  # valid: each object's mask only on the frame where it first appears
                    write_mask(tmp / "valid" / "Annotations" / name / f"{t:05d}.png",
                               np.where(np.isin(lab[t], new), lab[t], 0).astype(np.uint8))
                    for k in new:
                        objects[str(k)] = {"category": "synthetic",
                                           "frames": [f"{u:05d}" for u in sparse if u >= t]}
                    seen.update(new)
            meta["videos"][name] = {"objects": objects}
        elif layout == "mose":
            for t in range(frames):
                for split in ("train", "valid"):
                    _save_jpeg(tmp / split / "JPEGImages" / name / f"{t:05d}.jpg", rgb[t])
                write_mask(tmp / "train" / "Annotations" / name / f"{t:05d}.png", lab[t])
            write_mask(tmp / "valid" / "Annotations" / name / "00000.png", lab[0])  # first-frame masks only
        elif layout == "lvos":
            objects = {}
            for t in range(frames):
                _save_jpeg(tmp / "valid" / "JPEGImages" / name / f"{t + 1:08d}.jpg", rgb[t])
                write_mask(tmp / "valid" / "Annotations" / name / f"{t + 1:08d}.png", lab[t])
            for k in (int(v) for v in np.unique(lab) if v):
                present = [t for t in range(frames) if (lab[t] == k).any()]
                objects[str(k)] = {"frame_range": {"start": f"{present[0] + 1:08d}", "end": f"{present[-1] + 1:08d}"}}
            meta["videos"][name] = {"objects": objects}
        elif layout == "sav":
            for t in range(full):
                _save_jpeg(tmp / "JPEGImages_24fps" / name / f"{t:05d}.jpg", rgb[t])
            for k in (int(v) for v in np.unique(lab) if v):
                for t in range(0, full, stride):  # every object has a (maybe empty) mask on every 6 fps frame
                    _save_grey(tmp / "Annotations_6fps" / name / f"{k - 1:03d}" / f"{t:05d}.png", lab[t] == k)
        else:  # pragma: no cover - guarded by make_sample
            raise ValueError(layout)
    if layout == "davis2016":
        sets = tmp / "ImageSets" / "480p"
        sets.mkdir(parents=True)
        lines = [f"/JPEGImages/480p/{n}/{t:05d}.jpg /Annotations/480p/{n}/{t:05d}.png\n"
                 for n in names for t in range(frames)]
        (sets / "val.txt").write_text("".join(lines))
    elif layout == "youtube-vos":
        (tmp / "valid" / "meta.json").write_text(json.dumps(meta, indent=1))
    elif layout == "lvos":
        (tmp / "valid" / "valid_meta.json").write_text(json.dumps(meta, indent=1))
    elif layout == "sav":
        (tmp / "sav_val.txt").write_text("".join(n + "\n" for n in names))


def _save_jpeg(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path, quality=JPEG_QUALITY)


def make_sample(out: str | os.PathLike, *, videos: int = 3, frames: int = 12, height: int = 240,
                width: int = 432, seed: int = 0, overwrite: bool = False, layout: str = "davis2017") -> Path:
    """Write a synthetic dataset root at ``out`` in the official ``layout`` of a benchmark and return it.

    ``davis2017`` (default): DAVIS-2017 (palette PNGs, ``ImageSets/2017/val.txt``).  ``davis2016``: one
    object, 0/255 grey masks, ``ImageSets/480p/val.txt`` path pairs.  ``youtube-vos``: ``valid/`` with
    every 5th frame, each object's mask on its first frame only, ``meta.json``, and ``valid_all_frames/``.
    ``mose``: ``train/`` (all frames annotated) and ``valid/`` (first-frame masks).  ``lvos``: ``valid/``
    with 8-digit frame names from 00000001 and ``valid_meta.json``.  ``sav``: ``JPEGImages_24fps``,
    per-object ``Annotations_6fps/<video>/<object>/`` (every 4th frame) and ``sav_val.txt``.  In all but
    the DAVIS layouts, video 0 has two objects and object 2 enters the video at sampled frame frames//3.
    ``jhmdb`` / ``vip``: the JHMDB pose and VIP part layouts (:mod:`davis_c.sample_correspondence`).

    The dataset is built in a temporary sibling folder and moved into place at the end, so an
    interrupted run leaves nothing half-written.  If ``out`` already holds a sample made with the same
    parameters it is reused as is; any other non-empty ``out`` is refused unless ``overwrite``.
    """
    if videos < 1 or frames < 3 or height < 16 or width < 16:
        raise ValueError(f"sample needs videos >= 1, frames >= 3 (the evaluation drops the first and last "
                         f"frame) and a size of at least 16x16; got {videos=} {frames=} {height=} {width=}")
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; expected one of {', '.join(LAYOUTS)}")
    need, have = memory_estimate(frames, height, width, layout), available_memory()
    if have is not None and need > have:  # refuse before any work (not a crash after allocating)
        raise ValueError(f"a {height}x{width} sample of {frames} frames needs about {need / 2**30:.1f} GiB of memory "
                         f"per video, more than the {have / 2**30:.1f} GiB available; use a smaller "
                         "--height/--width/--frames")
    out = Path(out)
    params = {"videos": int(videos), "frames": int(frames), "height": int(height), "width": int(width),
              "seed": int(seed), "format": 1}
    if layout != "davis2017":
        params["layout"] = layout
    if out.exists():
        if not out.is_dir():
            raise FileExistsError(f"{out}: exists and is not a folder")
        marker = out / MARKER
        if marker.is_file() and not overwrite:
            try:
                if json.loads(marker.read_text()) == params:
                    return out
            except ValueError:
                pass
        if any(out.iterdir()):
            if not overwrite:
                raise FileExistsError(f"{out}: folder is not empty and holds no sample with these parameters "
                                      "(use overwrite=True / --force to replace it)")
            shutil.rmtree(out)
    with atomic_dir(out) as tmp:   # the sample appears complete or not at all
        names = [f"synth-{i:03d}" for i in range(videos)]
        if layout != "davis2017":
            _write_layout(tmp, layout, names, frames, height, width, seed)
        for i, name in enumerate(names if layout == "davis2017" else []):
            rng = np.random.default_rng([int(seed), i])
            rgb, lab = render_video(rng, frames, height, width)
            fdir = tmp / "JPEGImages" / "480p" / name
            fdir.mkdir(parents=True)
            for t in range(frames):
                Image.fromarray(rgb[t]).save(fdir / f"{t:05d}.jpg", quality=JPEG_QUALITY)
                write_mask(tmp / "Annotations" / "480p" / name / f"{t:05d}.png", lab[t])
        if layout == "davis2017":
            sets = tmp / "ImageSets" / "2017"
            sets.mkdir(parents=True)
            (sets / "val.txt").write_text("".join(n + "\n" for n in names))
        (tmp / MARKER).write_text(json.dumps(params))
    return out


@cli_main("davis_c.sample", "nothing half-written is left; rerun the same command")
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog=prog("davis_c.sample", "davis-c-sample"),
        description="Write a small synthetic dataset in the exact DAVIS-2017 layout (JPEGImages/480p, "
                    "Annotations/480p with DAVIS palette PNGs, ImageSets/2017/val.txt), or with --layout in the "
                    "official layout of DAVIS-2016, YouTube-VOS, MOSE, LVOS or SA-V. Deterministic per seed.")
    parser.add_argument("--out", required=True, type=Path, help="dataset root to create (e.g. sample/DAVIS)")
    parser.add_argument("--videos", type=int, default=3, help="number of videos (default 3)")
    parser.add_argument("--frames", type=int, default=12, help="frames per video (default 12)")
    parser.add_argument("--height", type=int, default=240, help="frame height in pixels (default 240)")
    parser.add_argument("--width", type=int, default=432, help="frame width in pixels (default 432)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--force", action="store_true", help="replace a non-empty --out folder")
    parser.add_argument("--layout", choices=LAYOUTS, default="davis2017",
                        help="official layout to write (default davis2017); the others are the DAVIS-2016, "
                             "YouTube-VOS (valid), MOSE (train + valid), LVOS (valid) and SA-V (val) layouts, "
                             "where video 0 has an object that first appears after frame 0, and the JHMDB (pose "
                             "keypoints, split-1 list in UVC's column order) and VIP (part labels) layouts")
    args = parser.parse_args(argv)
    try:
        root = make_sample(args.out, videos=args.videos, frames=args.frames, height=args.height,
                           width=args.width, seed=args.seed, overwrite=args.force, layout=args.layout)
    except (ValueError, FileExistsError) as exc:
        parser.error(str(exc))
    what = "DAVIS" if args.layout == "davis2017" else args.layout
    print(f"wrote synthetic {what} sample: {root} ({args.videos} videos x {args.frames} frames, "
          f"{args.height}x{args.width}, seed {args.seed})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
