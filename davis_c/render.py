"""Synthetic videos drawn from a seed: a textured, slowly panning background and 1-3 textured objects of
clearly different colours that move along crossing paths (so they occlude each other), deform and partly
leave the frame; frames and label maps.  The one renderer of :mod:`davis_c.sample` (every VOS layout) and
:mod:`davis_c.sample_correspondence` (JHMDB / VIP)."""
from __future__ import annotations

import colorsys
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = ["render_video"]


@dataclass
class _Object:
    label: int
    radius: float
    start: np.ndarray  # (x, y) centre at t = 0
    end: np.ndarray  # (x, y) centre at t = T-1
    wobble: np.ndarray  # (3, 3): rows k=2..4 -> amplitude, phase, angular speed of the outline harmonics
    stretch: tuple[float, float, float]  # amplitude, speed, axis angle of the breathing deformation
    colors: np.ndarray  # (2, 3) float RGB of the two stripe colours
    stripe: tuple[float, float]  # period (px), direction (rad)

    def centre(self, t: int, n_frames: int) -> np.ndarray:
        a = t / max(n_frames - 1, 1)
        return (1 - a) * self.start + a * self.end


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v)) * 255.0


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: float, channels: int = 3) -> np.ndarray:
    """Band-limited noise in [-1, 1]: a coarse random grid upsampled with bicubic interpolation."""
    gh, gw = max(2, int(h / cell) + 2), max(2, int(w / cell) + 2)
    grid = rng.uniform(-1, 1, size=(gh, gw, channels)).astype(np.float32)
    up = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    return up.reshape(h, w, channels)


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Low-saturation texture (cloudy noise + faint oriented stripes + grain) as float RGB."""
    base = _hsv(rng.uniform(), rng.uniform(0.05, 0.25), rng.uniform(0.35, 0.65))
    scale = min(h, w)
    # Mostly luminance variation (shared by the channels) with a little colour, so objects stand out by hue.
    img = (base + 40.0 * _smooth_noise(rng, h, w, cell=scale / 3, channels=1)
           + 18.0 * _smooth_noise(rng, h, w, cell=scale / 12, channels=1)
           + 10.0 * _smooth_noise(rng, h, w, cell=scale / 6))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ang = rng.uniform(0, np.pi)
    period = rng.uniform(0.06, 0.15) * scale
    stripes = np.sin(2 * np.pi * (xx * np.cos(ang) + yy * np.sin(ang)) / period)
    img += 12.0 * stripes[..., None]
    img += rng.normal(0, 4.0, size=img.shape)
    return img.astype(np.float32)


def _make_objects(rng: np.random.Generator, k: int, h: int, w: int, n_frames: int) -> list[_Object]:
    scale = min(h, w)
    hue0 = rng.uniform()
    radii = rng.uniform(0.13, 0.21, size=k) * scale
    # The last object partly leaves the frame: it ends with its centre just inside a border.
    objs: list[_Object] = []
    for idx in range(k):
        r = float(radii[idx])
        hue = hue0 + idx / k + rng.uniform(-0.04, 0.04)
        c1 = _hsv(hue, rng.uniform(0.75, 1.0), rng.uniform(0.8, 1.0))
        c2 = _hsv(hue + rng.uniform(-0.05, 0.05), rng.uniform(0.5, 0.9), rng.uniform(0.45, 0.6))
        wobble = np.stack([rng.uniform(0.04, 0.12, 3), rng.uniform(0, 2 * np.pi, 3), rng.uniform(-0.5, 0.5, 3)], 1)
        objs.append(_Object(label=idx + 1, radius=r, start=np.zeros(2), end=np.zeros(2), wobble=wobble,
                            stretch=(rng.uniform(0.1, 0.25), rng.uniform(0.3, 0.8), rng.uniform(0, np.pi)),
                            colors=np.stack([c1, c2]), stripe=(rng.uniform(0.25, 0.5) * r, rng.uniform(0, np.pi))))
    lo = lambda r: np.array([r, r])  # noqa: E731 - keep a start fully inside the frame
    hi = lambda r: np.array([w - r, h - r])  # noqa: E731
    last = objs[-1]
    last.start = rng.uniform(lo(last.radius), hi(last.radius))
    side = rng.integers(4)
    end = rng.uniform([0.2 * w, 0.2 * h], [0.8 * w, 0.8 * h])
    out = 0.25 * last.radius  # centre ends this far inside the border: roughly 40 % of the object is outside
    if side == 0:
        end[0] = out
    elif side == 1:
        end[0] = w - out
    elif side == 2:
        end[1] = out
    else:
        end[1] = h - out
    last.end = end
    # Every other object crosses the path of the next one at mid-video, so they occlude each other.
    for idx in range(k - 2, -1, -1):
        obj, nxt = objs[idx], objs[idx + 1]
        meet = nxt.centre(n_frames // 2, n_frames) + rng.uniform(-0.3, 0.3, 2) * obj.radius
        offset = rng.normal(size=2)
        offset *= rng.uniform(0.2, 0.35) * scale / max(np.linalg.norm(offset), 1e-6)
        obj.start = np.clip(meet + offset, lo(obj.radius), hi(obj.radius))
        a = (n_frames // 2) / max(n_frames - 1, 1)
        obj.end = obj.start + (meet - obj.start) / max(a, 1e-6)
    return objs


def _draw(obj: _Object, t: int, n_frames: int, h: int, w: int) -> tuple[tuple[slice, slice], np.ndarray, np.ndarray]:
    """Rasterise one object at frame t: (bbox slices, boolean mask, float RGB texture) inside the frame."""
    cx, cy = obj.centre(t, n_frames)
    reach = obj.radius * 1.7
    x0, x1 = max(int(np.floor(cx - reach)), 0), min(int(np.ceil(cx + reach)) + 1, w)
    y0, y1 = max(int(np.floor(cy - reach)), 0), min(int(np.ceil(cy + reach)) + 1, h)
    if x0 >= x1 or y0 >= y1:
        return (slice(0, 0), slice(0, 0)), np.zeros((0, 0), bool), np.zeros((0, 0, 3), np.float32)
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    dx, dy = xx - cx, yy - cy
    amp, speed, axis = obj.stretch
    s = 1.0 + amp * np.sin(speed * t)
    ca, sa = np.cos(axis), np.sin(axis)
    u, v = dx * ca + dy * sa, -dx * sa + dy * ca  # breathing: stretch along one axis, squeeze the other
    u, v = u / s, v * s
    theta = np.arctan2(v, u)
    rad = np.full_like(theta, obj.radius)
    for k, (a, phase, omega) in zip((2, 3, 4), obj.wobble):
        rad += obj.radius * a * np.sin(k * theta + phase + omega * t)
    mask = np.hypot(u, v) < rad
    period, ang = obj.stripe
    # Texture lives in object coordinates so that it moves (and rotates slightly) with the object.
    rot = ang + 0.05 * t
    phase = (dx * np.cos(rot) + dy * np.sin(rot)) / period
    mix = (0.5 + 0.5 * np.sign(np.sin(2 * np.pi * phase)))[..., None]
    tex = mix * obj.colors[0] + (1 - mix) * obj.colors[1]
    return (slice(y0, y1), slice(x0, x1)), mask, tex.astype(np.float32)


def render_video(rng: np.random.Generator, n_frames: int, height: int, width: int,
                 max_tries: int = 100, *, n_objects: int | None = None,
                 hidden_before: dict[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Draw one synthetic video: ``(T, H, W, 3)`` uint8 RGB frames and ``(T, H, W)`` uint8 label maps.

    All objects are clearly visible in frame 0 (contiguous ids 1..K there, as DAVIS expects), unless
    ``hidden_before`` ({label: frame}) keeps an object out of the video (pixels and labels) before that
    frame.  ``n_objects`` fixes K (the random stream is the same as without it).
    """
    k = int(rng.integers(1, 4))
    if n_objects is not None:
        k = int(n_objects)
    hidden_before = hidden_before or {}
    pan = np.ceil(np.array([0.15 * width, 0.15 * height])).astype(int)
    bg = _background(rng, height + 2 * pan[1], width + 2 * pan[0])
    pan_dir = rng.uniform(-1, 1, 2)
    for _ in range(max_tries):
        objs = _make_objects(rng, k, height, width, n_frames)
        depth = rng.permutation(k)  # drawing order, back to front
        labels0 = _labels_at(objs, depth, 0, n_frames, height, width)
        areas = [(labels0 == o.label).sum() / (np.pi * o.radius ** 2) for o in objs]
        if min(areas) > 0.35:
            break
    else:  # pragma: no cover - practically unreachable, kept so a bad seed fails loudly
        raise RuntimeError("could not place the sample objects visibly in the first frame")
    frames = np.empty((n_frames, height, width, 3), np.uint8)
    masks = np.empty((n_frames, height, width), np.uint8)
    for t in range(n_frames):
        a = t / max(n_frames - 1, 1)
        ox, oy = np.round(pan + pan_dir * pan * (a - 0.5) * 1.8).astype(int)
        img = bg[oy:oy + height, ox:ox + width].copy()
        lab = np.zeros((height, width), np.uint8)
        for d in depth:
            obj = objs[d]
            if t < hidden_before.get(obj.label, 0):
                continue
            sl, m, tex = _draw(obj, t, n_frames, height, width)
            if m.size:
                img[sl][m] = tex[m]
                lab[sl][m] = obj.label
        # A mild global illumination flicker, so that appearance is not perfectly constant over time.
        img *= 1.0 + 0.04 * np.sin(1.3 * t + k)
        frames[t] = np.clip(img, 0, 255).astype(np.uint8)
        masks[t] = lab
    return frames, masks


def _labels_at(objs: list[_Object], depth: np.ndarray, t: int, n_frames: int, h: int, w: int) -> np.ndarray:
    lab = np.zeros((h, w), np.uint8)
    for d in depth:
        sl, m, _ = _draw(objs[d], t, n_frames, h, w)
        if m.size:
            lab[sl][m] = objs[d].label
    return lab
