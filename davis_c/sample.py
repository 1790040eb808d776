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
import colorsys
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
from PIL import Image

from common.atomic import atomic_dir
from common.cli import cli_main, prog
from davis_c.masks import write_mask

__all__ = ["LAYOUTS", "make_sample", "render_video", "main"]

MARKER = "davis_c_sample.json"
JPEG_QUALITY = 90


@dataclass
class _Object:
    label: int
    radius: float
    start: np.ndarray  # (x, y) centre at t = 0
    end: np.ndarray  # (x, y) centre at t = T-1
    wobble: np.ndarray  # (3, 3): rows k=2..4 -> amplitude, phase, angular speed of the outline harmonics
    stretch: tuple[float, float, float]  # amplitude, speed, axis angle of the breathing deformation
    colors: np.ndarray  # (2, 3) float RGB of the two stripe colours
    stripe: tuple[float, float]  # period (px), direction (rad)

    def centre(self, t: int, n_frames: int) -> np.ndarray:
        a = t / max(n_frames - 1, 1)
        return (1 - a) * self.start + a * self.end


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v)) * 255.0


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: float, channels: int = 3) -> np.ndarray:
    """Band-limited noise in [-1, 1]: a coarse random grid upsampled with bicubic interpolation."""
    gh, gw = max(2, int(h / cell) + 2), max(2, int(w / cell) + 2)
    grid = rng.uniform(-1, 1, size=(gh, gw, channels)).astype(np.float32)
    up = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    return up.reshape(h, w, channels)


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Low-saturation texture (cloudy noise + faint oriented stripes + grain) as float RGB."""
    base = _hsv(rng.uniform(), rng.uniform(0.05, 0.25), rng.uniform(0.35, 0.65))
    scale = min(h, w)
    # Mostly luminance variation (shared by the channels) with a little colour, so objects stand out by hue.
    img = (base + 40.0 * _smooth_noise(rng, h, w, cell=scale / 3, channels=1)
           + 18.0 * _smooth_noise(rng, h, w, cell=scale / 12, channels=1)
           + 10.0 * _smooth_noise(rng, h, w, cell=scale / 6))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ang = rng.uniform(0, np.pi)
    period = rng.uniform(0.06, 0.15) * scale
    stripes = np.sin(2 * np.pi * (xx * np.cos(ang) + yy * np.sin(ang)) / period)
    img += 12.0 * stripes[..., None]
    img += rng.normal(0, 4.0, size=img.shape)
    return img.astype(np.float32)


def _make_objects(rng: np.random.Generator, k: int, h: int, w: int, n_frames: int) -> list[_Object]:
    scale = min(h, w)
    hue0 = rng.uniform()
    radii = rng.uniform(0.13, 0.21, size=k) * scale
    # The last object partly leaves the frame: it ends with its centre just inside a border.
    objs: list[_Object] = []
    for idx in range(k):
        r = float(radii[idx])
        hue = hue0 + idx / k + rng.uniform(-0.04, 0.04)
        c1 = _hsv(hue, rng.uniform(0.75, 1.0), rng.uniform(0.8, 1.0))
        c2 = _hsv(hue + rng.uniform(-0.05, 0.05), rng.uniform(0.5, 0.9), rng.uniform(0.45, 0.6))
        wobble = np.stack([rng.uniform(0.04, 0.12, 3), rng.uniform(0, 2 * np.pi, 3), rng.uniform(-0.5, 0.5, 3)], 1)
        objs.append(_Object(label=idx + 1, radius=r, start=np.zeros(2), end=np.zeros(2), wobble=wobble,
                            stretch=(rng.uniform(0.1, 0.25), rng.uniform(0.3, 0.8), rng.uniform(0, np.pi)),
                            colors=np.stack([c1, c2]), stripe=(rng.uniform(0.25, 0.5) * r, rng.uniform(0, np.pi))))
    lo = lambda r: np.array([r, r])  # noqa: E731 - keep a start fully inside the frame
    hi = lambda r: np.array([w - r, h - r])  # noqa: E731
    last = objs[-1]
    last.start = rng.uniform(lo(last.radius), hi(last.radius))
    side = rng.integers(4)
    end = rng.uniform([0.2 * w, 0.2 * h], [0.8 * w, 0.8 * h])
    out = 0.25 * last.radius  # centre ends this far inside the border: roughly 40 % of the object is outside
    if side == 0:
        end[0] = out
    elif side == 1:
        end[0] = w - out
    elif side == 2:
        end[1] = out
    else:
        end[1] = h - out
    last.end = end
    # Every other object crosses the path of the next one at mid-video, so they occlude each other.
    for idx in range(k - 2, -1, -1):
        obj, nxt = objs[idx], objs[idx + 1]
        meet = nxt.centre(n_frames // 2, n_frames) + rng.uniform(-0.3, 0.3, 2) * obj.radius
        offset = rng.normal(size=2)
        offset *= rng.uniform(0.2, 0.35) * scale / max(np.linalg.norm(offset), 1e-6)
        obj.start = np.clip(meet + offset, lo(obj.radius), hi(obj.radius))
        a = (n_frames // 2) / max(n_frames - 1, 1)
        obj.end = obj.start + (meet - obj.start) / max(a, 1e-6)
    return objs


def _draw(obj: _Object, t: int, n_frames: int, h: int, w: int) -> tuple[tuple[slice, slice], np.ndarray, np.ndarray]:
    """Rasterise one object at frame t: (bbox slices, boolean mask, float RGB texture) inside the frame."""
    cx, cy = obj.centre(t, n_frames)
    reach = obj.radius * 1.7
    x0, x1 = max(int(np.floor(cx - reach)), 0), min(int(np.ceil(cx + reach)) + 1, w)
    y0, y1 = max(int(np.floor(cy - reach)), 0), min(int(np.ceil(cy + reach)) + 1, h)
    if x0 >= x1 or y0 >= y1:
        return (slice(0, 0), slice(0, 0)), np.zeros((0, 0), bool), np.zeros((0, 0, 3), np.float32)
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    dx, dy = xx - cx, yy - cy
    amp, speed, axis = obj.stretch
    s = 1.0 + amp * np.sin(speed * t)
    ca, sa = np.cos(axis), np.sin(axis)
    u, v = dx * ca + dy * sa, -dx * sa + dy * ca  # breathing: stretch along one axis, squeeze the other
    u, v = u / s, v * s
    theta = np.arctan2(v, u)
    rad = np.full_like(theta, obj.radius)
    for k, (a, phase, omega) in zip((2, 3, 4), obj.wobble):
        rad += obj.radius * a * np.sin(k * theta + phase + omega * t)
    mask = np.hypot(u, v) < rad
    period, ang = obj.stripe
    # Texture lives in object coordinates so that it moves (and rotates slightly) with the object.
    rot = ang + 0.05 * t
    phase = (dx * np.cos(rot) + dy * np.sin(rot)) / period
    mix = (0.5 + 0.5 * np.sign(np.sin(2 * np.pi * phase)))[..., None]
    tex = mix * obj.colors[0] + (1 - mix) * obj.colors[1]
    return (slice(y0, y1), slice(x0, x1)), mask, tex.astype(np.float32)


def render_video(rng: np.random.Generator, n_frames: int, height: int, width: int,
                 max_tries: int = 100, *, n_objects: int | None = None,
                 hidden_before: dict[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Draw one synthetic video: ``(T, H, W, 3)`` uint8 RGB frames and ``(T, H, W)`` uint8 label maps.

    All objects are clearly visible in frame 0 (contiguous ids 1..K there, as DAVIS expects), unless
    ``hidden_before`` ({label: frame}) keeps an object out of the video (pixels and labels) before that
    frame.  ``n_objects`` fixes K (the random stream is the same as without it).
    """
    k = int(rng.integers(1, 4))
    if n_objects is not None:
        k = int(n_objects)
    hidden_before = hidden_before or {}
    pan = np.ceil(np.array([0.15 * width, 0.15 * height])).astype(int)
    bg = _background(rng, height + 2 * pan[1], width + 2 * pan[0])
    pan_dir = rng.uniform(-1, 1, 2)
    for _ in range(max_tries):
        objs = _make_objects(rng, k, height, width, n_frames)
        depth = rng.permutation(k)  # drawing order, back to front
        labels0 = _labels_at(objs, depth, 0, n_frames, height, width)
        areas = [(labels0 == o.label).sum() / (np.pi * o.radius ** 2) for o in objs]
        if min(areas) > 0.35:
            break
    else:  # pragma: no cover - practically unreachable, kept so a bad seed fails loudly
        raise RuntimeError("could not place the sample objects visibly in the first frame")
    frames = np.empty((n_frames, height, width, 3), np.uint8)
    masks = np.empty((n_frames, height, width), np.uint8)
    for t in range(n_frames):
        a = t / max(n_frames - 1, 1)
        ox, oy = np.round(pan + pan_dir * pan * (a - 0.5) * 1.8).astype(int)
        img = bg[oy:oy + height, ox:ox + width].copy()
        lab = np.zeros((height, width), np.uint8)
        for d in depth:
            obj = objs[d]
            if t < hidden_before.get(obj.label, 0):
                continue
            sl, m, tex = _draw(obj, t, n_frames, height, width)
            if m.size:
                img[sl][m] = tex[m]
                lab[sl][m] = obj.label
        # A mild global illumination flicker, so that appearance is not perfectly constant over time.
        img *= 1.0 + 0.04 * np.sin(1.3 * t + k)
        frames[t] = np.clip(img, 0, 255).astype(np.uint8)
        masks[t] = lab
    return frames, masks


def _labels_at(objs: list[_Object], depth: np.ndarray, t: int, n_frames: int, h: int, w: int) -> np.ndarray:
    lab = np.zeros((h, w), np.uint8)
    for d in depth:
        sl, m, _ = _draw(objs[d], t, n_frames, h, w)
        if m.size:
            lab[sl][m] = objs[d].label
    return lab


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
