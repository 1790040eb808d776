"""The temporal suite: corruptions of a video *over time*, a benchmark separate from DAVIS-C's 14 x 3.

DAVIS-C corrupts each frame on its own; matching-based VOS lives on its memory across frames.  These
corruptions attack that memory.  Each is a pure function of the frames (and, for shake, the annotations),
a severity (3, 4, 5 = low, med, high, as DAVIS-C) and a seed, and returns a :class:`TemporalResult`: the
corrupted frames plus what scoring needs to stay meaningful -- the source frames kept (stride), the
transformed annotations (shake), the corruption events (freeze runs, burst on-runs) and the per-frame
schedule that produced them.  All randomness comes from one ``np.random.default_rng(seed)`` per call,
drawn in the order the docstrings give, so equal arguments give equal bytes.

Frame 0 is never corrupted by freeze, bursts or shake: it carries the given annotation of the
semi-supervised protocol, whose first-frame rule stays as it is.

``freeze``   capture stalls: runs of frames replaced by the last good frame; annotations unchanged.
``stride``   a lower frame rate: every k-th frame kept (k = 2, 4, 8), scored on the kept frames only.
``bursts_<c>`` the DAVIS-C image corruption ``c`` switched on over seeded runs of frames, off elsewhere.
``packet_loss`` an H.264 stream with seeded slice damage, decoded with error concealment
             (:mod:`davis_c.corruptions.packet_loss`; needs ffmpeg).
``flicker``  auto-exposure: per-frame gain oscillation plus sudden steps, applied in linear light and
             clipped, as a camera sensor saturates.
``shake``    per-frame integer translation of the frame and of the annotations (void 255 where padded).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping

import numpy as np

from davis_c.corruptions._common import check_frames

__all__ = ["TemporalResult", "TemporalCorruption", "freeze", "stride", "bursts", "flicker", "shake",
           "freeze_runs", "FREEZE", "STRIDE", "BURSTS", "FLICKER", "SHAKE", "VOID"]

VOID = 255

#: severity -> (fraction of frames frozen, run length in frames)
FREEZE: Mapping[int, tuple[float, int]] = MappingProxyType({3: (0.15, 2), 4: (0.25, 3), 5: (0.4, 4)})
#: severity -> k (every k-th frame kept)
STRIDE: Mapping[int, tuple[int]] = MappingProxyType({3: (2,), 4: (4,), 5: (8,)})
#: severity -> (fraction of frames in a burst, burst length in frames); the base corruption runs at the same
#: severity (low burst = the DAVIS-C low corruption)
BURSTS: Mapping[int, tuple[float, int]] = MappingProxyType({3: (0.2, 2), 4: (0.35, 3), 5: (0.5, 4)})
#: severity -> (oscillation amplitude in stops, period in frames, step probability per frame, step in stops)
FLICKER: Mapping[int, tuple[float, int, float, float]] = MappingProxyType(
    {3: (0.25, 8, 0.05, 0.5), 4: (0.5, 8, 0.1, 0.75), 5: (0.75, 8, 0.15, 1.0)})
#: the auto-exposure level never leaves +-FLICKER_LIMIT stops
FLICKER_LIMIT = 2.0
#: severity -> largest shift as a fraction of min(H, W)
SHAKE: Mapping[int, tuple[float]] = MappingProxyType({3: (0.02,), 4: (0.04,), 5: (0.08,)})


@dataclass(frozen=True)
class TemporalResult:
    """What one temporal corruption made of one video.

    ``frames``  (T', H, W, 3) uint8: the corrupted video (T' = T except for stride);
    ``kept``    the source frame index of every output frame (stride), None = all frames in order;
    ``masks``   (T', H, W) uint8 annotations transformed with the frames (shake), None = the source's
                (restricted to ``kept``);
    ``events``  ``(start, end)`` half-open runs of output frames under the corruption (freeze, bursts);
                ``end`` is the first frame after the event, where recovery is measured from;
    ``schedule`` the per-frame parameters drawn (JSON-able), stored with the variant.
    """

    frames: np.ndarray
    kept: tuple[int, ...] | None = None
    masks: np.ndarray | None = None
    events: tuple[tuple[int, int], ...] = ()
    schedule: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TemporalCorruption:
    """One corruption of the temporal suite: parameter table (severity -> parameters) and implementation
    ``fn(frames, masks, severity, seed) -> TemporalResult``."""

    name: str
    param_names: tuple[str, ...]
    table: Mapping[int, tuple]
    description: str
    fn: Callable[..., TemporalResult] = field(repr=False, compare=False)
    random: bool = True
    changes_masks: bool = False
    changes_frames: bool = False  # the scored frame set (stride)

    @property
    def severities(self) -> tuple[int, ...]:
        return tuple(sorted(self.table))

    def check_severity(self, severity: int) -> int:
        if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) or severity not in self.table:
            raise ValueError(f"{self.name}: severity must be one of {self.severities} (got {severity!r})")
        return int(severity)

    def parameters(self, severity: int) -> dict[str, Any]:
        self.check_severity(severity)
        return dict(zip(self.param_names, self.table[severity]))


# ------------------------------------------------------------------------------------------------ schedules
def freeze_runs(n_frames: int, fraction: float, length: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """Seeded non-overlapping runs ``(start, end)`` in frames ``1..T-1``, each of ``length`` frames, with at
    least one frame outside any run before each of them (frame 0 never in a run).

    n = max(1, round(fraction * (T - 1) / length)) runs, fewer if they do not fit; the ``free`` = T - 1 -
    n * length frames outside runs are split into n + 1 gaps, the n - 1 inner ones at least 1 frame:
    ``rng.multinomial(free - (n - 1), [1 / (n + 1)] * (n + 1))`` gives the extra frames of each gap
    (one draw).  Run i starts after gap i.
    """
    t = int(n_frames)
    length = max(1, min(int(length), t - 1))
    if t < 2:
        return []
    n = max(1, int(round(fraction * (t - 1) / length)))
    while n > 0 and (t - 1) - n * length < n - 1:
        n -= 1
    if n == 0:
        return []
    free = (t - 1) - n * length
    gaps = rng.multinomial(free - (n - 1), [1.0 / (n + 1)] * (n + 1))
    runs, pos = [], 1
    for i in range(n):
        pos += int(gaps[i]) + (1 if i > 0 else 0)
        runs.append((pos, pos + length))
        pos += length
    return runs


def _flags(n_frames: int, runs: list[tuple[int, int]]) -> np.ndarray:
    on = np.zeros(n_frames, bool)
    for s, e in runs:
        on[s:e] = True
    return on


# ------------------------------------------------------------------------------------------------ corruptions
def freeze(frames: np.ndarray, masks: np.ndarray | None, severity: int, seed: int) -> TemporalResult:
    """Capture stalls.  Runs ``(s, e)`` from :func:`freeze_runs` (fraction, length = ``FREEZE[severity]``);
    ``out[t] = frames[s - 1]`` for ``s <= t < e``, ``out[t] = frames[t]`` elsewhere.  The annotations stay
    the true frames' (a method must follow the object again when the stream resumes); each run is an event
    ending at ``e``."""
    video = check_frames(frames, "freeze")
    fraction, length = FREEZE[severity]
    runs = freeze_runs(len(video), fraction, length, np.random.default_rng(seed))
    out = video.copy()
    for s, e in runs:
        out[s:e] = video[s - 1]
    return TemporalResult(out, events=tuple(runs), schedule={"frozen": _flags(len(video), runs).astype(int).tolist()})


def stride(frames: np.ndarray, masks: np.ndarray | None, severity: int, seed: int = 0) -> TemporalResult:
    """A lower frame rate: the frames ``0, k, 2k, ...`` (``k = STRIDE[severity]``, but at most
    ``(T - 1) // 2`` so that at least 3 frames remain for the first/last-frame rule).  Scored on the kept
    frames only: the output video *is* the kept frames, its annotations the source's at ``kept``.  No
    randomness."""
    video = check_frames(frames, "stride")
    (k,) = STRIDE[severity]
    k = max(1, min(k, (len(video) - 1) // 2))
    kept = tuple(range(0, len(video), k))
    return TemporalResult(np.ascontiguousarray(video[list(kept)]), kept=kept, schedule={"k": k})


def bursts(frames: np.ndarray, masks: np.ndarray | None, severity: int, seed: int, *,
           base: str, corrupt: Callable[..., np.ndarray]) -> TemporalResult:
    """The DAVIS-C image corruption ``base`` switched on over seeded runs.  ``corrupt(frames, base,
    severity, seed=seed)`` corrupts the whole video (its random draws as DAVIS-C's, frame after frame);
    the on-runs come from :func:`freeze_runs` with (fraction, length) = ``BURSTS[severity]`` and
    ``np.random.default_rng(seed)``; ``out[t] = corrupted[t]`` inside a run, ``frames[t]`` outside.  Each
    run is an event."""
    video = check_frames(frames, f"bursts of {base}")
    fraction, length = BURSTS[severity]
    runs = freeze_runs(len(video), fraction, length, np.random.default_rng(seed))
    on = _flags(len(video), runs)
    out = video.copy()
    if on.any():
        corrupted = corrupt(video, base, severity, seed=seed)
        out[on] = corrupted[on]
    return TemporalResult(out, events=tuple(runs), schedule={"base": base, "on": on.astype(int).tolist()})


def _srgb_to_linear(v: np.ndarray) -> np.ndarray:
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(v: np.ndarray) -> np.ndarray:
    return np.where(v <= 0.0031308, v * 12.92, 1.055 * np.power(v, 1 / 2.4) - 0.055)


def flicker_gains(n_frames: int, severity: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame exposure in stops, ``e_t = a * sin(2 pi t / P + phi) + L_t``, and its gain ``2 ** e_t``.

    Draws, in order: ``phi = rng.uniform(0, 2 pi)``; ``steps = rng.random(T) < p``; ``signs =
    rng.choice([-1, 1], T)``.  ``L_0 = 0``; ``L_t = clip(L_{t-1} + steps[t] * signs[t] * s, -2, 2)``
    (``a, P, p, s = FLICKER[severity]``)."""
    a, period, p, step = FLICKER[severity]
    rng = np.random.default_rng(seed)
    phi = rng.uniform(0.0, 2 * np.pi)
    steps = rng.random(n_frames) < p
    signs = rng.choice(np.array([-1.0, 1.0]), n_frames)
    level = np.zeros(n_frames)
    for t in range(1, n_frames):
        level[t] = np.clip(level[t - 1] + (step * signs[t] if steps[t] else 0.0), -FLICKER_LIMIT, FLICKER_LIMIT)
    stops = a * np.sin(2 * np.pi * np.arange(n_frames) / period + phi) + level
    return stops, np.exp2(stops)


def flicker(frames: np.ndarray, masks: np.ndarray | None, severity: int, seed: int) -> TemporalResult:
    """Auto-exposure flicker.  Each frame's 8-bit sRGB values ``v`` become
    ``round_half_even(255 * srgb(clip(g_t * linear(v / 255), 0, 1)))`` with ``linear``/``srgb`` the sRGB
    transfer functions (IEC 61966-2-1) and ``g_t`` from :func:`flicker_gains`: the gain acts on light, and
    bright regions saturate as a sensor clips.  Computed as one 256-entry table per frame."""
    video = check_frames(frames, "flicker")
    stops, gains = flicker_gains(len(video), severity, seed)
    lin = _srgb_to_linear(np.arange(256) / 255.0)
    out = np.empty_like(video)
    for t, g in enumerate(gains):
        lut = np.clip(np.rint(255.0 * _linear_to_srgb(np.clip(g * lin, 0.0, 1.0))), 0, 255).astype(np.uint8)
        out[t] = lut[video[t]]
    return TemporalResult(out, schedule={"stops": [round(float(x), 6) for x in stops]})


def shift_image(img: np.ndarray, dy: int, dx: int, fill: int) -> np.ndarray:
    """``out[y, x] = img[y - dy, x - dx]`` where that is inside the image, ``fill`` elsewhere."""
    h, w = img.shape[:2]
    out = np.full_like(img, fill)
    if abs(dy) >= h or abs(dx) >= w:
        return out
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[yd, xd] = img[ys, xs]
    return out


def shake(frames: np.ndarray, masks: np.ndarray | None, severity: int, seed: int) -> TemporalResult:
    """Camera shake.  ``m = max(1, round(r * min(H, W)))`` (``r = SHAKE[severity]``); one draw
    ``rng.integers(-m, m + 1, size=(T, 2))`` gives ``(dy_t, dx_t)``, frame 0's set to (0, 0).  Frame t is
    translated by it (:func:`shift_image`, black where padded) and so are its annotations, with the void
    label 255 where padded (DAVIS-2017 scoring counts void as background, the official rule): the ground
    truth moves with the picture, so J&F still measures segmentation.  Integer shifts only (exact)."""
    video = check_frames(frames, "shake")
    if masks is None:
        raise ValueError("shake: the annotations are needed (they are translated with the frames)")
    masks = np.asarray(masks)
    if masks.dtype != np.uint8 or masks.shape != video.shape[:3]:
        raise ValueError(f"shake: annotations must be uint8 {video.shape[:3]}, got {masks.dtype} {masks.shape}")
    (r,) = SHAKE[severity]
    m = max(1, int(round(r * min(video.shape[1:3]))))
    shifts = np.random.default_rng(seed).integers(-m, m + 1, size=(len(video), 2))
    shifts[0] = 0
    out = np.stack([shift_image(f, int(dy), int(dx), 0) for f, (dy, dx) in zip(video, shifts)])
    gt = np.stack([shift_image(g, int(dy), int(dx), VOID) for g, (dy, dx) in zip(masks, shifts)])
    return TemporalResult(out, masks=gt, schedule={"shift_yx": shifts.astype(int).tolist(), "max_shift": m})
