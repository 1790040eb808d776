"""Colour preservation of DAVIS-C style severities 1-4, and the ``cv2.imwrite``-style uint8 conversion.

The official script keeps the luma of the stylized image and the chroma of the content by a
BGR<->YCrCb round trip in OpenCV, but feeds it RGB arrays.  The forward and inverse conversions
mislabel the channels the same way, so the result's channel order is right and the only effect is
that the luma weights of R and B are swapped: Y' = 0.114 R + 0.587 G + 0.299 B.  We compute that same sequence with OpenCV's float
coefficients; it works on torch tensors so it can run on the GPU next to the network, and on
numpy arrays for convenience.  No clipping happens here: only :func:`to_uint8` saturates.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["preserve_colour", "to_uint8", "LUMA_WEIGHTS"]

#: luma weights as the official (channel-swapped) conversion applies them to R, G, B.
LUMA_WEIGHTS = (0.114, 0.587, 0.299)
# OpenCV's float YCrCb coefficients: forward Cr, Cb scales; inverse Cr->R', Cr->G, Cb->G, Cb->B'.
_CR, _CB = 0.713, 0.564
_INV_CR_R, _INV_CR_G, _INV_CB_G, _INV_CB_B = 1.403, -0.714, -0.344, 1.773


def _as_tensor(x: Tensor | np.ndarray) -> Tensor:
    return x if isinstance(x, Tensor) else torch.from_numpy(np.asarray(x, dtype=np.float32))


def preserve_colour(content: Tensor | np.ndarray, stylized: Tensor | np.ndarray) -> Tensor | np.ndarray:
    """Official colour preservation on RGB float32 values in 0..255, channels last ``(..., 3)``.

    Returns Y'(stylized) with the content's chroma, where OpenCV's "blue" is our R and its "red"
    our B (the official channel quirk).  Unclipped float32, same type as ``content``.
    """
    is_numpy = not isinstance(content, Tensor)
    c, g = _as_tensor(content).float(), _as_tensor(stylized).float()
    c_r, c_g, c_b = c.unbind(-1)
    w_r, w_g, w_b = LUMA_WEIGHTS
    y_g = g[..., 0] * w_r + g[..., 1] * w_g + g[..., 2] * w_b
    y_c = c_r * w_r + c_g * w_g + c_b * w_b
    cr = (c_b - y_c) * _CR       # OpenCV's Cr is computed from its channel 2, which is our B
    cb = (c_r - y_c) * _CB       # and its Cb from channel 0, our R
    out = torch.stack((y_g + _INV_CB_B * cb, y_g + _INV_CR_G * cr + _INV_CB_G * cb, y_g + _INV_CR_R * cr), dim=-1)
    return out.numpy() if is_numpy else out


def to_uint8(values: Tensor) -> Tensor:
    """Round half to even, then saturate to 0..255 -- what ``cv2.imwrite`` does to float data."""
    return torch.round(values).clamp_(0, 255).to(torch.uint8)
