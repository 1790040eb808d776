"""STCN (Cheng et al., NeurIPS 2021) with the official weights layout and inference semantics.

``models.load_model("stcn", checkpoint=..., device=...)`` calls :func:`load`.  The returned
network's ``segment(frames, first_mask, top_k=20, mem_every=5, include_last=False)`` reproduces
the official ``eval_davis.py`` probabilities; it also implements the hooks of :mod:`models.ttt`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch

from models.stcn.checkpoint import load_stcn_weights, stcn_state_dict
from models.stcn.network import STCN

__all__ = ["STCN", "load", "stcn_state_dict", "load_stcn_weights"]


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
