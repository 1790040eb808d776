"""A grid image of one frame under every corruption x strength (like Figure 4 of the DAVIS-C paper).

    python -m davis_c.show --h5 davis_c.h5 --video blackswan --out grid.png
    python -m davis_c.show --h5 davis_c.h5 --video blackswan --out grid.png --frame 10 --zoom 3 --center 420 200
    python -m davis_c.show --h5 davis_c.h5 --video blackswan --out big.png --full-res --corruptions pixelate

The clean frame comes first, in its own row labelled "clean (original)"; below it, one column per
strength and one row per corruption in benchmark order.  Each cell shows the whole frame scaled to
``--tile-width`` and, under it, a zoomed crop (``--zoom`` x, nearest neighbour, so single pixels stay
visible) around ``--center`` (default: the frame centre), outlined on the clean frame; fine corruptions
(pixelate, crf, noise) are invisible in a 240-px thumbnail but plain in the crop.  ``--full-res`` shows
every tile at the frame's own size instead.  The default frame is the middle one: frame 0 is never
motion-blurred (the official window grows from the first frame).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from common.atomic import write_bytes_atomic
from common.cli import cli_main, prog
from davis_c.store import DavisCStore, StoreError

__all__ = ["grid", "zoom_crop", "default_frame", "main"]

_LABEL_W = 150
_HEADER_H = 28
_GAP = 4
_CROP_COLOUR = (255, 0, 0)


def _label(img: np.ndarray, text: str, x: int, y: int) -> None:
    cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)


def default_frame(n_frames: int) -> int:
    """The frame shown by default: the middle one (frame 0 is unchanged by motion_blur)."""
    return n_frames // 2


def _crop_box(shape: tuple[int, ...], out_w: int, out_h: int, zoom: int,
              center: tuple[int, int] | None) -> tuple[int, int, int, int]:
    """(x0, y0, w, h) of the source region that fills ``out_w x out_h`` at ``zoom``, inside the frame."""
    hgt, wid = shape[:2]
    w, h = min(wid, max(1, out_w // zoom)), min(hgt, max(1, out_h // zoom))
    cx, cy = center if center is not None else (wid // 2, hgt // 2)
    x0 = int(np.clip(cx - w // 2, 0, wid - w))
    y0 = int(np.clip(cy - h // 2, 0, hgt - h))
    return x0, y0, w, h


def zoom_crop(frame: np.ndarray, out_w: int, out_h: int, zoom: int = 2,
              center: tuple[int, int] | None = None) -> np.ndarray:
    """The region around ``center`` (x, y; default the frame centre) enlarged ``zoom`` times by pixel
    repetition, padded with white to ``out_h x out_w`` if the frame is smaller."""
    x0, y0, w, h = _crop_box(frame.shape, out_w, out_h, zoom, center)
    big = frame[y0:y0 + h, x0:x0 + w].repeat(zoom, 0).repeat(zoom, 1)
    out = np.full((out_h, out_w, 3), 255, np.uint8)
    out[:min(out_h, big.shape[0]), :min(out_w, big.shape[1])] = big[:out_h, :out_w]
    return out


def grid(store: DavisCStore, video: str, frame: int | None = None, tile_width: int = 240, *, zoom: int = 2,
         center: tuple[int, int] | None = None, full_res: bool = False,
         corruptions: Sequence[str] | None = None) -> np.ndarray:
    """RGB uint8 grid: the clean frame (own row), then one row per corruption and one column per strength.

    ``frame`` defaults to the middle frame; each cell is the scaled frame over a ``zoom`` x crop around
    ``center`` (``zoom=0``: no crop), or the frame at full size with ``full_res``."""
    clean = store.clean(video)
    n = len(clean)
    frame = default_frame(n) if frame is None else frame
    if not -n <= frame < n:
        raise StoreError(f"video {video!r} has {n} frames; --frame {frame} is out of range")
    if zoom < 0:
        raise StoreError(f"--zoom must be >= 0 (got {zoom})")
    hgt, wid = clean.frames.shape[1:3]
    if full_res:
        tile_width, zoom = wid, 0
    tile_h = max(1, round(hgt * tile_width / wid))
    crop_h = tile_h if zoom else 0
    cell_h = tile_h + (crop_h + _GAP if zoom else 0)
    rows = list(store.corruptions) if corruptions is None else [c for c in store.corruptions if c in corruptions]
    cols = list(store.strengths)
    step_x, step_y = tile_width + _GAP, cell_h + _GAP
    top = step_y + _HEADER_H  # clean row, then the strength headers
    canvas = np.full((top + len(rows) * step_y, _LABEL_W + max(1, len(cols)) * step_x, 3), 255, np.uint8)

    def put(img: np.ndarray, x: int, y: int, outline: bool = False) -> None:
        tile = img if full_res else cv2.resize(img, (tile_width, tile_h), interpolation=cv2.INTER_AREA)
        canvas[y:y + tile_h, x:x + tile_width] = tile
        if zoom:
            canvas[y + tile_h + _GAP:y + tile_h + _GAP + crop_h, x:x + tile_width] = \
                zoom_crop(img, tile_width, crop_h, zoom, center)
            if outline:  # where the crop comes from
                x0, y0, w, h = _crop_box(img.shape, tile_width, crop_h, zoom, center)
                s = tile_width / wid
                cv2.rectangle(canvas, (x + int(x0 * s), y + int(y0 * s)),
                              (x + int((x0 + w) * s) - 1, y + int((y0 + h) * s) - 1), _CROP_COLOUR, 1)

    what = f"frame {frame % n}/{n}" + (f", crop x{zoom}" if zoom else "")
    _label(canvas, "clean (original)", 4, cell_h // 2)
    _label(canvas, what, 4, cell_h // 2 + 18)
    put(clean.frames[frame], _LABEL_W, 0, outline=True)
    for j, s in enumerate(cols):
        _label(canvas, s, _LABEL_W + j * step_x + 4, step_y + 20)
    for i, c in enumerate(rows):
        y = top + i * step_y
        _label(canvas, c, 4, y + cell_h // 2)
        for j, s in enumerate(cols):
            if f"{s}/{c}" in store.variants:
                names = store.variant_frame_names(s, c, video)
                # stride (temporal suite) keeps some frames: the latest kept one at or before this frame
                t = max(i for i, nm in enumerate(names) if clean.frame_names.index(nm) <= frame % n)
                put(store.frames(s, c, video)[t], _LABEL_W + j * step_x, y)
    return canvas


@cli_main("davis_c.show", "nothing was written")
def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog=prog("davis_c.show", "davis-c-show"),
        description="Save a PNG grid of one frame under every corruption x strength: the clean frame first, "
                    "each cell the scaled frame over a zoomed crop (fine corruptions show in the crop).",
        epilog="Example:\n  python -m davis_c.show --h5 davis_c.h5 --video blackswan --out grid.png --zoom 3",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--h5", required=True, type=Path, help="store index file written by davis_c.build")
    p.add_argument("--video", help="video name (default: the first video of the store)")
    p.add_argument("--frame", type=int, default=None,
                   help="frame index (default: the middle frame; frame 0 is never motion-blurred)")
    p.add_argument("--tile-width", type=int, default=240, help="width of one tile in pixels (default 240)")
    p.add_argument("--zoom", type=int, default=2,
                   help="magnification of the crop under each tile (default 2; 0 = no crop)")
    p.add_argument("--center", type=int, nargs=2, metavar=("X", "Y"),
                   help="crop centre in frame pixels (default: the frame centre)")
    p.add_argument("--full-res", action="store_true", help="tiles at the frame's full size (no crop)")
    p.add_argument("--corruptions", nargs="+", metavar="NAME", help="only these rows (default: all)")
    p.add_argument("--out", required=True, type=Path, help="PNG file to write")
    args = p.parse_args(argv)
    try:
        with DavisCStore(args.h5) as store:
            video = args.video or store.videos[0]
            if video not in store.videos:
                raise StoreError(f"{args.h5}: no video {video!r}; videos: {', '.join(store.videos)}")
            unknown = sorted(set(args.corruptions or ()) - set(store.corruptions))
            if unknown:
                raise StoreError(f"{args.h5}: no corruption {', '.join(unknown)}; it has "
                                 f"{', '.join(store.corruptions)}")
            img = grid(store, video, args.frame, args.tile_width, zoom=args.zoom,
                       center=tuple(args.center) if args.center else None, full_res=args.full_res,
                       corruptions=args.corruptions)
    except (StoreError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    ok, png = cv2.imencode(".png", np.ascontiguousarray(img[..., ::-1]))
    if not ok:
        print(f"error: cannot encode the grid for {args.out}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(args.out, png.tobytes())
    print(f"wrote {args.out} ({img.shape[1]}x{img.shape[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
