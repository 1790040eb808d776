"""DAVIS region (J) and boundary (F) measures, numerically identical to the official DAVIS-2017 toolkit.

Definitions (those of the official ``davis2017-evaluation`` code): J is the IoU with J = 1 when both masks are
empty; F compares one-pixel boundary maps (``_seg2bmap`` of the official code: a pixel is a boundary pixel
when the mask differs from its east, south or south-east neighbour, with the official last-row/column
rules) matched within a disk of radius ``ceil(bound_th * diagonal)``; per-object statistics are the mean,
the recall (fraction of frames > 0.5) and the decay (first minus last of 4 overlapping bins).

Why it is fast: the official code builds full-frame boolean masks, boundary maps and two dilations per
frame and object.  Here each label map is scanned once per frame for all objects: its change pixels (the
union of all objects' boundary pixels, ~1 % of the pixels) are listed in row-major order, and
"is a boundary pixel of the other mask within the disk" is answered by a binary search per disk row over
the other list (compiled with numba).  The areas for J come from the row runs between east changes.  This
counts exactly the pixels that dilating with the disk ``{(dy, dx): dy^2 + dx^2 <= r^2}`` and
intersecting would count, so the numbers are bit-identical (tested against the official goldens and a
straightforward implementation of the official algorithm with scikit-image/OpenCV).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numba
import numpy as np

__all__ = ["ObjectStats", "j_measure", "f_measure", "sequence_stats", "bound_radius", "boundary_map", "score_frame",
           "evaluate_video", "VideoScores", "EvaluationError", "STAT_NAMES"]

STAT_NAMES = ("J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay")


class EvaluationError(ValueError):
    """Predictions that cannot be scored (extra object label, wrong size ...); the message names the video."""


# ----------------------------------------------------------------------------------------------- helpers
def bound_radius(shape: Sequence[int], bound_th: float = 0.008) -> float:
    """Tolerance radius in pixels: ``bound_th`` itself if >= 1, else ceil(bound_th * image diagonal)."""
    if bound_th >= 1:
        return bound_th
    return float(np.ceil(bound_th * np.linalg.norm(tuple(shape[-2:]))))


def _as_stack(a: np.ndarray, name: str) -> tuple[np.ndarray, bool]:
    a = np.asarray(a)
    if a.ndim == 2:
        return a[None], True
    if a.ndim == 3:
        return a, False
    raise ValueError(f"{name} must have shape (H, W) or (T, H, W), got {a.shape}")


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """Official one-pixel boundary map of a 2-D mask (``_seg2bmap``): no boundary along the image border.

    Pixel (y, x) is on the boundary when the mask differs from its east, south or south-east neighbour;
    in the last row only east counts, in the last column only south, the bottom-right pixel never.
    """
    m = np.asarray(mask).astype(bool)
    b = np.zeros(m.shape, bool)
    a = m[:-1, :-1]
    b[:-1, :-1] = (a != m[:-1, 1:]) | (a != m[1:, :-1]) | (a != m[1:, 1:])
    b[-1, :-1] = m[-1, :-1] != m[-1, 1:]
    b[:-1, -1] = m[:-1, -1] != m[1:, -1]
    return b


def _change_points(flat: np.ndarray, h: int, w: int) -> np.ndarray:
    """Flat indices (sorted) of pixels whose value differs from a counted neighbour (east/south/south-east).

    For a boolean mask these are exactly the official boundary pixels.  For a label map, pixel p is a
    boundary pixel of object k iff p is a change point and k is the label of p or of a counted neighbour.
    Shifted comparisons of the flattened map (contiguous, SIMD) beat a compiled pixel loop here.
    """
    n = h * w
    ch = np.zeros(n, bool)
    if w > 1:
        np.not_equal(flat[:-1], flat[1:], out=ch[:-1])  # east
        ch[w - 1::w] = False  # the last column has no east neighbour (that would wrap to the next row)
    if h > 1:
        ch[:-w] |= flat[:-w] != flat[w:]  # south
        if w > 1:
            se = flat[:-w - 1] != flat[w + 1:]
            se[w - 1::w] = False
            ch[:-w - 1] |= se
    return np.flatnonzero(ch)


def _neighbour_labels(flat: np.ndarray, idx: np.ndarray, h: int, w: int) -> tuple[np.ndarray, ...]:
    """Labels of p and of its counted east/south/south-east neighbours (uncounted ones repeat p's label)."""
    lp = flat[idx]
    x = idx % w
    has_e = x < w - 1
    has_s = idx < (h - 1) * w
    n = h * w
    le = np.where(has_e, flat[np.minimum(idx + 1, n - 1)], lp)
    ls = np.where(has_s, flat[np.minimum(idx + w, n - 1)], lp)
    lse = np.where(has_e & has_s, flat[np.minimum(idx + w + 1, n - 1)], lp)
    return lp, le, ls, lse


_HALF_WIDTHS: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _disk_rows(r: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows dy = -r..r of the disk {dy^2 + dx^2 <= r^2} and their half widths floor(sqrt(r^2 - dy^2))."""
    if r not in _HALF_WIDTHS:
        dy = np.arange(-r, r + 1, dtype=np.int64)
        half = np.array([math.isqrt(r * r - int(d) * int(d)) for d in dy], dtype=np.int64)
        _HALF_WIDTHS[r] = (dy, half)
    return _HALF_WIDTHS[r]


def _count_matched(a: np.ndarray, b: np.ndarray, w: int, r: int) -> int:
    """How many flat pixel indices of ``a`` have a pixel of ``b`` (both sorted) within the disk of radius r.

    Same count as ``|A & dilate(B, disk(r))|``, without touching the pixels that are not boundary pixels.
    """
    if a.size == 0 or b.size == 0:
        return 0
    _, half = _disk_rows(r)
    return int(_count_matched_kernel(a.astype(np.int64, copy=False), b.astype(np.int64, copy=False),
                                     np.int64(w), half))


@numba.njit(cache=True, nogil=True)
def _count_matched_kernel(a, b, w, half):  # pragma: no cover - compiled
    # b is sorted row-major.  Index the first b pixel of every row touched by b, then for each pixel of a
    # scan the disk rows outward from its own row (likely hits first) and stop at the first row holding a
    # b pixel in [x - hw, x + hw] (binary search inside that row).
    r = (half.size - 1) // 2
    nb = b.size
    y_first = b[0] // w
    y_last = b[nb - 1] // w
    n_rows = y_last - y_first + 1
    row_start = np.zeros(n_rows + 1, np.int64)
    for i in range(nb):
        row_start[b[i] // w - y_first + 1] += 1
    for y in range(n_rows):
        row_start[y + 1] += row_start[y]
    count = 0
    for i in range(a.size):
        y = a[i] // w
        x = a[i] - y * w
        if y + r < y_first or y - r > y_last:
            continue
        for step in range(2 * r + 1):
            d = (step + 1) // 2 if step % 2 == 1 else -(step // 2)
            yy = y + d - y_first
            if yy < 0 or yy >= n_rows:
                continue
            lo = row_start[yy]
            hi = row_start[yy + 1]
            if lo == hi:
                continue
            hw = half[d + r]
            lo_key = (yy + y_first) * w + max(x - hw, 0)
            hi_key = (yy + y_first) * w + min(x + hw, w - 1)
            end = hi
            while lo < hi:
                mid = (lo + hi) >> 1
                if b[mid] < lo_key:
                    lo = mid + 1
                else:
                    hi = mid
            if lo < end and b[lo] <= hi_key:
                count += 1
                break
    return count


def _f_from_counts(n_p: Sequence[int], n_g: Sequence[int], m_p: Sequence[int], m_g: Sequence[int]) -> np.ndarray:
    """Official precision/recall/F with its empty-boundary conventions (same float operations), float64.

    n_p, n_g: boundary pixel counts of prediction and GT; m_p, m_g: how many of them are matched.
    """
    out = np.empty(len(n_p), np.float64)
    for i, (np_, ng, mp, mg) in enumerate(zip(np.asarray(n_p).tolist(), np.asarray(n_g).tolist(),
                                              np.asarray(m_p).tolist(), np.asarray(m_g).tolist())):
        if np_ == 0 and ng > 0:
            precision, recall = 1.0, 0.0
        elif np_ > 0 and ng == 0:
            precision, recall = 0.0, 1.0
        elif np_ == 0 and ng == 0:
            precision, recall = 1.0, 1.0
        else:
            precision, recall = mp / float(np_), mg / float(ng)
        out[i] = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return out


# Above this fraction of boundary pixels (noise-like masks) a dilation of the full frame is cheaper than
# searching around every boundary pixel; both count exactly the same pixels.
DENSE_FRACTION = 0.05


def _use_sparse(n_points: int, r: float, shape: tuple[int, int]) -> bool:
    return float(r).is_integer() and n_points <= DENSE_FRACTION * shape[0] * shape[1]


def _match_counts(bp: np.ndarray, bg: np.ndarray, w: int, r: float, shape: tuple[int, int]) -> tuple[int, int]:
    """(#pred boundary pixels near a GT one, #GT boundary pixels near a predicted one)."""
    if _use_sparse(bp.size + bg.size, r, shape):
        ri = int(r)
        return _count_matched(bp, bg, w, ri), _count_matched(bg, bp, w, ri)
    return _match_counts_dilate(bp, bg, r, shape)  # dense boundaries or a fractional radius (bound_th >= 1)


def _match_counts_dilate(bp: np.ndarray, bg: np.ndarray, r: float, shape: tuple[int, int]) -> tuple[int, int]:
    import cv2
    from skimage.morphology import disk

    kernel = disk(r).astype(np.uint8)
    mp = np.zeros(shape[0] * shape[1], np.uint8)
    mg = np.zeros_like(mp)
    mp[bp] = 1
    mg[bg] = 1
    mp, mg = mp.reshape(shape), mg.reshape(shape)
    dg, dp = cv2.dilate(mg, kernel), cv2.dilate(mp, kernel)
    return int(np.count_nonzero(mp & dg)), int(np.count_nonzero(mg & dp))


# ------------------------------------------------------------------------------------------ public API
def j_measure(gt: np.ndarray, pred: np.ndarray, void: np.ndarray | None = None) -> np.ndarray | np.float64:
    """Region similarity J = |G & P| / |G | P| per frame (1.0 where both are empty), float64.

    Masks are (H, W) or (T, H, W); non-zero means inside.  With ``void``, void pixels are removed from
    both intersection and union (the official optional argument; the semi-supervised pipeline passes none).
    """
    g, single = _as_stack(gt, "gt")
    p, _ = _as_stack(pred, "pred")
    if g.shape != p.shape:
        raise ValueError(f"gt {g.shape} and pred {p.shape} shapes differ")
    g, p = g.astype(bool, copy=False), p.astype(bool, copy=False)
    inter, union = g & p, g | p
    if void is not None:
        v, _ = _as_stack(void, "void")
        if v.shape != g.shape:
            raise ValueError(f"void {v.shape} and gt {g.shape} shapes differ")
        keep = ~v.astype(bool, copy=False)
        inter &= keep
        union &= keep
    i = np.count_nonzero(inter.reshape(len(g), -1), axis=1)
    u = np.count_nonzero(union.reshape(len(g), -1), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        j = np.where(u == 0, 1.0, i / np.maximum(u, 1))
    j = j.astype(np.float64)
    return j[0] if single else j


def f_measure(gt: np.ndarray, pred: np.ndarray, void: np.ndarray | None = None,
              bound_th: float = 0.008) -> np.ndarray | np.float64:
    """Boundary F-measure per frame, float64, exactly as the official ``db_eval_boundary``.

    Masks are (H, W) or (T, H, W).  The radius is ``bound_radius((H, W), bound_th)``.  With ``void``,
    both masks are cut by the void region before their boundaries are extracted.
    """
    g, single = _as_stack(gt, "gt")
    p, _ = _as_stack(pred, "pred")
    if g.shape != p.shape:
        raise ValueError(f"gt {g.shape} and pred {p.shape} shapes differ")
    g, p = g.astype(bool), p.astype(bool)
    if void is not None:
        v, _ = _as_stack(void, "void")
        if v.shape != g.shape:
            raise ValueError(f"void {v.shape} and gt {g.shape} shapes differ")
        keep = ~v.astype(bool)
        g, p = g & keep, p & keep
    t, h, w = g.shape
    r = bound_radius((h, w), bound_th)
    counts = np.zeros((4, t), np.int64)
    for i in range(t):
        bg = _change_points(g[i].ravel(), h, w)
        bp = _change_points(p[i].ravel(), h, w)
        counts[0, i], counts[1, i] = bp.size, bg.size
        counts[2, i], counts[3, i] = _match_counts(bp, bg, w, r, (h, w))
    f = _f_from_counts(*counts)
    return f[0] if single else f


def sequence_stats(values: Sequence[float] | np.ndarray) -> tuple[float, float, float]:
    """(mean, recall, decay) of one object's per-frame scores over the evaluated frames, as the official code.

    Recall counts frames with a score strictly above 0.5.  Decay = mean of the first of 4 bins minus the
    mean of the last; bin edges are 5 points spaced evenly over 1..N, rounded half up, made 0-based, and
    both edges belong to a bin.  (The official code stores the edges as uint8, which wraps for N >= 257;
    that bug is deliberately not reproduced.)
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        raise ValueError("sequence_stats needs at least one value (a sequence needs >= 3 frames)")
    mean = float(np.nanmean(v))
    recall = float(np.nanmean(v > 0.5))
    ids = (np.round(np.linspace(1, v.size, 5) + 1e-10) - 1).astype(np.int64)
    first = v[ids[0]:ids[1] + 1]
    last = v[ids[3]:ids[4] + 1]
    decay = float(np.nanmean(first) - np.nanmean(last))
    return mean, recall, decay


class ObjectStats:
    """What a scored video offers from its ``name``, ``object_ids`` and ``stats`` ((K, 6): J-Mean, J-Recall,
    J-Decay, F-Mean, F-Recall, F-Decay per object): official object names and the per-video means."""

    name: str
    object_ids: tuple[int, ...]
    stats: np.ndarray

    @property
    def object_names(self) -> list[str]:
        """Official object names ``<video>_<id>``."""
        return [f"{self.name}_{k}" for k in self.object_ids]

    @property
    def j_mean(self) -> float:
        """Per-video J = mean over the video's objects of their J-Mean."""
        return float(np.mean(self.stats[:, 0]))

    @property
    def f_mean(self) -> float:
        return float(np.mean(self.stats[:, 3]))

    @property
    def jf_mean(self) -> float:
        return (self.j_mean + self.f_mean) / 2


@dataclass
class VideoScores(ObjectStats):
    """Per-object, per-frame J and F of one video and the official per-object statistics."""

    name: str
    object_ids: tuple[int, ...]
    frames: np.ndarray  # indices (into the video) of the evaluated frames
    J: np.ndarray  # (K, N) float64
    F: np.ndarray  # (K, N) float64
    frame_names: list[str] | None = None  # names of all frames of the video (index with ``frames``)
    stats: np.ndarray = field(init=False)  # (K, 6): J-Mean, J-Recall, J-Decay, F-Mean, F-Recall, F-Decay

    def __post_init__(self) -> None:
        self.stats = np.array([sequence_stats(j) + sequence_stats(f) for j, f in zip(self.J, self.F)],
                              dtype=np.float64).reshape(len(self.object_ids), 6)



def _region_counts(gflat: np.ndarray, pflat: np.ndarray, g_east: np.ndarray, p_east: np.ndarray,
                   n: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-label pixel counts of GT, prediction and their agreement, from run lengths instead of pixels.

    Every row splits into runs of constant label that start right after an east change; cutting the
    rows at the run starts of both maps gives pieces on which both labels are constant, so a walk over a
    few thousand pieces replaces full-frame passes per object.  Counts are exact integers.
    """
    area_g = np.zeros(256, np.int64)
    area_p = np.zeros(256, np.int64)
    inter = np.zeros(256, np.int64)
    _region_kernel(gflat, pflat, (g_east + 1).astype(np.int64), (p_east + 1).astype(np.int64), n, w,
                   area_g, area_p, inter)
    return area_g, area_p, inter


@numba.njit(cache=True, nogil=True)
def _region_kernel(gflat, pflat, g_starts, p_starts, n, w, area_g, area_p, inter):  # pragma: no cover
    i = 0
    j = 0
    pos = 0
    while pos < n:
        nxt = (pos // w + 1) * w  # next row start
        while i < g_starts.size and g_starts[i] <= pos:
            i += 1
        if i < g_starts.size and g_starts[i] < nxt:
            nxt = g_starts[i]
        while j < p_starts.size and p_starts[j] <= pos:
            j += 1
        if j < p_starts.size and p_starts[j] < nxt:
            nxt = p_starts[j]
        a = gflat[pos]
        b = pflat[pos]
        length = nxt - pos
        area_g[a] += length
        area_p[b] += length
        if a == b:
            inter[a] += length
        pos = nxt


@numba.njit(cache=True, nogil=True)
def _boundary_counts_kernel(gc, gl, pc, pl, ids, w, half, out):  # pragma: no cover - compiled
    # gl/pl: (4, n) labels of each change point and of its counted east/south/south-east neighbours.
    # Object k's boundary = change points with k among those labels; then match both ways.
    bg = np.empty(gc.size, np.int64)
    bp = np.empty(pc.size, np.int64)
    for n in range(ids.size):
        k = ids[n]
        mg = 0
        for i in range(gc.size):
            if gl[0, i] == k or gl[1, i] == k or gl[2, i] == k or gl[3, i] == k:
                bg[mg] = gc[i]
                mg += 1
        mp = 0
        for i in range(pc.size):
            if pl[0, i] == k or pl[1, i] == k or pl[2, i] == k or pl[3, i] == k:
                bp[mp] = pc[i]
                mp += 1
        out[0, n] = mp
        out[1, n] = mg
        if mp > 0 and mg > 0:
            out[2, n] = _count_matched_kernel(bp[:mp], bg[:mg], w, half)
            out[3, n] = _count_matched_kernel(bg[:mg], bp[:mp], w, half)
        else:
            out[2, n] = 0
            out[3, n] = 0


def score_frame(gt: np.ndarray, pred: np.ndarray, object_ids: Sequence[int],
                radius: float) -> tuple[np.ndarray, np.ndarray]:
    """J and F of every object on one pair of 2-D uint8 label maps (labels not in ``object_ids`` =
    background, e.g. GT void 255).  Each map is scanned once for all objects."""
    h, w = gt.shape
    ids = [int(k) for k in object_ids]
    gflat = np.ascontiguousarray(gt, dtype=np.uint8).ravel()
    pflat = np.ascontiguousarray(pred, dtype=np.uint8).ravel()
    g_change = _change_points(gflat, h, w)
    p_change = _change_points(pflat, h, w)
    g_nb = _neighbour_labels(gflat, g_change, h, w)
    p_nb = _neighbour_labels(pflat, p_change, h, w)
    area_g, area_p, inter = _region_counts(gflat, pflat, g_change[g_nb[0] != g_nb[1]],
                                           p_change[p_nb[0] != p_nb[1]], h * w, w)
    idx = np.asarray(ids, np.int64)
    union = area_g[idx] + area_p[idx] - inter[idx]
    j = np.where(union == 0, 1.0, inter[idx] / np.maximum(union, 1))
    f_counts = np.zeros((4, len(ids)), np.int64)
    if _use_sparse(g_change.size + p_change.size, radius, (h, w)):
        _, half = _disk_rows(int(radius))
        _boundary_counts_kernel(g_change.astype(np.int64), np.stack(g_nb), p_change.astype(np.int64),
                                np.stack(p_nb), idx, np.int64(w), half, f_counts)
    else:  # noise-like maps or a fractional radius: per object, as the official code
        for n, k in enumerate(ids):
            bg = g_change[(g_nb[0] == k) | (g_nb[1] == k) | (g_nb[2] == k) | (g_nb[3] == k)]
            bp = p_change[(p_nb[0] == k) | (p_nb[1] == k) | (p_nb[2] == k) | (p_nb[3] == k)]
            f_counts[0, n], f_counts[1, n] = bp.size, bg.size
            f_counts[2, n], f_counts[3, n] = _match_counts(bp, bg, w, radius, (h, w))
    return j.astype(np.float64), _f_from_counts(*f_counts)


def evaluate_video(gt_masks: np.ndarray, pred_masks: np.ndarray, object_ids: Sequence[int] | None = None, *,
                   name: str = "video", frames: Sequence[int] | None = None, bound_th: float = 0.008,
                   frame_names: Sequence[str] | None = None) -> VideoScores:
    """Score one video's predicted label maps against its ground truth, the official semi-supervised way.

    ``gt_masks`` and ``pred_masks`` are (T, H, W) integer label maps (GT 255 = void is treated as
    background, as the official semi-supervised pipeline does).  ``object_ids`` default to 1..K with K the
    largest label of the first GT frame (official rule).  ``frames`` are the indices scored; by default
    1..T-2 (the first and last frame are dropped; their predictions are not looked at).  A predicted
    label above the largest object id raises :class:`EvaluationError` naming the video and frame (the
    official script silently exits there).  Objects missing from the prediction score as empty masks.
    """
    gt = np.asarray(gt_masks)
    pred = np.asarray(pred_masks)
    if gt.ndim != 3:
        raise EvaluationError(f"{name}: ground truth must be (T, H, W) label maps, got shape {gt.shape}")
    if pred.shape != gt.shape:
        raise EvaluationError(f"{name}: prediction shape {pred.shape} differs from ground truth {gt.shape}")
    t_len = gt.shape[0]
    if object_ids is None:
        first = gt[0].copy()
        first[first == 255] = 0
        object_ids = tuple(range(1, int(first.max()) + 1))
    object_ids = tuple(int(k) for k in object_ids)
    if not object_ids:
        raise EvaluationError(f"{name}: no object to evaluate (first ground-truth frame has no object)")
    if frames is None:
        if t_len < 3:
            raise EvaluationError(f"{name}: {t_len} frames; the evaluation drops the first and last frame, "
                                  "so a video needs at least 3")
        frames = range(1, t_len - 1)
    frames = np.asarray(list(frames), dtype=np.int64)
    max_id = max(object_ids)
    radius = bound_radius(gt.shape[1:], bound_th)
    j = np.empty((len(object_ids), len(frames)), np.float64)
    f = np.empty_like(j)
    if pred.dtype != np.uint8 and pred.size and int(pred[frames].min()) < 0:
        raise EvaluationError(f"{name}: prediction holds negative labels")
    for n, t in enumerate(frames):
        p = pred[t]
        pmax = int(p.max()) if p.size else 0
        if pmax > max_id:
            fname = frame_names[t] if frame_names is not None else f"{t:05d}"
            raise EvaluationError(f"{name}: predicted frame {fname} contains label {pmax}, but the first "
                                  f"ground-truth frame has only {max_id} object(s) (ids {list(object_ids)})")
        j[:, n], f[:, n] = score_frame(gt[t], p, object_ids, radius)
    return VideoScores(name=name, object_ids=object_ids, frames=frames, J=j, F=f,
                       frame_names=list(frame_names) if frame_names is not None else None)
