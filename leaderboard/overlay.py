"""Masks drawn on frames: the one overlay function every qualitative output uses (report pages, figure, videos).

:func:`overlay` paints a frame with one or more label maps: each object a semi-transparent fill in its
DAVIS palette colour plus a contour of the same colour, so object ``k`` has the same colour in the ground
truth and in every method's masks. The drawing happens at the output size (``width``), so contours stay
2 px wide and readable on a 200 px thumbnail. Void (255) is not drawn. Pure function: arrays in, array out.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
from PIL import Image

from common.atomic import write_bytes_atomic

__all__ = ["palette", "overlay", "resize_frame", "read_label_map", "save_thumbnail", "THUMB_WIDTH",
           "THUMB_QUALITY", "FILL_ALPHA"]

#: width in pixels of the report's thumbnails and JPEG quality they are saved at (libjpeg via Pillow).
THUMB_WIDTH = 200
THUMB_QUALITY = 80
#: opacity of an object's fill (its contour is opaque)
FILL_ALPHA = 0.5
VOID = 255


def palette(n: int = 256) -> np.ndarray:
    """The DAVIS (PASCAL VOC) palette: ``(n, 3)`` uint8, id 1 = (128, 0, 0), 2 = (0, 128, 0), 3 = (128, 128, 0) ...

    The bits of an id are spread over the high bits of R, G and B, as the DAVIS annotation PNGs do."""
    out = np.zeros((n, 3), dtype=np.uint8)
    for i in range(n):
        c, rgb = i, [0, 0, 0]
        for j in range(8):
            for ch in range(3):
                rgb[ch] |= ((c >> ch) & 1) << (7 - j)
            c >>= 3
        out[i] = rgb
    return out


_PALETTE = palette()


def resize_frame(frame: np.ndarray, width: int | None) -> np.ndarray:
    """Area-averaged resize of an RGB frame to ``width`` (height keeps the aspect ratio); None = as is."""
    h, w = frame.shape[:2]
    if width is None or width == w:
        return frame
    return cv2.resize(frame, (int(width), max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)


def _resize_labels(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if labels.shape[:2] == size:
        return labels
    return cv2.resize(labels, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)


def overlay(frame: np.ndarray, labels: np.ndarray | Sequence[np.ndarray] | None = None, *,
            width: int | None = None, alpha: float = FILL_ALPHA, contour: int = 2,
            fill: Sequence[bool] | None = None) -> np.ndarray:
    """``frame`` (H, W, 3) uint8 RGB with the objects of ``labels`` drawn on it, at ``width`` (default: as is).

    ``labels``: one (H, W) label map (0 background, 1..K objects, 255 void) or several; each object gets
    its DAVIS palette colour as a fill of opacity ``alpha`` and an opaque ``contour`` px wide border. With
    several maps, ``fill`` says which are filled (default: only the first; the others are contours, e.g.
    a prediction filled and the ground truth outlined). Label maps of another size are resized with nearest
    neighbour to the frame's size first.
    """
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"overlay: frame must be (H, W, 3) uint8 RGB, got {frame.shape} {frame.dtype}")
    out = resize_frame(frame, width).astype(np.float32)
    if labels is None:
        return out.astype(np.uint8)
    maps = [labels] if isinstance(labels, np.ndarray) and labels.ndim == 2 else list(labels)
    fills = list(fill) if fill is not None else [k == 0 for k in range(len(maps))]
    if len(fills) != len(maps):
        raise ValueError(f"overlay: {len(maps)} label maps but {len(fills)} fill flags")
    size = out.shape[:2]
    kernel = np.ones((2 * contour + 1, 2 * contour + 1), np.uint8) if contour > 0 else None
    for lab, filled in zip(maps, fills):
        lab = np.asarray(lab)
        if lab.ndim != 2:
            raise ValueError(f"overlay: a label map must be (H, W), got {lab.shape}")
        if lab.shape != frame.shape[:2]:
            lab = _resize_labels(lab.astype(np.uint8), frame.shape[:2])
        lab = _resize_labels(lab.astype(np.uint8), size)
        for k in np.unique(lab):
            if k == 0 or k == VOID:
                continue
            obj = lab == k
            colour = _PALETTE[int(k)].astype(np.float32)
            if filled:
                out[obj] = (1 - alpha) * out[obj] + alpha * colour
            if kernel is not None:  # the inner border, ``contour`` px wide
                edge = obj & (cv2.erode(obj.astype(np.uint8), kernel, borderValue=1) == 0)
                out[edge] = colour
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def read_label_map(path: str | Path) -> np.ndarray:
    """A mask PNG written by ``harness.run --save-masks`` (palette indices = object ids) as (H, W) uint8."""
    with Image.open(path) as im:
        if im.mode not in ("P", "L", "I", "I;16"):
            raise ValueError(f"{path}: a mask PNG must be a palette or single-channel image, got mode {im.mode!r}")
        return np.asarray(im).astype(np.uint8)


def save_thumbnail(image: np.ndarray, path: str | Path, quality: int = THUMB_QUALITY) -> Path:
    """Write an RGB image as a JPEG at ``quality`` (atomically, ``common.atomic``; parents are created)."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buf, format="JPEG", quality=int(quality), optimize=True)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, buf.getvalue())
    return path
