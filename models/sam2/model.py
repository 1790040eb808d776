"""The user-facing SAM 2 model: network + VOS settings + ``segment``, the TTT hooks, and the loaders.

``models.load_model("sam2.1_hiera_t", checkpoint="sam2.1_hiera_tiny.pt")`` lands in :func:`load`.
The official checkpoint is a dict whose ``model`` entry is the plain state dict of ``SAM2Base``;
it is read with ``torch.load(weights_only=True)`` and loaded strictly.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from models.checkpoint import CheckpointError, load_strict, read_state_dict
from models.sam2 import ttt as sam2_ttt
from models.sam2.config import MODEL_NAMES, load_config
from models.sam2.golden import golden_state_dict_v2
from models.sam2.inference import label_map, preprocess, probabilities, segment_video, track
from models.sam2.network import SAM2Net

__all__ = ["SAM2", "DEFAULT_CONFIG", "load", "LOADERS"]

#: ``amp``: bfloat16 autocast on CUDA (the official script's precision); off = float32 everywhere
DEFAULT_CONFIG: dict[str, Any] = {"amp": False}


class SAM2(SAM2Net):
    """SAM 2 / 2.1 for semi-supervised VOS (the official ``tools/vos_inference.py`` procedure).

    ``segment(frames, masks)`` -> float32 (K+1, T, H, W): softmax over [0, l_1 .. l_K] of the
    per-object logits at video resolution, so its argmax is the official label map.  Objects are
    tracked independently and start on the frame where their mask is given.

    Test-time training (``models.ttt.adapt``) uses the hooks below; the design is described in
    :mod:`models.sam2.ttt` (our reading: no reference exists).
    """

    def __init__(self, name: str = "sam2.1_hiera_t", *, image_size: int = 1024, **config: Any) -> None:
        cfg = load_config(name)
        super().__init__(cfg["trunk"], cfg["neck"], cfg["version"], image_size)
        self.name = str(name)
        self.config = _check_config({**DEFAULT_CONFIG, **config})

    def segment(self, frames: np.ndarray, masks, *, progress: bool = False, **overrides: Any) -> np.ndarray:
        """frames uint8 (T, H, W, 3) RGB; masks: (H, W) label map of frame 0 or {frame: label map}
        (see :mod:`models.inputs`) -> float32 (K+1, T, H, W) probabilities."""
        cfg = _check_config({**self.config, **overrides})
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                return segment_video(self, frames, masks, amp=cfg["amp"], progress=progress)
        finally:
            self.train(was_training)

    def golden_state_dict(self, seed: int = 0, s: float = 1.0, **kw: float) -> dict[str, torch.Tensor]:
        """Golden init v2 (the SAM 2 goldens' recipe); used by ``models.golden_init`` / ``--random-init``."""
        return golden_state_dict_v2(self.state_dict(), seed=seed, s=s, **kw)

    # ------------------------------------------------------------------ models.ttt hooks
    #: no padding: frames are squashed to the square input anyway, labels keep the frames' size
    ttt_pad = 1

    def prepare(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 (T, H, W, 3) -> normalised (T, 3, S, S), S = ``image_size`` (the official frame loader)."""
        device = next(self.parameters()).device
        return torch.cat([preprocess(f, device, size=self.image_size) for f in np.asarray(frames)])

    @torch.no_grad()
    def ttt_pseudo_labels(self, images: torch.Tensor, first_labels: torch.Tensor, **segment_kw: Any) -> torch.Tensor:
        """Standard inference on prepared frames -> (T, H, W) uint8 class maps at the mask's size."""
        cfg = _check_config({**self.config, **segment_kw})
        k = int(first_labels.max())
        size = tuple(first_labels.shape)
        m = first_labels.cpu().numpy()
        starts = [(0, m == i) for i in range(1, k + 1)]
        labels = torch.empty((images.shape[0], *size), dtype=torch.uint8, device=images.device)
        was_training = self.training
        self.eval()
        try:
            for t, logits in track(self, images.shape[0], lambda i: images[i:i + 1], starts, size, amp=cfg["amp"]):
                labels[t] = probabilities(logits).argmax(0).to(torch.uint8)
        finally:
            self.train(was_training)
        return labels

    def ttt_freeze_groups(self) -> dict[str, list[str]]:
        return sam2_ttt.freeze_groups(self)

    def ttt_cycle(self, batch: dict, *, backwards: bool = True):
        """tt-MCC / tt-Ent passes; see :mod:`models.sam2.ttt`."""
        return sam2_ttt.cycle(self, batch, backwards=backwards)

    def ttt_single(self, batch: dict) -> torch.Tensor:
        """tt-AE pass on frame 0; see :mod:`models.sam2.ttt`."""
        return sam2_ttt.single(self, batch)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, version={self.version}"


def _check_config(cfg: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(cfg) - set(DEFAULT_CONFIG))
    if unknown:
        raise TypeError(f"unknown SAM 2 option(s) {unknown}; known: {sorted(DEFAULT_CONFIG)}")
    return cfg


def load(name: str = "sam2.1_hiera_t", checkpoint: str | Path | Mapping[str, Any] | None = None, device: Any = None,
         *, image_size: int = 1024, **config: Any) -> SAM2:
    """Build SAM 2 config ``name``, load ``checkpoint`` (the official ``.pt`` file, a ``{"model": sd}``
    dict or a plain state dict) strictly, move to ``device`` (None: CUDA when available), eval mode.

    ``config``: options of :data:`DEFAULT_CONFIG` (``amp``).  ``image_size`` (1024, the size of every
    official config) exists only so that tests can run the same code on small inputs."""
    model = SAM2(name, image_size=image_size, **config)
    if checkpoint is not None:
        source = str(checkpoint) if isinstance(checkpoint, (str, Path)) else f"{name} state dict"
        state = read_state_dict(checkpoint)
        try:
            load_strict(model, state, source)
        except CheckpointError as exc:
            other = "2.0" if model.version == "2.1" else "2.1"
            hint = ""
            if ("no_obj_embed_spatial" in state) != (model.no_obj_embed_spatial is not None):
                hint = f" (this looks like a SAM {other} checkpoint: use the {other} model name)"
            raise CheckpointError(f"{exc}{hint}") from None
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return model.to(torch.device(device)).eval()


#: model name -> loader taking (checkpoint, device, **config)
LOADERS = {name: partial(load, name) for name in MODEL_NAMES}
load_sam2_1_hiera_t = LOADERS["sam2.1_hiera_t"]
load_sam2_1_hiera_s = LOADERS["sam2.1_hiera_s"]
load_sam2_1_hiera_b_plus = LOADERS["sam2.1_hiera_b+"]
load_sam2_1_hiera_l = LOADERS["sam2.1_hiera_l"]
load_sam2_hiera_t = LOADERS["sam2_hiera_t"]
load_sam2_hiera_s = LOADERS["sam2_hiera_s"]
load_sam2_hiera_b_plus = LOADERS["sam2_hiera_b+"]
load_sam2_hiera_l = LOADERS["sam2_hiera_l"]
