"""OpenCV's ``pyrMeanShiftFiltering`` (2-level pyramid, default stop rule), re-implemented exactly and faster.

cartoon spends ~85 % of its time in ``cv2.pyrMeanShiftFiltering(img, sp, sr)`` (``maxLevel=1``, at most 5
iterations, epsilon 1), which runs single-threaded.  :func:`pyr_mean_shift` returns the same bytes:

1. the half-size level is ``cv2.pyrDown`` of the image; every pixel of it is mean-shifted with the
   spatial radius ``sp / 2``;
2. the result is ``cv2.pyrUp``-ed to full size; a full-size pixel is shifted again (radius ``sp``, from its
   own colour) only where the half-size result has a neighbour of distant colour (squared distance
   >= max(round(sr^2), 16)) -- OpenCV marks those at (2i+1, 2j-1) and dilates the marks 3x3, as here;
3. one mean-shift step of a pixel: the window is ``[round(x - sp), round(x + sp)]`` (float32 arithmetic,
   rounding half to even, clipped to the image) in x and y; the pixels of the window whose colour lies
   within squared distance ``round(sr^2)`` of the current colour are averaged (position and colour, each
   ``round(sum * (1.0 / count))``); stop after 5 steps, or when the position did not move, or when
   |dx| + |dy| + colour change^2 <= 1.

Pyramids and dilation are OpenCV's own calls; the window sums run compiled.  Two exact speed-ups:
window rows are summed in float32 SIMD lanes of a fixed width (every partial sum is an integer below
2^24, so any summation order gives the same exact value), and image rows are split over threads (each
pixel depends on the source image only, so the split cannot change a byte).  ``set_threads`` sets the
thread count (default: the cores this process may use); the builder gives each of its ``--workers``
processes its share.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import cv2
import numba
import numpy as np

__all__ = ["pyr_mean_shift", "set_threads", "get_threads"]

_FM = {"reassoc", "nsz", "nnan", "ninf", "contract"}  # exact here: integer-valued sums below 2^24
_PAD = 64      # columns of far-away colour right of each row: a fixed-width window may read past the edge
_FAR = 1e6     # that colour: squared distance 3e12, never inside a colour radius
_MAX_ITER = 5  # OpenCV's default TermCriteria(MAX_ITER + EPS, 5, 1)
_EPS = 1.0
_WIDTHS = (24, 32, 40, 48)  # SIMD window widths compiled below (a window is at most floor(2 sp) + 2 wide)


# Sums over one window row of W lanes starting at column ``lo`` (lanes right of ``fmax`` or outside the
# colour radius count zero): (count, sum x, sum colour 0, 1, 2).  One kernel per width, written out:
# only a literal trip count lets LLVM vectorise the lanes (a width argument, even a constant one
# passed through a helper, measured 1.5-2x slower).
@numba.njit(inline="always", fastmath=_FM)
def _row24(q0, q1, q2, xs, lo, fmax, c0, c1, c2, r2):
    n = np.float32(0)
    sx = np.float32(0)
    s0 = np.float32(0)
    s1 = np.float32(0)
    s2 = np.float32(0)
    for k in range(24):
        x = lo + k
        t0 = q0[x]
        t1 = q1[x]
        t2 = q2[x]
        tx = xs[x]
        a = t0 - c0
        b = t1 - c1
        c = t2 - c2
        m = np.float32((a * a + b * b + c * c <= r2) & (tx <= fmax))
        s0 += t0 * m
        s1 += t1 * m
        s2 += t2 * m
        sx += tx * m
        n += m
    return n, sx, s0, s1, s2


@numba.njit(inline="always", fastmath=_FM)
def _row32(q0, q1, q2, xs, lo, fmax, c0, c1, c2, r2):
    n = np.float32(0)
    sx = np.float32(0)
    s0 = np.float32(0)
    s1 = np.float32(0)
    s2 = np.float32(0)
    for k in range(32):
        x = lo + k
        t0 = q0[x]
        t1 = q1[x]
        t2 = q2[x]
        tx = xs[x]
        a = t0 - c0
        b = t1 - c1
        c = t2 - c2
        m = np.float32((a * a + b * b + c * c <= r2) & (tx <= fmax))
        s0 += t0 * m
        s1 += t1 * m
        s2 += t2 * m
        sx += tx * m
        n += m
    return n, sx, s0, s1, s2


@numba.njit(inline="always", fastmath=_FM)
def _row40(q0, q1, q2, xs, lo, fmax, c0, c1, c2, r2):
    n = np.float32(0)
    sx = np.float32(0)
    s0 = np.float32(0)
    s1 = np.float32(0)
    s2 = np.float32(0)
    for k in range(40):
        x = lo + k
        t0 = q0[x]
        t1 = q1[x]
        t2 = q2[x]
        tx = xs[x]
        a = t0 - c0
        b = t1 - c1
        c = t2 - c2
        m = np.float32((a * a + b * b + c * c <= r2) & (tx <= fmax))
        s0 += t0 * m
        s1 += t1 * m
        s2 += t2 * m
        sx += tx * m
        n += m
    return n, sx, s0, s1, s2


@numba.njit(inline="always", fastmath=_FM)
def _row48(q0, q1, q2, xs, lo, fmax, c0, c1, c2, r2):
    n = np.float32(0)
    sx = np.float32(0)
    s0 = np.float32(0)
    s1 = np.float32(0)
    s2 = np.float32(0)
    for k in range(48):
        x = lo + k
        t0 = q0[x]
        t1 = q1[x]
        t2 = q2[x]
        tx = xs[x]
        a = t0 - c0
        b = t1 - c1
        c = t2 - c2
        m = np.float32((a * a + b * b + c * c <= r2) & (tx <= fmax))
        s0 += t0 * m
        s1 += t1 * m
        s2 += t2 * m
        sx += tx * m
        n += m
    return n, sx, s0, s1, s2


@numba.njit(cache=True, nogil=True)
def _reciprocal(count):
    return 1.0 / count


@numba.njit(cache=True, nogil=True)
def _round_mean(total, icount):
    """OpenCV's ``cvRound(total * icount)``; strict IEEE (no fast-math: this is where rounding happens)."""
    return int(np.rint(total * icount))


# fast-math here only for the inlined row kernels' float32 lanes (exact integers); every rounding of the
# algorithm happens in float32 window bounds (single operations) and in the strict _round_mean
@numba.njit(cache=True, nogil=True, fastmath=_FM)
def _shift_rows(planes, xs, dst, mask, use_mask, width, sp, isr2, win, row0, row1):
    """Mean-shift the pixels of rows [row0, row1) (all, or those with ``mask`` set) into ``dst``."""
    height = planes.shape[1]
    p0 = planes[0]
    p1 = planes[1]
    p2 = planes[2]
    r2 = np.float32(isr2)
    for i in range(row0, row1):
        for j in range(width):
            if use_mask and mask[i, j] == 0:
                continue
            x0 = j
            y0 = i
            c0 = int(p0[i, j])
            c1 = int(p1[i, j])
            c2 = int(p2[i, j])
            for _ in range(_MAX_ITER):
                minx = max(int(np.rint(np.float32(x0) - sp)), 0)
                miny = max(int(np.rint(np.float32(y0) - sp)), 0)
                maxx = min(int(np.rint(np.float32(x0) + sp)), width - 1)
                maxy = min(int(np.rint(np.float32(y0) + sp)), height - 1)
                count = 0
                s0 = 0
                s1 = 0
                s2 = 0
                sx = 0
                sy = 0
                f0 = np.float32(c0)
                f1 = np.float32(c1)
                f2 = np.float32(c2)
                fmax = np.float32(maxx)
                for y in range(miny, maxy + 1):
                    if win == 24:
                        rc, rx, a0, a1, a2 = _row24(p0[y], p1[y], p2[y], xs, minx, fmax, f0, f1, f2, r2)
                    elif win == 32:
                        rc, rx, a0, a1, a2 = _row32(p0[y], p1[y], p2[y], xs, minx, fmax, f0, f1, f2, r2)
                    elif win == 40:
                        rc, rx, a0, a1, a2 = _row40(p0[y], p1[y], p2[y], xs, minx, fmax, f0, f1, f2, r2)
                    else:
                        rc, rx, a0, a1, a2 = _row48(p0[y], p1[y], p2[y], xs, minx, fmax, f0, f1, f2, r2)
                    n = int(rc)
                    count += n
                    sy += y * n
                    sx += int(rx)
                    s0 += int(a0)
                    s1 += int(a1)
                    s2 += int(a2)
                if count == 0:
                    break
                icount = _reciprocal(count)
                x1 = _round_mean(sx, icount)
                y1 = _round_mean(sy, icount)
                n0 = _round_mean(s0, icount)
                n1 = _round_mean(s1, icount)
                n2 = _round_mean(s2, icount)
                stop = (x0 == x1 and y0 == y1) or (abs(x1 - x0) + abs(y1 - y0) + (n0 - c0) ** 2
                                                  + (n1 - c1) ** 2 + (n2 - c2) ** 2 <= _EPS)
                x0 = x1
                y0 = y1
                c0 = n0
                c1 = n1
                c2 = n2
                if stop:
                    break
            dst[i, j, 0] = c0
            dst[i, j, 1] = c1
            dst[i, j, 2] = c2


# ------------------------------------------------------------------------------------------------ threads
def _default_threads() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


_threads = _default_threads()
_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_lock = threading.Lock()


def set_threads(n: int) -> None:
    """Threads :func:`pyr_mean_shift` splits image rows over (>= 1); the output does not depend on it."""
    global _threads
    if int(n) < 1:
        raise ValueError(f"threads must be >= 1 (got {n})")
    _threads = int(n)


def get_threads() -> int:
    return _threads


def _executor(n: int) -> ThreadPoolExecutor:
    global _pool, _pool_size
    with _pool_lock:
        if _pool is None or _pool_size != n:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(n, thread_name_prefix="davis_c_meanshift")
            _pool_size = n
        return _pool


def _level(img: np.ndarray, dst: np.ndarray, mask: np.ndarray | None, sp: np.float32, isr2: int) -> None:
    """Mean-shift one pyramid level of ``img`` into ``dst`` (all pixels, or those with ``mask`` set)."""
    height, width = img.shape[:2]
    planes = np.full((3, height, width + _PAD), _FAR, np.float32)
    planes[:, :, :width] = img.transpose(2, 0, 1)
    xs = np.arange(width + _PAD, dtype=np.float32)
    win = next(w for w in _WIDTHS if w >= int(np.floor(2 * float(sp))) + 2)
    use_mask = mask is not None
    m = mask if use_mask else np.zeros((1, 1), np.uint8)
    n = min(_threads, height)
    if n <= 1:
        _shift_rows(planes, xs, dst, m, use_mask, width, sp, isr2, win, 0, height)
        return
    step = max(1, -(-height // (4 * n)))  # 4 bands per thread: busy and quiet rows even out
    bands = [(r, min(r + step, height)) for r in range(0, height, step)]
    futures = [_executor(n).submit(_shift_rows, planes, xs, dst, m, use_mask, width, sp, isr2, win, a, b)
               for a, b in bands]
    for f in futures:
        f.result()


def pyr_mean_shift(src: np.ndarray, sp: float, sr: float) -> np.ndarray:
    """``cv2.pyrMeanShiftFiltering(src, sp, sr)`` (maxLevel 1, default stop rule), the same bytes.

    ``src``: uint8 (H, W, 3).  Spatial radii above 23 (not used by DAVIS-C) fall back to OpenCV."""
    src = np.ascontiguousarray(src)
    if src.dtype != np.uint8 or src.ndim != 3 or src.shape[2] != 3:
        raise ValueError(f"pyr_mean_shift: expected uint8 (H, W, 3), got {src.dtype} {src.shape}")
    if np.floor(2 * float(np.float32(max(sp, 1)))) + 2 > _WIDTHS[-1]:
        return cv2.pyrMeanShiftFiltering(src, sp, sr)
    height, width = src.shape[:2]
    isr2 = int(np.rint(float(sr) * float(sr)))
    isr22 = max(isr2, 16)
    small = cv2.pyrDown(src, dstsize=((width + 1) // 2, (height + 1) // 2))
    h1, w1 = small.shape[:2]
    dst1 = np.empty_like(small)
    _level(small, dst1, None, np.float32(max(np.float32(sp / 2), 1)), isr2)
    dst = cv2.pyrUp(dst1, dstsize=(width, height))
    mask = np.zeros((height, width), np.uint8)
    if h1 > 2 and w1 > 2:  # interior half-size pixels with a distant neighbour colour
        d = dst1.astype(np.int32)
        centre = d[1:-1, 1:-1]
        flag = np.zeros((h1 - 2, w1 - 2), bool)
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                if dy or dx:
                    nb = d[1 + dy:h1 - 1 + dy, 1 + dx:w1 - 1 + dx]
                    flag |= ((centre - nb) ** 2).sum(-1) >= isr22
        mask[3:2 * h1 - 2:2, 1:2 * w1 - 4:2] = flag
    mask = cv2.dilate(mask, None)
    _level(src, dst, mask, np.float32(max(np.float32(sp), 1)), isr2)
    return dst
