"""Zero padding of frames and masks to multiples of 16, and its inverse, as the official STCN, XMem and
Cutie code pad: the excess split floor/ceil (the floor half before).  One rule for every backbone."""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["pad_amounts", "pad_divide_by", "pad16", "unpad"]


def pad_amounts(height: int, width: int, d: int = 16) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) zeros that bring (height, width) up to multiples of ``d``."""
    dh, dw = -height % d, -width % d
    return dw // 2, dw - dw // 2, dh // 2, dh - dh // 2


def pad_divide_by(x: torch.Tensor, d: int = 16) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """Zero-pad the last two dims up to multiples of ``d``; returns (padded, (left, right, top, bottom)).
    Already a multiple: ``x`` itself."""
    pad = pad_amounts(*x.shape[-2:], d)
    return (F.pad(x, pad) if any(pad) else x), pad


def pad16(x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """:func:`pad_divide_by` with ``d = 16``."""
    return pad_divide_by(x, 16)


def unpad(x: torch.Tensor, pad: tuple[int, int, int, int]) -> torch.Tensor:
    """Undo :func:`pad_divide_by` (a view)."""
    left, right, top, bottom = pad
    return x[..., top:x.shape[-2] - bottom, left:x.shape[-1] - right]
