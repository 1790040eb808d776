"""OpenCV's 8-bit ``COLOR_HSV2RGB`` as OpenCV <= 4.11 computes it on x86-64, compiled: the bytes no longer
depend on the installed OpenCV.

cartoon's saturation boost converts its 8-bit HSV image back with ``cv2.cvtColor(hsv, COLOR_HSV2RGB)``.
OpenCV <= 4.11 (its AVX2 build, what a pip wheel runs on any current x86-64 CPU) converts each image row in
two parts, with different arithmetic:

* the first ``32 * floor(W / 32)`` pixels in vector blocks of 32: float32 ``s = S * (1/255)``,
  ``v = V * (1/255)``, ``h = H * (6/180)``, sector ``trunc(h)`` and fraction ``f = h - sector``,
  ``v * (1 - s)``, ``v * fma(-s, f, 1)``, ``v * fma(-s, 1 - f, 1)`` (the compiler fuses the inner
  multiply-subtract), times 255 **truncated** to 0..255;
* the remaining ``W mod 32`` pixels one by one: the same formulas (``fmod(h, 6)``, ``floor``, fused likewise),
  times 255 **rounded half to even**.

OpenCV 4.12 changed the blocking (64-pixel blocks where the CPU has AVX-512), so pixels that 4.11 converts
in vector blocks fall into the rounding tail: for 160-pixel-wide images 3-7 % of the values differ by +-1.
This module reproduces the 4.11 bytes whatever OpenCV is installed.  ``tests/golden/hsv8/`` holds the SHA-256
of OpenCV 4.11.0's output on all 2**24 (H, S, V) values at widths 17, 160, 216, 854, 1280 and 1920 (plus a
small array sample), and its README gives the recipe; ``tests/test_hsv8.py`` checks every value.
"""
from __future__ import annotations

import numba
import numpy as np

__all__ = ["hsv2rgb_u8", "BLOCK"]

_F = np.float32
_HSCALE = np.float32(6.0) / np.float32(180.0)   # 6.f / hrange, in float32 as OpenCV computes it
_INV255 = np.float32(1.0) / np.float32(255.0)
# which of (v, v(1-s), v(1-sf), v(1-s(1-f))) is B, G, R in each of the six sectors
_SECTOR = np.array([[1, 3, 0], [1, 0, 2], [3, 0, 1], [0, 2, 1], [0, 1, 3], [2, 1, 0]], np.int64)


@numba.njit(cache=True, nogil=True)
def _round_u8(x):
    r = np.rint(x)  # round half to even, as cvRound
    if r < 0:
        return np.uint8(0)
    if r > 255:
        return np.uint8(255)
    return np.uint8(r)


@numba.njit(cache=True, nogil=True)
def _fnma(a, b, c):
    """float32 ``c - a*b`` with one rounding (the fused multiply-subtract of the AVX2 build): the product of two
    float32 is exact in float64.  ``tests/test_hsv8.py`` checks the result on every input it can get."""
    return np.float32(np.float64(c) - np.float64(a) * np.float64(b))


@numba.njit(cache=True, nogil=True)
def _pixel(h8, s8, v8, vector, hscale, inv255, sector_of, tab):
    one = np.float32(1.0)
    s = np.float32(s8) * inv255
    v = np.float32(v8) * inv255
    h = np.float32(h8) * hscale
    if vector:
        pre = np.float32(np.trunc(h))
        frac = h - pre
        sector = int(pre - np.float32(np.trunc(pre * (one / np.float32(6.0)))) * np.float32(6.0))
    else:
        if s == 0:
            tab[0] = v
            tab[1] = v
            tab[2] = v
            tab[3] = v
            return
        h = np.float32(np.fmod(h, np.float32(6.0)))
        sector = int(np.floor(h))
        frac = h - np.float32(sector)
        if sector < 0 or sector >= 6:
            sector = 0
            frac = np.float32(0.0)
    t0 = v
    t1 = v * (one - s)
    t2 = v * _fnma(s, frac, one)
    t3 = v * _fnma(s, one - frac, one)
    tab[0] = t0
    tab[1] = t1
    tab[2] = t2
    tab[3] = t3
    b = tab[sector_of[sector, 0]]
    g = tab[sector_of[sector, 1]]
    r = tab[sector_of[sector, 2]]
    tab[0] = r
    tab[1] = g
    tab[2] = b


@numba.njit(cache=True, nogil=True)
def _trunc_u8(x):
    t = np.trunc(x)
    if t < 0:
        return np.uint8(0)
    if t > 255:
        return np.uint8(255)
    return np.uint8(t)


@numba.njit(cache=True, nogil=True)
def _kernel(src, out, hscale, inv255, sector_of, block):
    f255 = np.float32(255.0)
    rows, width = src.shape[0], src.shape[1]
    vec_end = (width // block) * block
    tab = np.empty(4, np.float32)
    for y in range(rows):
        for x in range(width):
            vector = x < vec_end
            _pixel(src[y, x, 0], src[y, x, 1], src[y, x, 2], vector, hscale, inv255, sector_of, tab)
            for c in range(3):
                val = tab[c] * f255
                out[y, x, c] = _trunc_u8(val) if vector else _round_u8(val)


#: pixels per vector block of OpenCV 4.11's AVX2 build (4 registers of 8 float32)
BLOCK = 32


def hsv2rgb_u8(hsv: np.ndarray) -> np.ndarray:
    """``cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)`` for a uint8 (H, W, 3) or (W, 3) image in OpenCV's 8-bit HSV
    (H in 0..179), the bytes OpenCV <= 4.11 gives, whatever OpenCV is installed."""
    hsv = np.asarray(hsv)
    if hsv.dtype != np.uint8 or hsv.ndim not in (2, 3) or hsv.shape[-1] != 3:
        raise ValueError(f"hsv2rgb_u8: expected uint8 (H, W, 3), got {hsv.dtype} {hsv.shape}")
    img = np.ascontiguousarray(hsv if hsv.ndim == 3 else hsv[None])
    out = np.empty_like(img)
    _kernel(img, out, _HSCALE, _INV255, _SECTOR, BLOCK)
    return out if hsv.ndim == 3 else out[0]
