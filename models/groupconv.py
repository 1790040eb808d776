"""Group tensors (batch, objects, channels, h, w) and the layers XMem and Cutie share on them: a conv applied
to every object with the same weights, and the GRU-like sensory-memory cell with its two update modules."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["fold", "unfold", "GConv2D", "gated_update", "GatedUpdate", "MultiScaleGatedUpdate", "avg_pool",
           "area_resample"]


def fold(g: torch.Tensor) -> torch.Tensor:
    """(B, N, ...) -> (B * N, ...)."""
    return g.flatten(0, 1)


def unfold(x: torch.Tensor, batch: int, objects: int) -> torch.Tensor:
    """(B * N, ...) -> (B, N, ...)."""
    return x.view(batch, objects, *x.shape[1:])


class GConv2D(nn.Conv2d):
    """A conv applied to every object of a group tensor (same weights for all objects)."""

    def forward(self, g: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return unfold(super().forward(fold(g)), g.shape[0], g.shape[1])


def gated_update(transform: nn.Module, g: torch.Tensor, h: torch.Tensor, hidden_dim: int) -> torch.Tensor:
    """XMem's GRU-like cell: new h = f*h*(1-u) + u*tanh(c) from one 3x3 conv on [g, h]."""
    d = hidden_dim
    v = transform(torch.cat([g, h], 2))
    forget, update = torch.sigmoid(v[:, :, :d]), torch.sigmoid(v[:, :, d:2 * d])
    return forget * h * (1 - update) + update * torch.tanh(v[:, :, 2 * d:])


class GatedUpdate(nn.Module):
    """Value/mask-encoder side ("deep") update of the sensory memory: one 3x3 conv on [value, h] and the cell
    (XMem's ``hidden_reinforce``, Cutie's mask-encoder ``sensory_update``)."""

    def __init__(self, g_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.hidden_dim = hidden_dim
        self.transform = GConv2D(g_dim + hidden_dim, hidden_dim * 3, 3, padding=1)

    def forward(self, g: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return gated_update(self.transform, g, h, self.hidden_dim)


def avg_pool(g: torch.Tensor, factor: int) -> torch.Tensor:
    """Group tensor shrunk by ``factor`` with an average pool (XMem's "area" resize on exact multiples)."""
    return unfold(F.avg_pool2d(fold(g), factor), g.shape[0], g.shape[1])


def area_resample(g: torch.Tensor, factor: int) -> torch.Tensor:
    """Group tensor shrunk by ``factor`` with ``interpolate(mode="area")`` (Cutie's official arithmetic)."""
    return unfold(F.interpolate(fold(g), scale_factor=1 / factor, mode="area"), g.shape[0], g.shape[1])


class MultiScaleGatedUpdate(nn.Module):
    """Decoder-side update: the stride-16/8/4 features squeezed to ``mid_dim`` at stride 16, then the cell
    (XMem's ``hidden_update`` with ``shrink=avg_pool``, Cutie's decoder ``sensory_update`` with
    ``shrink=area_resample``)."""

    def __init__(self, g_dims: tuple[int, int, int], mid_dim: int, hidden_dim: int,
                 shrink: Callable[[torch.Tensor, int], torch.Tensor] = avg_pool) -> None:
        super().__init__()
        self.hidden_dim = hidden_dim
        self.shrink = shrink
        self.g16_conv = GConv2D(g_dims[0], mid_dim, 1)
        self.g8_conv = GConv2D(g_dims[1], mid_dim, 1)
        self.g4_conv = GConv2D(g_dims[2], mid_dim, 1)
        self.transform = GConv2D(mid_dim + hidden_dim, hidden_dim * 3, 3, padding=1)

    def forward(self, g16: torch.Tensor, g8: torch.Tensor, g4: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        g = self.g16_conv(g16) + self.g8_conv(self.shrink(g8, 2)) + self.g4_conv(self.shrink(g4, 4))
        return gated_update(self.transform, g, h, self.hidden_dim)
