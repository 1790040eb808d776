"""Soft aggregation (STM's merge of per-object probabilities): the one copy STCN, XMem and Cutie use."""
from __future__ import annotations

import torch

__all__ = ["aggregate"]


def aggregate(prob: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Per-object probabilities -> log-odds of [background, objects] along ``dim``.

    Background is prod(1 - p); every channel is clamped to [1e-7, 1 - 1e-7] and mapped to log(p / (1 - p)).
    ``softmax(result, dim)`` gives the aggregated probabilities.  The float32 sequence is the official one,
    so saturated sigmoids tie exactly as there.
    """
    bg = torch.prod(1 - prob, dim=dim, keepdim=True)
    q = torch.cat([bg, prob], dim).clamp(1e-7, 1 - 1e-7)
    return torch.log(q / (1 - q))
