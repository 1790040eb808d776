"""The user-facing SAM 2 model: network + VOS settings + ``segment``, the TTT hooks, and the loaders.

``models.load_model("sam2.1_hiera_t", checkpoint="sam2.1_hiera_tiny.pt")`` lands in :func:`load`.
The official checkpoint is a dict whose ``model`` entry is the plain state dict of ``SAM2Base``;
it is read with ``torch.load(weights_only=True)`` and loaded strictly.
"""
from __future__ import annotations

import dataclasses
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, Mapping

import numpy as np
import torch

from models.base import TTTHooks, VOSModel, option_defaults
from models.checkpoint import CheckpointError, load_strict, read_state_dict
from models.sam2 import ttt as sam2_ttt
from models.sam2.config import MODEL_NAMES, load_config
from models.sam2.golden import golden_state_dict_v2
from models.sam2.inference import segment_video
from models.sam2.network import SAM2Net

__all__ = ["SAM2", "SAM2Options", "DEFAULT_CONFIG", "load", "LOADERS"]


@dataclasses.dataclass(frozen=True)
class SAM2Options:
    """``amp``: bfloat16 autocast on CUDA (the official script's precision); off = float32 everywhere."""

    amp: bool = False


#: the options' defaults as a dict
DEFAULT_CONFIG: dict[str, Any] = option_defaults(SAM2Options)


class SAM2(SAM2Net, VOSModel, TTTHooks):
    """SAM 2 / 2.1 for semi-supervised VOS (the official ``tools/vos_inference.py`` procedure).

    ``segment(frames, masks)`` -> float32 (K+1, T, H, W): softmax over [0, l_1 .. l_K] of the
    per-object logits at video resolution, so its argmax is the official label map.  Objects are
    tracked independently and start on the frame where their mask is given.

    Test-time training (``models.ttt.adapt``) uses the hooks of :mod:`models.sam2.ttt` (our reading: no
    reference exists).
    """

    family: ClassVar[str] = "SAM 2"
    Options: ClassVar[type] = SAM2Options
    ttt_module = sam2_ttt

    def __init__(self, name: str = "sam2.1_hiera_t", *, image_size: int = 1024, **config: Any) -> None:
        cfg = load_config(name)
        super().__init__(cfg["trunk"], cfg["neck"], cfg["version"], image_size)
        self.name = str(name)
        self._init_options(config)

    def _segment(self, frames: np.ndarray, masks, cfg: dict[str, Any], *, progress: bool) -> np.ndarray:
        with torch.no_grad():
            return segment_video(self, frames, masks, amp=cfg["amp"], progress=progress)

    def golden_state_dict(self, seed: int = 0, s: float = 1.0, **kw: float) -> dict[str, torch.Tensor]:
        """Golden init v2 (the SAM 2 goldens' recipe); used by ``models.golden_init`` / ``--random-init``."""
        return golden_state_dict_v2(self.state_dict(), seed=seed, s=s, **kw)

    def extra_repr(self) -> str:
        return f"name={self.name!r}, version={self.version}"


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
