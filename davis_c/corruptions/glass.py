"""glass_blur (ImageNet-C), exact and fast.

Official algorithm: Gaussian blur, truncate to uint8, a sequential "local shuffle" that (because of a
tuple assignment of numpy views) *copies* pixel (h+dy, w+dx) onto (h, w) for every pixel visited in
descending row/column order, then blur again.  The official per-pixel ``np.random.randint`` loop takes
6-10 s per 480x854 frame.  Here the offsets are drawn in one call from the same legacy ``RandomState``
(same order: iteration, row descending, column descending, dx then dy, which yields the same numbers), and
the sequential copy and both blurs run compiled.  The blur kernels perform scipy's ``correlate1d``
arithmetic (mode "nearest", truncate 4, symmetric-kernel summation order) with the ``/255``, the uint8
truncation and the final rounding fused in, so ``glass_blur(frame, s, np.random.RandomState(k))`` equals
the official function run after ``np.random.seed(k)`` bit for bit.
"""
from __future__ import annotations

import functools

import numba
import numpy as np

from davis_c.corruptions._common import check_frame

__all__ = ["GLASS_BLUR", "glass_blur", "glass_blur_noshuffle", "glass_blur_reference", "draw_offsets",
           "gaussian_weights"]

#: (sigma, max_delta, iterations) (severity 1..5)
GLASS_BLUR = ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2))


@functools.lru_cache(maxsize=None)
def gaussian_weights(sigma: float, truncate: float = 4.0) -> np.ndarray:
    """scipy.ndimage's 1-D Gaussian correlation weights (normalised, radius int(truncate*sigma + 0.5))."""
    radius = int(truncate * float(sigma) + 0.5)
    x = np.arange(-radius, radius + 1)
    phi = np.exp(-0.5 / (sigma * sigma) * x ** 2)
    w = (phi / phi.sum())[::-1].copy()
    w.setflags(write=False)
    return w


@numba.njit(cache=True, nogil=True)
def _blur_rows(src, w, out):
    """out = correlate float64 src (H, N) along axis 0, edge-replicate border."""
    hgt, n = src.shape
    r = (w.shape[0] - 1) // 2
    for i in range(hgt):
        o = out[i]
        s = src[i]
        for j in range(n):
            o[j] = s[j] * w[r]
        for k in range(-r, 0):
            a = src[min(max(i + k, 0), hgt - 1)]
            b = src[min(max(i - k, 0), hgt - 1)]
            wk = w[r + k]
            for j in range(n):
                o[j] += (a[j] + b[j]) * wk


@numba.njit(cache=True, nogil=True)
def _blur_cols(src, w, nch, final, out):
    """Correlate float64 src (H, W*C) along W, edge-replicate; write uint8:
    final=False: truncate(v * 255) (the official intermediate), final=True: rint(clip01(v) * 255)."""
    hgt, n = src.shape
    wid = n // nch
    r = (w.shape[0] - 1) // 2
    acc = np.empty(n, np.float64)
    for i in range(hgt):
        s = src[i]
        for j in range(n):
            acc[j] = s[j] * w[r]
        for k in range(-r, 0):
            wk = w[r + k]
            lo = -k
            for col in range(wid):
                if lo <= col <= wid - 1 - lo:
                    continue
                a = min(max(col + k, 0), wid - 1) * nch
                b = min(max(col - k, 0), wid - 1) * nch
                for c in range(nch):
                    acc[col * nch + c] += (s[a + c] + s[b + c]) * wk
            off = lo * nch
            for j in range(off, n - off):
                acc[j] += (s[j - off] + s[j + off]) * wk
        o = out[i]
        if final:
            for j in range(n):
                o[j] = np.uint8(np.rint(min(max(acc[j], 0.0), 1.0) * 255))
        else:
            for j in range(n):
                o[j] = np.uint8(acc[j] * 255)


def _gaussian_u8(img: np.ndarray, sigma: float, final: bool) -> np.ndarray:
    """skimage ``gaussian(img / 255, sigma, channel_axis=-1)`` (per channel), converted to uint8."""
    hgt, wid, nch = img.shape
    flat = np.ascontiguousarray(img).reshape(hgt, wid * nch) / 255.0
    tmp = np.empty(flat.shape, np.float64)
    out = np.empty(flat.shape, np.uint8)
    w = gaussian_weights(sigma)
    _blur_rows(flat, w, tmp)
    _blur_cols(tmp, w, nch, final, out)
    return out.reshape(hgt, wid, nch)


@numba.njit(cache=True, nogil=True)
def _shuffle(x, offsets, d):
    """In-place sequential copy: x[h, w] <- x[h + dy, w + dx], rows and columns descending."""
    hgt, wid = x.shape[0], x.shape[1]
    iters, nrows, ncols = offsets.shape[0], offsets.shape[1], offsets.shape[2]
    for it in range(iters):
        for a in range(nrows):
            h = hgt - d - a
            for b in range(ncols):
                w = wid - d - b
                hp = h + offsets[it, a, b, 1]
                wp = w + offsets[it, a, b, 0]
                for c in range(x.shape[2]):
                    x[h, w, c] = x[hp, wp, c]


def draw_offsets(rng: np.random.RandomState, hgt: int, wid: int, severity: int) -> np.ndarray:
    """All (dx, dy) draws of one frame, shape (iterations, H-2d, W-2d, 2), values in [-d, d-1]."""
    _, d, iters = GLASS_BLUR[severity - 1]
    return rng.randint(-d, d, size=(iters, hgt - 2 * d, wid - 2 * d, 2))


def glass_blur(frame: np.ndarray, severity: int, rng: np.random.RandomState) -> np.ndarray:
    """ImageNet-C glass_blur on one RGB frame (whole pixels move, so channel order does not matter)."""
    frame = check_frame(frame)
    sigma, d, _ = GLASS_BLUR[severity - 1]
    hgt, wid = frame.shape[:2]
    if hgt <= 2 * d or wid <= 2 * d:
        raise ValueError(f"glass_blur: frame {wid}x{hgt} is too small for max_delta {d}")
    x = _gaussian_u8(frame, sigma, final=False)
    _shuffle(x, draw_offsets(rng, hgt, wid, severity), d)
    return _gaussian_u8(x, sigma, final=True)


def glass_blur_noshuffle(frame: np.ndarray, severity: int) -> np.ndarray:
    """The deterministic part of glass_blur (blur, uint8 truncation, blur); used to test the blur steps."""
    sigma = GLASS_BLUR[severity - 1][0]
    return _gaussian_u8(_gaussian_u8(check_frame(frame), sigma, final=False), sigma, final=True)


def glass_blur_reference(frame: np.ndarray, severity: int) -> np.ndarray:
    """The official per-pixel Python loop, drawing from NumPy's global RNG (float output, unrounded).

    Kept only as the yardstick for exactness tests and the speed benchmark: it takes seconds per
    480p frame, which is why :func:`glass_blur` pre-draws the same offsets and runs a compiled loop.
    """
    from skimage.filters import gaussian

    sigma, d, iters = GLASS_BLUR[severity - 1]
    x = np.uint8(gaussian(frame / 255.0, sigma=sigma, channel_axis=-1) * 255)
    hgt, wid = frame.shape[:2]
    for _ in range(iters):
        for h in range(hgt - d, d, -1):
            for w in range(wid - d, d, -1):
                dx, dy = np.random.randint(-d, d, size=(2,))
                x[h, w] = x[h + dy, w + dx]
    return np.clip(gaussian(x / 255.0, sigma=sigma, channel_axis=-1), 0, 1) * 255
