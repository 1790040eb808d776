"""brightness and saturate (ImageNet-C): scikit-image's HSV round trip, compiled.

The official functions run ``skimage.color.rgb2hsv`` / ``hsv2rgb`` on float64 ``frame / 255`` that is in
BGR order (the script's channel quirk).  Many results land exactly on .5, so only the *same* float
operations in the same order reproduce the official uint8 files bit for bit.  These kernels perform
scikit-image's per-pixel arithmetic (including its tie rules for the hue and numpy's float modulo) in
numba, about 20x faster than the array version, on the channel-reversed pixel.
"""
from __future__ import annotations

import math

import numba
import numpy as np

from davis_c.corruptions._common import check_frame

__all__ = ["BRIGHTNESS", "SATURATE", "brightness", "saturate"]

#: value shift added to V (severity 1..5)
BRIGHTNESS = (0.1, 0.2, 0.3, 0.4, 0.5)
#: (multiplier, offset) on S (severity 1..5)
SATURATE = ((0.3, 0.0), (0.1, 0.0), (2.0, 0.0), (5.0, 0.1), (20.0, 0.2))


@numba.njit(cache=True, nogil=True)
def _rgb2hsv(a0, a1, a2):
    """scikit-image rgb2hsv for one pixel (a0, a1, a2 are the channels in the order the function sees)."""
    v = max(a0, max(a1, a2))
    delta = v - min(a0, min(a1, a2))
    if delta == 0.0:
        return 0.0, 0.0, v
    s = delta / v
    h = 0.0
    # later rules override earlier ones on ties (blue over green over red), as in scikit-image
    if a0 == v:
        h = (a1 - a2) / delta
    if a1 == v:
        h = 2.0 + (a2 - a0) / delta
    if a2 == v:
        h = 4.0 + (a0 - a1) / delta
    h = h / 6.0
    # numpy's float remainder ``h % 1.0``: here |h| < 1, so fmod(h, 1) == h; negatives shift into [0, 1)
    m = h
    if m != 0.0:
        if m < 0.0:
            m += 1.0
    else:
        m = 0.0
    return m, s, v


@numba.njit(cache=True, nogil=True)
def _hsv2rgb(h, s, v):
    """scikit-image hsv2rgb for one pixel."""
    hi = math.floor(h * 6)
    f = h * 6 - hi
    p = v * (1 - s)
    q = v * (1 - f * s)
    t = v * (1 - (1 - f) * s)
    i = int(hi) % 6
    if i == 0:
        return v, t, p
    if i == 1:
        return q, v, p
    if i == 2:
        return p, v, t
    if i == 3:
        return p, q, v
    if i == 4:
        return t, p, v
    return v, p, q


@numba.njit(cache=True, nogil=True)
def _u8(x):
    """clip01, x255, round half to even, saturate (what cv2.imwrite does with the float result)."""
    x = min(max(x, 0.0), 1.0) * 255
    return np.uint8(min(max(np.rint(x), 0.0), 255.0))


@numba.njit(cache=True, nogil=True)
def _hsv_kernel(img, mode, c0, c1):
    """mode 0: V <- clip(V + c0); mode 1: S <- clip(S * c0 + c1).  img is RGB; processed as BGR."""
    hgt, wid = img.shape[0], img.shape[1]
    out = np.empty((hgt, wid, 3), np.uint8)
    for y in range(hgt):
        for x in range(wid):
            # official order: channel 0 = B, 1 = G, 2 = R
            b = img[y, x, 2] / 255.0
            g = img[y, x, 1] / 255.0
            r = img[y, x, 0] / 255.0
            h, s, v = _rgb2hsv(b, g, r)
            if mode == 0:
                v = min(max(v + c0, 0.0), 1.0)
            else:
                s = min(max(s * c0 + c1, 0.0), 1.0)
            o0, o1, o2 = _hsv2rgb(h, s, v)
            out[y, x, 2] = _u8(o0)
            out[y, x, 1] = _u8(o1)
            out[y, x, 0] = _u8(o2)
    return out


def brightness(frame: np.ndarray, severity: int) -> np.ndarray:
    """ImageNet-C brightness on one RGB frame, bit-exact to the official BGR-fed function."""
    frame = np.ascontiguousarray(check_frame(frame))
    return _hsv_kernel(frame, 0, BRIGHTNESS[severity - 1], 0.0)


def saturate(frame: np.ndarray, severity: int) -> np.ndarray:
    """ImageNet-C saturate on one RGB frame; gray pixels get the official blue tint at severity 4/5."""
    frame = np.ascontiguousarray(check_frame(frame))
    a, b = SATURATE[severity - 1]
    return _hsv_kernel(frame, 1, a, b)
