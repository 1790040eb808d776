"""DAVIS-C corruptions: one registry, pure functions ``frames -> frames`` with an explicit seed.

>>> from davis_c.corruptions import corrupt, CORRUPTIONS, STRENGTHS
>>> out = corrupt(frames, "glass_blur", STRENGTHS["high"], seed=0)   # frames: uint8 RGB (T, H, W, 3)

Every function returns what the official generator (``DAVIS-C/davisc_create.py``) hands to its JPEG encoder,
in RGB: its BGR quirks included (saturate tints gray blue, cartoon's gray/HSV steps), floats rounded half to
even like ``cv2.imwrite``, motion blur's window growing from the first frame.  The two random corruptions
(gaussian_noise, glass_blur) draw from ``np.random.RandomState(seed)`` in the official order, frame after
frame, so ``seed=s`` reproduces the official functions run after ``np.random.seed(s)`` exactly.

Kinds: ``image`` (frame by frame), ``temporal`` (needs the previous frames), ``video`` (whole-video codec),
``neural`` (style1..style4: available after :func:`load_styles`, see the README section "Neural styles").

The temporal suite (freeze, stride, bursts, packet loss, flicker, shake: :mod:`davis_c.corruptions.temporal_suite`) is a
separate benchmark with its own registry, :data:`TEMPORAL`, and its own entry point,
:func:`corrupt_temporal`; :data:`CORRUPTIONS` stays the paper's 14.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from common.vocabulary import CORRUPTION_KINDS, KINDS, STRENGTHS, TEMPORAL_CORRUPTIONS
from davis_c.corruptions import cartoon as _cartoon
from davis_c.corruptions import crf as _crf
from davis_c.corruptions import glass as _glass
from davis_c.corruptions import hsv as _hsv
from davis_c.corruptions import imagenet_c as _ic
from davis_c.corruptions import motion as _motion
from davis_c.corruptions import packet_loss as _pl
from davis_c.corruptions import temporal_suite as _ts
from davis_c.corruptions._common import check_frames

__all__ = ["Corruption", "CORRUPTIONS", "STRENGTHS", "NEURAL", "corrupt", "corrupt_strengths", "get", "names",
           "load_styles", "warm_styles",
           "set_styles", "styles_loaded", "StylesNotLoaded", "FfmpegUnavailable", "TEMPORAL", "TemporalResult",
           "corrupt_temporal", "get_temporal"]

FfmpegUnavailable = _crf.FfmpegUnavailable

# STRENGTHS (DAVIS-C strength name -> ImageNet-C severity) and KINDS are the vocabulary's
# (common.vocabulary), re-exported here because ``davis_c.corruptions.STRENGTHS`` is public.


class StylesNotLoaded(RuntimeError):
    """A neural style was requested but the stylization network has not been loaded."""


@dataclass(frozen=True)
class Corruption:
    """One DAVIS-C corruption: its kind, parameter table (severity -> parameters) and implementation."""

    name: str
    kind: str
    param_names: tuple[str, ...]
    table: Mapping[int, tuple]
    description: str
    random: bool = False
    fn: Callable[..., np.ndarray] | None = field(default=None, repr=False, compare=False)

    @property
    def severities(self) -> tuple[int, ...]:
        return tuple(sorted(self.table))

    def parameters(self, severity: int) -> dict[str, Any]:
        """Named parameters at one severity, e.g. ``{"sigma": 1.5, "max_delta": 4, "iterations": 2}``."""
        self.check_severity(severity)
        return dict(zip(self.param_names, self.table[severity]))

    def check_severity(self, severity: int) -> int:
        if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) or severity not in self.table:
            raise ValueError(f"{self.name}: severity must be one of {self.severities} (got {severity!r}); "
                             f"DAVIS-C strengths are {dict(STRENGTHS)}")
        return int(severity)


def _table(values: Sequence, severities: Sequence[int] = (1, 2, 3, 4, 5)) -> Mapping[int, tuple]:
    return MappingProxyType({s: (v if isinstance(v, tuple) else (v,)) for s, v in zip(severities, values)
                             if s in severities})


def _sub(values: Sequence, severities: Sequence[int]) -> list:
    return [values[s - 1] for s in severities]


_DAVIS = tuple(STRENGTHS.values())  # the severities DAVIS-C uses (3, 4, 5)
_REGISTRY: dict[str, Corruption] = {}


def _register(c: Corruption) -> None:
    assert c.kind in KINDS and c.name not in _REGISTRY and CORRUPTION_KINDS.get(c.name) == c.kind, c.name
    _REGISTRY[c.name] = c


_register(Corruption("gaussian_noise", "image", ("std",), _table(_ic.GAUSSIAN_NOISE),
                     "additive i.i.d. normal noise on [0,1] pixels, clipped", random=True, fn=_ic.gaussian_noise))
_register(Corruption("contrast", "image", ("factor",), _table(_ic.CONTRAST),
                     "pull every channel towards its frame mean", fn=_ic.contrast))
_register(Corruption("brightness", "image", ("value_shift",), _table(_hsv.BRIGHTNESS),
                     "add to HSV value (scikit-image HSV)", fn=_hsv.brightness))
_register(Corruption("saturate", "image", ("multiplier", "offset"), _table(_hsv.SATURATE),
                     "scale/offset HSV saturation; gray turns bluish at severity 4-5 (official BGR quirk)",
                     fn=_hsv.saturate))
_register(Corruption("glass_blur", "image", ("sigma", "max_delta", "iterations"), _table(_glass.GLASS_BLUR),
                     "blur, local sequential pixel copying, blur", random=True, fn=_glass.glass_blur))
_register(Corruption("defocus_blur", "image", ("radius", "alias_blur"), _table(_ic.DEFOCUS_BLUR),
                     "anti-aliased disk kernel (not renormalised at severity 4-5, as official)",
                     fn=_ic.defocus_blur))
_register(Corruption("pixelate", "image", ("scale",), _table(_ic.PIXELATE),
                     "Pillow BOX downscale and BOX upscale", fn=_ic.pixelate))
_register(Corruption("cartoon", "image", ("blur_ksize", "segmentation_size", "saturation"),
                     _table(_cartoon.CARTOON), "imgaug 0.4.0 stylize_cartoon (edge_prevalence 0.8)",
                     fn=_cartoon.cartoon))
_register(Corruption("motion_blur", "temporal", ("window",), _table(_sub(_motion.MOTION_BLUR, _DAVIS), _DAVIS),
                     "linearly weighted mean of the last n frames (window grows from frame 0)",
                     fn=_motion.motion_blur))
_register(Corruption("crf_compression", "video", ("crf",), _table(_sub(_crf.CRF, _DAVIS), _DAVIS),
                     "ffmpeg: default mp4 (x264) at 24 fps, libx265 at this CRF, MJPEG qscale 2",
                     fn=_crf.crf_compression))
for _i in range(1, 5):
    _register(Corruption(f"style{_i}", "neural", ("preserve_colors",), _table([True, True, False], _DAVIS),
                         f"Magenta arbitrary style transfer with style image {_i}.png (low == med)"))

# the registry implements the vocabulary's corruptions, in its order, no more and no fewer
if tuple(_REGISTRY) != tuple(CORRUPTION_KINDS):
    raise RuntimeError(f"davis_c.corruptions registers {tuple(_REGISTRY)}, common.vocabulary names "
                       f"{tuple(CORRUPTION_KINDS)}")

#: name -> Corruption, in the official order (10 weight-free corruptions, then style1..style4)
CORRUPTIONS: Mapping[str, Corruption] = MappingProxyType(_REGISTRY)
NEURAL: tuple[str, ...] = tuple(n for n, c in _REGISTRY.items() if c.kind == "neural")

_STYLES: dict[str, Callable[[np.ndarray, int], np.ndarray]] = {}

def names(kind: str | None = None) -> list[str]:
    """Registered corruption names (of one kind, if given), in the official order."""
    return [n for n, c in CORRUPTIONS.items() if kind is None or c.kind == kind]


def get(name: str) -> Corruption:
    try:
        return CORRUPTIONS[name]
    except KeyError:
        raise KeyError(f"unknown corruption {name!r}; known: {', '.join(CORRUPTIONS)}") from None


def set_styles(styles: Mapping[str, Callable[[np.ndarray, int], np.ndarray]]) -> None:
    """Install loaded neural-style callables (keys style1..style4) so ``corrupt`` can use them."""
    unknown = set(styles) - set(NEURAL)
    if unknown:
        raise KeyError(f"not neural corruptions: {sorted(unknown)}")
    _STYLES.update(styles)


def load_styles(weights: str, styles_dir: str, device: str | None = None) -> None:
    """Load the stylization network (``davis_c.stylize.load_style_corruptions``) and install style1..4."""
    from davis_c.stylize import load_style_corruptions

    set_styles(load_style_corruptions(weights, styles_dir, device))


def styles_loaded() -> bool:
    return all(n in _STYLES for n in NEURAL)


def corrupt(frames: np.ndarray, corruption: str, severity: int, *, seed: int = 0,
            source_jpegs: Sequence[bytes] | None = None,
            progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Corrupt one video (uint8 RGB (T, H, W, 3), frames in order; a single (H, W, 3) frame also works).

    Returns uint8 frames of the same shape: exactly what the official generator hands to its JPEG encoder.
    ``seed`` drives gaussian_noise/glass_blur (one ``RandomState(seed)`` per call, frames in order).
    ``source_jpegs``: the original JPEG files' bytes, used by crf_compression (the official pipeline reads
    the files); without them the frames are encoded like ``cv2.imwrite`` first.
    ``progress(n)`` is called as frames are done (after each frame for image corruptions, once at the end
    for the others); it does not change the result.
    """
    c = get(corruption)
    tick = progress or (lambda n: None)
    severity = c.check_severity(severity)
    frames = np.asarray(frames)
    single = frames.ndim == 3
    video = check_frames(frames[None] if single else frames, f"corrupt({corruption!r})")
    if c.kind == "neural":
        fn = _STYLES.get(c.name)
        if fn is None:
            raise StylesNotLoaded(
                f"{c.name} is a neural style and needs the stylization network: call "
                "davis_c.corruptions.load_styles(WEIGHTS, STYLES_DIR) first, or build with "
                "`--style-weights FILE --styles DIR` (how to obtain/convert the weights: README, 'Neural styles')")
        out = np.asarray(fn(video, severity))
        tick(len(video))
    elif c.kind == "image":
        rng = np.random.RandomState(seed) if c.random else None
        frames_out = []
        for f in video:
            frames_out.append(c.fn(f, severity, rng) if c.random else c.fn(f, severity))
            tick(1)
        out = np.stack(frames_out)
    elif c.kind == "temporal":
        out = c.fn(video, severity)
        tick(len(video))
    else:  # video codec
        out = c.fn(video, severity, source_jpegs)
        tick(len(video))
    if out.dtype != np.uint8 or out.shape != video.shape:
        raise RuntimeError(f"{c.name} returned {out.dtype} {out.shape} for input {video.shape}")
    return out[0] if single else out


def corrupt_strengths(frames: np.ndarray, corruption: str, severities: Sequence[int], *,
                      seeds: Mapping[int, int] | None = None,
                      source_jpegs: Sequence[bytes] | None = None,
                      progress: Callable[[int], None] | None = None) -> dict[int, np.ndarray]:
    """Several severities of one corruption of one video: ``{severity: uint8 frames}``.

    The stylization network has no severity input, so a neural style whose callable offers
    ``all_strengths(frames) -> {3: low, 4: med, 5: high}`` (``davis_c.stylize.StyleCorruption``) runs
    once for all of them; a severity it does not return, a plain callable and every other corruption
    take one :func:`corrupt` call per severity (``seeds[severity]``, default 0).  ``progress(n)``: as in
    :func:`corrupt`, counting frame-variants (frames x severities).
    """
    c = get(corruption)
    sevs = [c.check_severity(s) for s in dict.fromkeys(severities)]
    seeds = seeds or {}
    out: dict[int, np.ndarray] = {}
    fn = _STYLES.get(c.name) if c.kind == "neural" else None
    all_strengths = getattr(fn, "all_strengths", None)
    if all_strengths is not None and sevs:
        frames = np.asarray(frames)
        single = frames.ndim == 3
        video = check_frames(frames[None] if single else frames, f"corrupt_strengths({corruption!r})")
        produced = all_strengths(video)
        for s in sevs:
            if s not in produced:
                continue
            res = np.asarray(produced[s])
            if res.dtype != np.uint8 or res.shape != video.shape:
                raise RuntimeError(f"{c.name} returned {res.dtype} {res.shape} for input {video.shape}")
            out[s] = res[0] if single else res
        if progress is not None:
            progress(len(video) * len(out))
    for s in sevs:
        if s not in out:
            out[s] = corrupt(frames, corruption, s, seed=seeds.get(s, 0), source_jpegs=source_jpegs,
                             progress=progress)
    return {s: out[s] for s in sevs}


def warm_styles() -> int:
    """Compute every loaded style's embedding now (``StyleCorruption.transfer.style_params``); returns how
    many.  The builder calls it in a worker before lowering torch's thread count: the style predictor's
    oneDNN convolutions give last-bit-different embeddings at other thread counts, and the stored
    frames must not depend on ``--workers``."""
    n = 0
    for fn in _STYLES.values():
        transfer, style = getattr(fn, "transfer", None), getattr(fn, "style", None)
        if transfer is not None and style is not None and hasattr(transfer, "style_params"):
            transfer.style_params(style)
            n += 1
    return n


# ------------------------------------------------------------------------------------------------ temporal suite
TemporalResult = _ts.TemporalResult
_TEMPORAL: dict[str, _ts.TemporalCorruption] = {}


def _bursts_of(base: str) -> _ts.TemporalCorruption:
    fn = functools.partial(_ts.bursts, base=base, corrupt=corrupt)
    return _ts.TemporalCorruption(f"bursts_{base}", ("fraction", "length"), _ts.BURSTS,
                                  f"DAVIS-C {base} at the same strength, switched on over seeded runs of frames", fn)


for _c in (
        _ts.TemporalCorruption("freeze", ("fraction", "length"), _ts.FREEZE,
                               "seeded runs of frames replaced by the last good frame (capture stalls)", _ts.freeze),
        _ts.TemporalCorruption("stride", ("k",), _ts.STRIDE, "every k-th frame kept (a lower frame rate), "
                               "scored on the kept frames", _ts.stride, random=False, changes_frames=True),
        _bursts_of("gaussian_noise"),
        _bursts_of("defocus_blur"),
        _ts.TemporalCorruption("packet_loss", ("slice_loss_probability",), _pl.PACKET_LOSS,
                               "H.264 stream (keyframe every 12 frames), seeded slice damage, decoded with error "
                               "concealment (needs ffmpeg)", _pl.packet_loss),
        _ts.TemporalCorruption("flicker", ("amplitude_stops", "period", "step_probability", "step_stops"),
                               _ts.FLICKER, "auto-exposure: gain oscillation and steps in linear light, clipped",
                               _ts.flicker),
        _ts.TemporalCorruption("shake", ("max_shift_fraction",), _ts.SHAKE, "per-frame integer translation of "
                               "frame and annotations (void where padded)", _ts.shake, changes_masks=True)):
    _TEMPORAL[_c.name] = _c
if tuple(_TEMPORAL) != TEMPORAL_CORRUPTIONS:
    raise RuntimeError(f"davis_c.corruptions registers the temporal suite {tuple(_TEMPORAL)}, common.vocabulary "
                       f"names {TEMPORAL_CORRUPTIONS}")

#: the temporal suite: name -> TemporalCorruption, in its order (never part of CORRUPTIONS)
TEMPORAL: Mapping[str, _ts.TemporalCorruption] = MappingProxyType(_TEMPORAL)


def get_temporal(name: str) -> _ts.TemporalCorruption:
    try:
        return TEMPORAL[name]
    except KeyError:
        raise KeyError(f"unknown temporal corruption {name!r}; known: {', '.join(TEMPORAL)}") from None


def corrupt_temporal(frames: np.ndarray, corruption: str, severity: int, *, seed: int = 0,
                     masks: np.ndarray | None = None) -> _ts.TemporalResult:
    """One corruption of the temporal suite on one video (uint8 RGB (T, H, W, 3)); ``masks`` (T, H, W) uint8
    annotations are needed by shake (translated with the frames).  See
    :mod:`davis_c.corruptions.temporal_suite` for each formula."""
    c = get_temporal(corruption)
    severity = c.check_severity(severity)
    video = check_frames(np.asarray(frames), f"corrupt_temporal({corruption!r})")
    res = c.fn(video, masks, severity, int(seed))
    n = len(res.kept) if res.kept is not None else len(video)
    if res.frames.dtype != np.uint8 or res.frames.shape != (n, *video.shape[1:]):
        raise RuntimeError(f"{c.name} returned {res.frames.dtype} {res.frames.shape} for input {video.shape}")
    if res.masks is not None and res.masks.shape != res.frames.shape[:3]:
        raise RuntimeError(f"{c.name} returned annotations {res.masks.shape} for frames {res.frames.shape}")
    return res
