"""Small building blocks shared by the SAM 2 parts: channel-first LayerNorm, the plain MLP and the
fixed (weight-free) positional encodings: 2-D sine, 1-D sine and the axial RoPE angle table."""
from __future__ import annotations

import functools
import math

import torch
from torch import nn

__all__ = ["LayerNorm2d", "MLP", "sine_pe_2d", "sine_pe_1d", "axial_rope_table", "apply_rope"]


class LayerNorm2d(nn.Module):
    """LayerNorm over the channel axis of (B, C, H, W): biased variance, eps inside the root."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class MLP(nn.Module):
    """``layers.0 .. layers.{n-1}`` Linear layers with an activation between them (not after the last)."""

    def __init__(self, d_in: int, d_hidden: int, d_out: int, num_layers: int, act: type[nn.Module] = nn.ReLU,
                 sigmoid_output: bool = False) -> None:
        super().__init__()
        dims = [d_in] + [d_hidden] * (num_layers - 1) + [d_out]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.act = act()
        self.sigmoid_output = sigmoid_output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < last:
                x = self.act(x)
        return torch.sigmoid(x) if self.sigmoid_output else x


def sine_pe_2d(channels: int, h: int, w: int, device=None) -> torch.Tensor:
    """DETR-style normalised 2-D sine encoding (channels, h, w), float32: [y half, x half], each half
    alternating sin (even index) / cos (odd index).

    A pure function of its arguments, so it is computed once per (channels, h, w, device) and the same
    tensor is returned after that (the neck asks for a 256 x 256 x 256 one every frame: about 0.1 s of a
    1-thread CPU frame).  Callers must not modify it in place.  It is made outside inference mode and
    without autograd history, so test-time training may use it after an inference pass."""
    return _sine_pe_2d_cached(int(channels), int(h), int(w), str(torch.device(device if device is not None else "cpu")))


@functools.lru_cache(maxsize=32)
def _sine_pe_2d_cached(channels: int, h: int, w: int, device: str) -> torch.Tensor:
    with torch.inference_mode(False), torch.no_grad():
        return _sine_pe_2d(channels, h, w, torch.device(device))


def _sine_pe_2d(channels: int, h: int, w: int, device) -> torch.Tensor:
    f = channels // 2
    y = torch.arange(1, h + 1, dtype=torch.float32, device=device).view(h, 1).expand(h, w)
    x = torch.arange(1, w + 1, dtype=torch.float32, device=device).view(1, w).expand(h, w)
    eps, scale = 1e-6, 2 * math.pi
    y = y / (y[-1:, :] + eps) * scale
    x = x / (x[:, -1:] + eps) * scale
    dim_t = torch.arange(f, dtype=torch.float32, device=device)
    dim_t = 10000 ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / f)
    px = x[..., None] / dim_t
    py = y[..., None] / dim_t
    px = torch.stack((px[..., 0::2].sin(), px[..., 1::2].cos()), dim=3).flatten(2)
    py = torch.stack((py[..., 0::2].sin(), py[..., 1::2].cos()), dim=3).flatten(2)
    return torch.cat((py, px), dim=2).permute(2, 0, 1).contiguous()


def sine_pe_1d(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """(N,) float positions -> (N, dim): [sin of all frequencies, cos of all frequencies]."""
    half = dim // 2
    dim_t = torch.arange(half, dtype=torch.float32, device=positions.device)
    dim_t = 10000 ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / half)
    p = positions[:, None] / dim_t
    return torch.cat([p.sin(), p.cos()], dim=-1)


def axial_rope_table(dim: int, end_x: int, end_y: int, theta: float = 10000.0, device=None) -> torch.Tensor:
    """complex64 (end_x * end_y, dim // 2): first dim//4 pairs rotate with x = n mod end_x, the rest with
    y = n // end_x (token n of a row-major grid)."""
    freqs = 1.0 / (theta ** (torch.arange(0, dim, 4, device=device)[: dim // 4].float() / dim))
    t = torch.arange(end_x * end_y, dtype=torch.float32, device=device)
    tx = t % end_x
    ty = torch.div(t, end_x, rounding_mode="floor")
    ax = torch.outer(tx, freqs)
    ay = torch.outer(ty, freqs)
    return torch.cat([torch.polar(torch.ones_like(ax), ax), torch.polar(torch.ones_like(ay), ay)], dim=-1)


def apply_rope(x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Rotate channel pairs of x (B, heads, N, D) by ``table`` (n, D/2); N a multiple of n (repeated).
    Computed in complex64 as the official code does, result cast back to x's dtype."""
    n = x.shape[-2]
    if n == 0:
        return x
    xc = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
    rep = n // table.shape[0]
    if rep * table.shape[0] != n:
        raise ValueError(f"RoPE: {n} tokens are not a multiple of the {table.shape[0]}-token grid")
    if rep > 1:
        table = table.repeat(rep, 1)
    return torch.view_as_real(xc * table).flatten(3).type_as(x)
