"""DAVIS mask PNGs: single-channel indexed ("P") images holding object ids, with the DAVIS palette.

Reading returns the palette *indices* (0 background, 1..K objects, 255 void); the palette only affects
display.  Writing produces exactly the files the official DAVIS tools write (uint8 ids, PASCAL-VOC colour
map), atomically so that an interrupted run never leaves a truncated PNG behind.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from common.atomic import atomic_write
from common.errors import DavisError

__all__ = ["DAVIS_PALETTE", "palette_colors", "read_mask", "write_mask"]


def palette_colors(n: int = 256) -> np.ndarray:
    """PASCAL-VOC colour map as an ``(n, 3)`` uint8 array (index 1 = dark red, 255 = (224, 224, 192)).

    The bits of each index are dealt three at a time to R, G, B, filling each channel from its top bit down.
    """
    idx = np.arange(n)
    cmap = np.zeros((n, 3), dtype=np.int64)
    for shift in range(8):  # 8 triples cover any index < 2**24
        for ch in range(3):
            bit = (idx >> (3 * shift + ch)) & 1
            cmap[:, ch] |= bit << (7 - shift)
    return cmap.astype(np.uint8)


DAVIS_PALETTE: bytes = palette_colors(256).tobytes()

# Single-channel PIL modes whose pixel values are the ids themselves.
_LABEL_MODES = ("P", "L", "1")


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """Read a palette/label PNG as a ``(H, W)`` uint8 map of ids; refuse RGB or other multi-channel images.

    Converting a palette PNG to grey ("L") would turn ids into luminances, so the indices are read as is.
    """
    path = Path(path)
    try:
        with Image.open(path) as img:
            mode = img.mode
            if mode not in _LABEL_MODES and mode not in ("I;16", "I"):
                raise DavisError(
                    f"{path}: mask must be a palette ('P') or single-channel label PNG, got mode {mode!r} "
                    "(an RGB colour rendering is not a label map; save the object ids with a palette)")
            arr = np.asarray(img)
    except DavisError:
        raise
    except FileNotFoundError as exc:
        raise DavisError(f"{path}: mask file not found") from exc
    except Exception as exc:  # PIL.UnidentifiedImageError, truncated data, zlib errors ...
        raise DavisError(f"{path}: cannot read mask PNG ({type(exc).__name__}: {exc})") from exc
    if arr.ndim != 2:
        raise DavisError(f"{path}: mask must be 2-D, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        if arr.dtype == bool:
            return arr.astype(np.uint8)
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            raise DavisError(f"{path}: mask holds ids outside 0..255 (max {int(arr.max())})")
        arr = arr.astype(np.uint8)
    return arr


def write_mask(path: str | os.PathLike, labels: np.ndarray) -> Path:
    """Write a ``(H, W)`` id map as a DAVIS palette PNG (atomically via ``common.atomic``; parents are created)."""
    path = Path(path)
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"{path}: a mask must be 2-D (H, W), got shape {labels.shape}")
    if labels.dtype != np.uint8:
        if labels.dtype == bool:
            labels = labels.astype(np.uint8)
        elif not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"{path}: mask ids must be integers, got dtype {labels.dtype}")
        elif labels.size and (labels.min() < 0 or labels.max() > 255):
            raise ValueError(f"{path}: mask ids must lie in 0..255 (got {labels.min()}..{labels.max()})")
        labels = labels.astype(np.uint8)
    img = _to_palette_image(labels)
    with atomic_write(path, "wb") as fh:   # 0644-like mode: masks are data meant to be shared and re-scored
        img.save(fh, format="PNG")
    return path


def _to_palette_image(labels: np.ndarray) -> Image.Image:
    img = Image.frombytes("P", (labels.shape[1], labels.shape[0]), np.ascontiguousarray(labels).tobytes())
    img.putpalette(DAVIS_PALETTE)
    return img
