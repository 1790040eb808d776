"""The user-facing STCN model: network + options + ``segment`` (:mod:`models.base`), and the checkpoint loader.

``models.load_model("stcn", checkpoint=..., device=...)`` lands in :func:`load` (:mod:`models.registry`).
``segment`` reproduces the official ``eval_davis.py`` probabilities (the official script's final bilinear
resize is an identity here because the output has the input's size).  Objects given on later frames join
the memory there as in the official YouTube-VOS script (:mod:`models.stcn.later`).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar, Mapping

import numpy as np
import torch

from models.base import TTTHooks, VOSModel, option_defaults
from models.inputs import given_masks, object_first_frames
from models.padding import pad_divide_by, unpad
from models.stcn import ttt as stcn_ttt
from models.stcn.checkpoint import load_stcn_weights
from models.stcn.inference import labels_to_onehot
from models.stcn.later import propagate_given
from models.stcn.network import STCNNet

__all__ = ["STCN", "STCNOptions", "DEFAULT_CONFIG", "load"]


@dataclasses.dataclass(frozen=True)
class STCNOptions:
    """The official ``eval_davis.py`` settings: top-k matching, a memory frame every ``mem_every`` frames,
    ``include_last`` the previous frame as temporary memory (off in the official DAVIS evaluation)."""

    top_k: int = 20
    mem_every: int = 5
    include_last: bool = False


#: the options' defaults as a dict
DEFAULT_CONFIG: dict[str, Any] = option_defaults(STCNOptions)


class STCN(STCNNet, VOSModel, TTTHooks):
    """STCN with its options; ``segment`` is the toolkit-wide VOS interface."""

    family: ClassVar[str] = "STCN"
    Options: ClassVar[type] = STCNOptions
    ttt_module = stcn_ttt

    def __init__(self, amp: bool = False, **config: Any) -> None:
        super().__init__(amp=amp)
        self._init_options(config)

    def _segment(self, frames: np.ndarray, masks, cfg: dict[str, Any], *, progress: bool) -> np.ndarray:
        from tqdm import tqdm

        frames = np.asarray(frames)
        if isinstance(masks, dict) or hasattr(masks, "items"):
            given = given_masks(frames, masks)
            if list(given) != [0]:
                return self._segment_given(frames, given, **cfg)
            masks = given[0]
        onehot, _ = labels_to_onehot(masks)
        images = self.frame_source(frames)
        out = torch.empty((onehot.shape[0] + 1, frames.shape[0], *frames.shape[1:3]), dtype=torch.float32)
        with tqdm(total=frames.shape[0], desc="stcn", unit="frame", disable=not progress, leave=False) as bar:
            for t, prob in self.iter_probabilities(images, onehot, **cfg):
                out[:, t] = prob.float().cpu()
                bar.update(1)
        return out.numpy()

    def _segment_given(self, frames: np.ndarray, given: dict, **kw) -> np.ndarray:
        labels = sorted(object_first_frames(given))
        padded = self.frame_source(frames)
        pad = padded.pad
        onehots = {}
        for t, m in given.items():
            m = torch.from_numpy(np.array(m))
            onehot = torch.stack([(m == label) for label in labels]).to(device=padded.device, dtype=padded.dtype)
            objs = [i for i, label in enumerate(labels) if bool((m == label).any())]
            onehots[t] = (pad_divide_by(onehot, 16)[0], objs)
        out = torch.empty((len(labels) + 1, frames.shape[0], *frames.shape[1:3]), dtype=torch.float32)
        with torch.inference_mode(), self._autocast():
            for t, prob in propagate_given(self, padded, onehots, len(labels), **kw):
                out[:, t] = unpad(prob, pad).float().cpu()
        return out.numpy()


def load(checkpoint: str | Path | Mapping[str, Any] | None = None, device: Any = None, *,
         amp: bool = False, dtype: torch.dtype | None = None) -> STCN:
    """Build STCN in eval mode, load ``checkpoint`` strictly (None: untrained weights), move to ``device``.

    ``device`` None picks CUDA when available.  ``amp=True`` uses float16 autocast on CUDA
    (off by default: exact numbers).  ``dtype=torch.float64`` gives a float64 network.
    """
    model = STCN(amp=amp)
    if checkpoint is not None:
        load_stcn_weights(model, checkpoint)
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model = model.to(device=torch.device(device), dtype=dtype)
    return model.eval()
