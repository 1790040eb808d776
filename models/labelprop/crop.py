"""The square network input of CRW's JHMDB and VIP protocols (spec jhmdb_vip.md §1.2, §2.2).

Both protocols resize every frame to a ``crop``x``crop`` square, ignoring the aspect ratio, with OpenCV's
bilinear resize on the float32 RGB image in [0, 1] (not on the uint8 frame), and only then apply the
ImageNet normalisation.  Resizing the uint8 frame first would change the features.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

from models.labelprop.encoders import STRIDE, ResNet18Encoder

__all__ = ["square_frames", "encode_square", "grid_of"]


def grid_of(crop: int) -> int:
    """Grid cells per side of a ``crop``x``crop`` input (stride 8): 320 -> 40, 560 -> 70."""
    return -(-crop // STRIDE)


def square_frames(frames: np.ndarray, crop: int) -> np.ndarray:
    """uint8 (T, H, W, 3) RGB -> float32 (T, crop, crop, 3) in [0, 1], OpenCV bilinear on the float image."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
    if crop < STRIDE:
        raise ValueError(f"crop must be at least {STRIDE} pixels, got {crop}")
    out = np.empty((len(frames), crop, crop, 3), np.float32)
    for t, frame in enumerate(frames):
        out[t] = cv2.resize(frame.astype(np.float32) / 255.0, (crop, crop), interpolation=cv2.INTER_LINEAR)
    return out


def encode_square(model, frames: np.ndarray, crop: int) -> torch.Tensor:
    """Features (T, C, crop/8, crop/8) of ``model`` (a ``LabelPropagation``) on the square input.

    The ResNet-18 encoder sees exactly the reference's network input; the weight-free ``pixels`` encoder
    takes uint8 frames, so it gets the square frames rounded back to uint8.
    """
    images = square_frames(frames, crop)
    encoder = model.encoder
    if isinstance(encoder, ResNet18Encoder):
        out = []
        with torch.no_grad():
            for start in range(0, len(images), encoder.batch_size):
                x = torch.from_numpy(images[start:start + encoder.batch_size]).to(encoder.mean.device)
                x = (x.permute(0, 3, 1, 2) - encoder.mean) / encoder.std
                out.append(encoder(x))
        return torch.cat(out)
    return model.encode(np.clip(np.round(images * 255.0), 0, 255).astype(np.uint8))
