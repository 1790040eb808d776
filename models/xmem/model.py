"""The user-facing XMem model: network + eval config + ``segment``, and the checkpoint loader.

``models.load_model("xmem", checkpoint, device, **config)`` lands in :func:`load` (:mod:`models.registry`).  The key, value
and hidden dimensions are read from the checkpoint exactly as the official ``XMem`` constructor
does, so ``XMem.pth``, ``XMem-s012.pth``, ``XMem-s2.pth`` and the no-sensory variant all load.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar, Mapping, Optional

import numpy as np
import torch

from models.base import TTTHooks, VOSModel, option_defaults
from models.checkpoint import CheckpointError, load_strict, read_state_dict
from models.inputs import given_masks
from models.xmem import ttt as xmem_ttt
from models.xmem.inference import segment_video
from models.xmem.later import segment_given
from models.xmem.network import XMemNet

__all__ = ["XMem", "XMemOptions", "DEFAULT_CONFIG", "dims_from_state_dict", "load"]


@dataclasses.dataclass(frozen=True)
class XMemOptions:
    """Official eval.py defaults (``size``: -1 = native resolution; eval.py's default 480 resizes the
    shorter side to 480, an identity for DAVIS 480p frames; ``enable_long_term_count_usage=None`` =
    eval.py's per-video rule)."""

    top_k: int = 30
    mem_every: int = 5
    deep_update_every: int = -1
    enable_long_term: bool = True
    enable_long_term_count_usage: Optional[bool] = None
    min_mid_term_frames: int = 5
    max_mid_term_frames: int = 10
    num_prototypes: int = 128
    max_long_term_elements: int = 10000
    size: int = -1


#: the options' defaults as a dict
DEFAULT_CONFIG: dict[str, Any] = option_defaults(XMemOptions)
_DIM_KEYS = ("key_dim", "value_dim", "hidden_dim")


class XMem(XMemNet, VOSModel, TTTHooks):
    """XMem with its inference settings; ``segment`` is the toolkit-wide VOS interface (:mod:`models.base`).

    Objects given on later frames are added as the official eval.py does (:mod:`models.xmem.later`).
    """

    family: ClassVar[str] = "XMem"
    Options: ClassVar[type] = XMemOptions
    ttt_module = xmem_ttt

    def __init__(self, key_dim: int = 64, value_dim: int = 512, hidden_dim: int = 64, **config: Any) -> None:
        super().__init__(key_dim, value_dim, hidden_dim)
        self._init_options(config)

    def _segment(self, frames: np.ndarray, masks, cfg: dict[str, Any], *, progress: bool) -> np.ndarray:
        if isinstance(masks, dict) or hasattr(masks, "items"):
            given = given_masks(frames, masks)
            if list(given) != [0]:
                return segment_given(self, np.asarray(frames), given, cfg)
            masks = given[0]
        return segment_video(self, frames, masks, cfg, progress=progress)

    def extra_repr(self) -> str:
        return f"key_dim={self.key_dim}, value_dim={self.value_dim}, hidden_dim={self.hidden_dim}"


def dims_from_state_dict(state: Mapping[str, torch.Tensor], source: str = "checkpoint") -> dict[str, int]:
    """key/value/hidden dims the way the official code infers them (hidden 0 if no hidden update)."""
    try:
        key_dim = int(state["key_proj.key_proj.weight"].shape[0])
        value_dim = int(state["value_encoder.fuser.block2.conv2.weight"].shape[0])
    except KeyError as exc:
        raise CheckpointError(f"{source} is not an XMem checkpoint: missing {exc.args[0]!r}") from None
    transform = state.get("decoder.hidden_update.transform.weight")
    hidden_dim = 0 if transform is None else int(transform.shape[0]) // 3
    return {"key_dim": key_dim, "value_dim": value_dim, "hidden_dim": hidden_dim}


def _single_to_multi_object(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # single-object checkpoints lack the "others" input channel; eval appends it as zeros
    w = state.get("value_encoder.conv1.weight")
    if w is not None and w.dim() == 4 and w.shape[1] == 4:
        state = dict(state)
        state["value_encoder.conv1.weight"] = torch.cat([w, w.new_zeros(w.shape[0], 1, *w.shape[2:])], 1)
    return state


def load(checkpoint: str | Path | Mapping[str, Any] | None = None, device: Any = None, **config: Any) -> XMem:
    """Build XMem, load ``checkpoint`` (path or state dict) strictly, move to ``device`` (None: CUDA
    when available), eval mode.

    ``config`` holds eval options (see :data:`DEFAULT_CONFIG`) and, without a checkpoint, the
    dims ``key_dim``/``value_dim``/``hidden_dim`` (64/512/64).  With a checkpoint the dims come
    from its tensors; an explicitly given dim that disagrees is an error.
    """
    dims = {k: config.pop(k) for k in _DIM_KEYS if k in config}
    state = None
    if checkpoint is not None:
        source = str(checkpoint) if isinstance(checkpoint, (str, Path)) else "XMem state dict"
        state = _single_to_multi_object(read_state_dict(checkpoint))
        found = dims_from_state_dict(state, source)
        clash = {k: (v, found[k]) for k, v in dims.items() if v != found[k]}
        if clash:
            raise CheckpointError(f"{source}: requested dims disagree with the checkpoint "
                                  + ", ".join(f"{k}={a} vs {b}" for k, (a, b) in clash.items()))
        dims = found
    model = XMem(**{"key_dim": 64, "value_dim": 512, "hidden_dim": 64, **dims}, **config)
    if state is not None:
        load_strict(model, state, source)
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return model.to(torch.device(device)).eval()
