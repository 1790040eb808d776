"""Loading the released STCN checkpoints strictly.

Handles the three layouts found in the official releases: a plain state dict (``stcn.pth``,
``stcn_s01.pth``, ``stcn_s0.pth``), a resume file that wraps it under ``network``
(``*_checkpoint.pth``), and the stage-0 single-object value encoder whose first conv has 4 input
channels: like both official inference loaders we append a zero 5th channel (the "others" mask),
so that input is ignored.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from models.checkpoint import CheckpointError, load_strict, read_state_dict

__all__ = ["stcn_state_dict", "load_stcn_weights"]

_STEM = "value_encoder.conv1.weight"


def stcn_state_dict(checkpoint: str | Path | Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Read a checkpoint (path or dict) and apply the stage-0 4 -> 5 channel fix."""
    state = read_state_dict(checkpoint)
    stem = state.get(_STEM)
    if stem is not None and stem.dim() == 4 and stem.shape[1] == 4:
        pad = torch.zeros(stem.shape[0], 1, *stem.shape[2:], dtype=stem.dtype)
        state[_STEM] = torch.cat([stem, pad], 1)
    return state


def load_stcn_weights(model: nn.Module, checkpoint: str | Path | Mapping[str, Any]) -> nn.Module:
    """Load ``checkpoint`` into ``model`` strictly; errors name missing/unexpected/mis-shaped keys."""
    source = str(checkpoint) if isinstance(checkpoint, (str, Path)) else "STCN state dict"
    state = stcn_state_dict(checkpoint)
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(f"{source}: non-finite values in {', '.join(bad[:5])}")
    return load_strict(model, state, source)
