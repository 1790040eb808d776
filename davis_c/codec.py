"""Image bytes <-> RGB frames with OpenCV, exactly as the official generator writes and reads its files.

JPEG uses OpenCV's defaults (quality 95, 4:2:0), so ``encode_image(frame, "jpeg")`` is byte-identical to the
official ``cv2.imwrite`` of the same uint8 array; PNG is the lossless alternative of ``--codec png``.
"""
from __future__ import annotations

import cv2
import numpy as np

__all__ = ["CODECS", "encode_image", "decode_image"]

CODECS = ("jpeg", "png")


def encode_image(frame: np.ndarray, codec: str = "jpeg") -> bytes:
    """RGB uint8 (H, W, 3) -> JPEG (quality 95) or PNG bytes."""
    if codec not in CODECS:
        raise ValueError(f"unknown codec {codec!r}; expected one of {CODECS}")
    bgr = np.ascontiguousarray(frame[..., ::-1])
    ok, buf = cv2.imencode(".jpg" if codec == "jpeg" else ".png", bgr,
                           [cv2.IMWRITE_JPEG_QUALITY, 95] if codec == "jpeg" else [])
    if not ok:
        raise ValueError(f"OpenCV could not encode a {frame.shape} frame as {codec}")
    return buf.tobytes()


def decode_image(data: bytes | np.ndarray, what: str = "image") -> np.ndarray:
    """JPEG/PNG bytes -> RGB uint8; ``what`` names the source in the error."""
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"{what}: image bytes cannot be decoded")
    return np.ascontiguousarray(img[..., ::-1])
