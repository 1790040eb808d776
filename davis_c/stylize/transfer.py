"""Stylize DAVIS frames: weights loading, style-embedding cache, batched inference, the 3 strengths.

The network has no severity input, so one pass per (frame, style) gives every strength:
severities 1-4 apply the official colour preservation (so ``low`` == ``med``, as in the official
release) and severity 5 keeps the stylized colours.  :func:`load_style_corruptions` exposes that
as ``davis_c`` corruption callables (``fn(frames uint8 (T, H, W, 3), severity) -> uint8``).
"""
from __future__ import annotations

import hashlib
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import cv2
import numpy as np
import torch
from torch import Tensor

from common.checkpoint import CheckpointError, load_strict, read_state_dict, sha256_of

from .colour import preserve_colour, to_uint8
from .network import StyleNet, StyleParams, crop_output

__all__ = [
    "STYLES", "OFFICIAL_STYLE_MD5", "PRESERVE_COLOUR_SEVERITIES", "best_device", "read_style_image",
    "load_style_weights", "save_random_style_weights", "atomic_torch_save", "StyleTransfer", "StyleCorruption",
    "StyleCorruptions", "load_style_corruptions", "describe_style_setup",
]

#: corruption name -> style image file name in the styles folder (official ``DAVIS-C/styles``).
STYLES: dict[str, str] = {f"style{j}": f"{j}.png" for j in range(1, 5)}
#: md5 of the official style images (the files of the official DAVIS-C release's ``styles/`` folder).
OFFICIAL_STYLE_MD5: dict[str, str] = {
    "1.png": "af173fb2312fcbf94dfdc08eaf264e7a", "2.png": "982ba04b5a50d53a88e5c5a3340dbb9c",
    "3.png": "14a40773c3440e4967bd6ba0e315282c", "4.png": "07274021ead7512c02e8eb54bb5f10fc",
}
#: severities whose output keeps the content colours (the official ``severity < 5`` branch).
PRESERVE_COLOUR_SEVERITIES = (1, 2, 3, 4)
WEIGHTS_HELP = ("convert the official Magenta/TF-Hub weights once with "
                "`python -m davis_c.convert_style_weights --src PATH --out style_net.pt` (see README, 'Neural styles')")


#: (weights content digest, style image key) -> (gamma, beta) pairs on CPU; 2,758 floats per style.
_SHARED_PARAMS: dict[tuple[str, str], StyleParams] = {}


def _content_digest(state: Mapping[str, Tensor]) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for name in sorted(state):
        digest.update(name.encode())
        digest.update(state[name].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def best_device() -> torch.device:
    """CUDA, else Apple MPS, else CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def read_style_image(path: str | Path) -> np.ndarray:
    """Style image as uint8 RGB (H, W, 3), read like the official script (OpenCV, full size)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"style image not found: {path}")
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ValueError(f"cannot decode style image {path}")
    return np.ascontiguousarray(bgr[..., ::-1])


def load_style_weights(weights: str | Path | Mapping[str, Any]) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Read a converted state dict; returns (state dict, info) with sha256 and the random-init flag.

    Files from :func:`save_random_style_weights` wrap the state dict as
    ``{"state_dict": ..., "random_init": True, "seed": s}`` so results built from them can be flagged.
    """
    info: dict[str, Any] = {"random_init": False, "sha256": None, "path": None}
    if isinstance(weights, (str, Path)):
        path = Path(weights)
        if not path.is_file():
            raise CheckpointError(f"style weights not found: {path}; {WEIGHTS_HELP}")
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise CheckpointError(f"cannot read style weights {path}: {type(exc).__name__}: {exc}") from exc
        info.update(sha256=sha256_of(path), path=str(path))
        source = str(path)
    else:
        obj, source = weights, "<style state dict>"
    if isinstance(obj, Mapping) and "state_dict" in obj:
        info["random_init"] = bool(obj.get("random_init", False))
        if "seed" in obj:
            info["seed"] = int(obj["seed"])
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{source}: expected a state dict, got {type(obj).__name__}; {WEIGHTS_HELP}")
    return read_state_dict(obj), info


def save_random_style_weights(path: str | Path, seed: int = 0) -> Path:
    """Write randomly initialised weights flagged ``random_init`` (tests and demos; no real styles)."""
    path = Path(path)
    state = StyleNet(seed=seed).state_dict()
    atomic_torch_save({"state_dict": state, "random_init": True, "seed": seed}, path)
    return path


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temp file in the same folder, then rename: no half-written weights."""
    from common.atomic import atomic_write

    with atomic_write(path, "wb") as fh:
        torch.save(obj, fh)


@contextmanager
def _tf32(enabled: bool) -> Iterator[None]:
    """Temporarily set CUDA's TF32 switches (convolutions and matmuls), restoring them afterwards."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def _check_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected uint8 RGB frames (T, H, W, 3), got {frames.dtype} {frames.shape}")
    return np.ascontiguousarray(frames)


class StyleTransfer:
    """The network on one device with a per-style-image cache of its 13 (gamma, beta) pairs.

    ``batch_size`` frames go through the transformer at once; by default one on CPU (measured: at
    480p batching helps only when the cores are oversubscribed, and hurts single-threaded) and
    about 16 DAVIS 480p frames' worth of pixels on GPUs.  Everything runs under ``torch.inference_mode`` in channels-last.  On CUDA, TF32 is
    off by default (``allow_tf32=False``) so GPU and CPU results are the same float32 computation.
    """

    def __init__(self, weights: str | Path | Mapping[str, Any] | StyleNet, device: str | torch.device | None = None,
                 batch_size: int | None = None, channels_last: bool = True, allow_tf32: bool = False) -> None:
        self.device = torch.device(device) if device is not None else best_device()
        if isinstance(weights, StyleNet):
            net, self.info = weights, {"random_init": None, "sha256": None, "path": None}
            self._weights_key = None      # a live module may change: no process-wide cache
        else:
            state, self.info = load_style_weights(weights)
            net = load_strict(StyleNet(seed=None), state, self.info["path"] or "style weights")
            self._weights_key = _content_digest(state)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.net = net.eval().to(self.device, memory_format=self.memory_format)
        self.batch_size = batch_size
        self.allow_tf32 = allow_tf32
        self._params: dict[str, StyleParams] = {}

    def auto_batch_size(self, height: int, width: int) -> int:
        """Frames per transformer call: 1 on CPU; ~16 480x854 frames' worth of pixels (1..32) otherwise."""
        if self.device.type == "cpu":
            return 1
        return max(1, min(32, 16 * 480 * 856 // (height * width)))

    def _to_input(self, images: np.ndarray) -> Tensor:
        """uint8 NHWC -> float32 NCHW in [0, 1] (channels-last memory: the permute is free)."""
        x = torch.from_numpy(images).to(self.device, non_blocking=True).permute(0, 3, 1, 2)
        return (x.float() / 255.0).contiguous(memory_format=self.memory_format)

    def style_params(self, style: np.ndarray) -> StyleParams:
        """(gamma, beta) pairs of a uint8 RGB style image at its full size, computed once and cached.

        With weights given as a file or state dict the cache is process-wide (keyed by a digest of
        the tensors), so loading the same weights again does not re-run the predictor.
        """
        style = _check_frames(style)[:1]
        key = hashlib.sha1(style.data, usedforsecurity=False).hexdigest() + str(style.shape)
        if key not in self._params:
            shared_key = (self._weights_key, key) if self._weights_key else None
            cpu = _SHARED_PARAMS.get(shared_key) if shared_key else None
            if cpu is None:
                with torch.inference_mode(), _tf32(self.allow_tf32):
                    params = self.net.style_norm_params(self.net.embed(self._to_input(style)))
                cpu = tuple((g.cpu(), b.cpu()) for g, b in params)
                if shared_key:
                    _SHARED_PARAMS[shared_key] = cpu
            self._params[key] = tuple((g.to(self.device), b.to(self.device)) for g, b in cpu)
        return self._params[key]

    def stylize_pair(self, frames: np.ndarray, style: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One network pass -> (colour-preserved, stylized) uint8 frames, i.e. severities <=4 and 5."""
        frames = _check_frames(frames)
        params = self.style_params(style)
        t, h, w, _ = frames.shape
        preserved = np.empty_like(frames)
        stylized = np.empty_like(frames)
        batch = self.batch_size or self.auto_batch_size(h, w)
        with torch.inference_mode(), _tf32(self.allow_tf32):
            for i in range(0, t, batch):
                x = self._to_input(frames[i:i + batch])
                out = crop_output(self.net.stylize(x, params), h, w).permute(0, 2, 3, 1) * 255.0
                content = x.permute(0, 2, 3, 1) * 255.0
                # the script divides the colour-converted image by 255 and multiplies it back before
                # imwrite; kept (float32) so rounding ties fall the same way
                preserved[i:i + len(x)] = to_uint8(preserve_colour(content, out) / 255.0 * 255.0).cpu().numpy()
                stylized[i:i + len(x)] = to_uint8(out).cpu().numpy()
        return preserved, stylized

    def stylize_strengths(self, frames: np.ndarray, style: np.ndarray) -> dict[int, np.ndarray]:
        """All three DAVIS-C strengths from one pass: {3: low, 4: med (the same array), 5: high}."""
        preserved, stylized = self.stylize_pair(frames, style)
        return {3: preserved, 4: preserved, 5: stylized}


class StyleCorruption:
    """``callable(frames, severity)`` for one style; remembers the last video's pass so that asking
    for severities 3, 4 and 5 of the same frames runs the network once."""

    def __init__(self, transfer: StyleTransfer, style: np.ndarray, name: str) -> None:
        self.transfer, self.style, self.name = transfer, style, name
        self._last: tuple[str, tuple[np.ndarray, np.ndarray]] | None = None

    def pair(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        frames = _check_frames(frames)
        key = hashlib.blake2b(frames.data, digest_size=16).hexdigest() + str(frames.shape)
        if self._last is None or self._last[0] != key:
            self._last = None       # free the previous video's frames before computing new ones
            self._last = (key, self.transfer.stylize_pair(frames, self.style))
        return self._last[1]

    def __call__(self, frames: np.ndarray, severity: int) -> np.ndarray:
        if severity not in (1, 2, 3, 4, 5):
            raise ValueError(f"{self.name}: severity must be 1..5 (DAVIS-C uses 3, 4, 5), got {severity!r}")
        preserved, stylized = self.pair(frames)
        out = (preserved if severity in PRESERVE_COLOUR_SEVERITIES else stylized).copy()
        return out[0] if np.ndim(frames) == 3 else out     # a single (H, W, 3) frame stays one

    def all_strengths(self, frames: np.ndarray) -> dict[int, np.ndarray]:
        """{3: low, 4: med, 5: high} from one network pass (3 and 4 are the same array)."""
        preserved, stylized = self.pair(frames)
        return {3: preserved, 4: preserved, 5: stylized}


class StyleCorruptions(dict):
    """``{"style1": StyleCorruption, ...}`` plus ``attrs`` describing the weights and style images
    (sha256, ``style_weights_random_init``) for the builder to store with the dataset."""

    attrs: dict[str, Any]


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def _check_styles_dir(styles_dir: Path) -> None:
    missing = [f for f in STYLES.values() if not (styles_dir / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"style images missing in {styles_dir}: {', '.join(missing)} (the official ones are "
            "DAVIS-C/styles/1.png..4.png of github.com/ttt-matching-based-vos/ttt_matching_vos)")


def describe_style_setup(weights_path: str | Path, styles_dir: str | Path) -> dict[str, Any]:
    """Attributes to store with styled data, without building the network: the weights' sha256,
    whether they are random test weights (``style_weights_random_init``), and the style images' md5s
    with a flag telling whether they are the official ones."""
    styles_dir = Path(styles_dir)
    _check_styles_dir(styles_dir)
    return _setup_attrs(load_style_weights(weights_path)[1], styles_dir)


def _setup_attrs(info: Mapping[str, Any], styles_dir: Path) -> dict[str, Any]:
    md5s = {f: _md5(styles_dir / f) for f in STYLES.values()}
    return {
        "style_weights_sha256": info["sha256"],
        "style_weights_random_init": bool(info["random_init"]),
        "style_images_md5": md5s,
        "style_images_official": all(OFFICIAL_STYLE_MD5[f] == m for f, m in md5s.items()),
    }


def load_style_corruptions(weights_path: str | Path, styles_dir: str | Path,
                           device: str | torch.device | None = None) -> dict[str, Callable[[np.ndarray, int], np.ndarray]]:
    """The four DAVIS-C neural styles as corruption callables (same signature as the others).

    ``weights_path``: a state dict written by ``davis_c.convert_style_weights``; ``styles_dir``:
    folder with the official ``1.png .. 4.png``.  Keys ``style1..style4``; each value maps uint8
    RGB frames (T, H, W, 3) and a severity (3 | 4 | 5) to uint8 frames.  The network is loaded
    once and shared; each style's embedding is computed on first use and cached.  The returned
    dict's ``attrs`` is :func:`describe_style_setup`.
    """
    styles_dir = Path(styles_dir)
    _check_styles_dir(styles_dir)
    transfer = StyleTransfer(weights_path, device=device)
    out = StyleCorruptions(
        {name: StyleCorruption(transfer, read_style_image(styles_dir / file), name) for name, file in STYLES.items()})
    out.attrs = _setup_attrs(transfer.info, styles_dir)
    return out
