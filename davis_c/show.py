"""A grid image of one frame under every corruption x strength (like Figure 4 of the DAVIS-C paper).

    python -m davis_c.show --h5 davis_c.h5 --video blackswan --out grid.png [--frame 0] [--tile-width 240]

Rows are the corruptions in benchmark order, columns the strengths; the clean frame is the first row.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from davis_c.cli import cli_main
from davis_c.store import DavisCStore, StoreError

__all__ = ["grid", "main"]

_LABEL_W = 150
_HEADER_H = 28


def _label(img: np.ndarray, text: str, x: int, y: int) -> None:
    cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)


def grid(store: DavisCStore, video: str, frame: int = 0, tile_width: int = 240) -> np.ndarray:
    """RGB uint8 grid: one row per corruption (clean first), one column per strength."""
    clean = store.clean(video)
    if not -len(clean) <= frame < len(clean):
        raise StoreError(f"video {video!r} has {len(clean)} frames; --frame {frame} is out of range")
    hgt, wid = clean.frames.shape[1:3]
    tile_h = max(1, round(hgt * tile_width / wid))
    rows = ["clean"] + list(store.corruptions)
    cols = list(store.strengths)
    canvas = np.full((_HEADER_H + len(rows) * (tile_h + 4), _LABEL_W + len(cols) * (tile_width + 4), 3), 255,
                     np.uint8)
    for j, s in enumerate(cols):
        _label(canvas, s, _LABEL_W + j * (tile_width + 4) + 4, 20)
    for i, c in enumerate(rows):
        y = _HEADER_H + i * (tile_h + 4)
        _label(canvas, c, 4, y + tile_h // 2)
        for j, s in enumerate(cols):
            if c == "clean":
                img = clean.frames[frame]
            elif f"{s}/{c}" in store.variants:
                img = store.frames(s, c, video)[frame]
            else:
                continue
            tile = cv2.resize(img, (tile_width, tile_h), interpolation=cv2.INTER_AREA)
            x = _LABEL_W + j * (tile_width + 4)
            canvas[y:y + tile_h, x:x + tile_width] = tile
            if c == "clean":
                break  # one clean tile
    return canvas


@cli_main("davis_c.show", "nothing was written")
def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m davis_c.show",
                                description="Save a PNG grid of one frame under every corruption x strength.")
    p.add_argument("--h5", required=True, type=Path, help="store index file written by davis_c.build")
    p.add_argument("--video", help="video name (default: the first video of the store)")
    p.add_argument("--frame", type=int, default=0, help="frame index (default 0)")
    p.add_argument("--tile-width", type=int, default=240, help="width of one tile in pixels (default 240)")
    p.add_argument("--out", required=True, type=Path, help="PNG file to write")
    args = p.parse_args(argv)
    try:
        with DavisCStore(args.h5) as store:
            video = args.video or store.videos[0]
            if video not in store.videos:
                raise StoreError(f"{args.h5}: no video {video!r}; videos: {', '.join(store.videos)}")
            img = grid(store, video, args.frame, args.tile_width)
    except (StoreError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(f".{args.out.name}.{os.getpid()}.tmp.png")
    if not cv2.imwrite(str(tmp), np.ascontiguousarray(img[..., ::-1])):
        print(f"error: cannot write {args.out}", file=sys.stderr)
        return 2
    os.replace(tmp, args.out)
    print(f"wrote {args.out} ({img.shape[1]}x{img.shape[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
