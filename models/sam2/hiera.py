"""The image encoder: Hiera trunk (multi-scale windowed attention, ``image_encoder.trunk.*``) and
the FPN neck (``image_encoder.neck.*``), with the official state-dict names.

Tokens are channel-last (B, H, W, C) inside the trunk; the stage outputs and the neck are
channel-first.  See spec/sam2.md section 3.1-3.2 for the block layout this implements.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.sam2.common import MLP, sine_pe_2d

__all__ = ["Hiera", "FpnNeck", "ImageEncoder", "block_layout"]


def _pool(x: torch.Tensor) -> torch.Tensor:
    """2x2 max pooling of channel-last (B, H, W, C)."""
    return F.max_pool2d(x.permute(0, 3, 1, 2), kernel_size=2, stride=2).permute(0, 2, 3, 1)


def _partition(x: torch.Tensor, w: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """(B, H, W, C) -> (B * nWin, w, w, C), zero-padding bottom/right to multiples of w."""
    b, h, ww, c = x.shape
    ph, pw = (w - h % w) % w, (w - ww % w) % w
    if ph or pw:
        x = F.pad(x, (0, 0, 0, pw, 0, ph))
    hp, wp = h + ph, ww + pw
    x = x.view(b, hp // w, w, wp // w, w, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, w, w, c), (hp, wp)


def _unpartition(win: torch.Tensor, w: int, padded: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
    hp, wp = padded
    b = win.shape[0] // (hp * wp // w // w)
    x = win.reshape(b, hp // w, wp // w, w, w, -1).permute(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, -1)
    return x[:, : size[0], : size[1]]


class MultiScaleAttention(nn.Module):
    def __init__(self, dim: int, dim_out: int, heads: int, pool_q: bool) -> None:
        super().__init__()
        self.heads, self.pool_q = heads, pool_q
        self.qkv = nn.Linear(dim, dim_out * 3)
        self.proj = nn.Linear(dim_out, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, _ = x.shape
        q, k, v = self.qkv(x).reshape(b, h * w, 3, self.heads, -1).unbind(2)
        if self.pool_q:
            q = _pool(q.reshape(b, h, w, -1))
            h, w = q.shape[1:3]
            q = q.reshape(b, h * w, self.heads, -1)
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return self.proj(out.transpose(1, 2).reshape(b, h, w, -1))


class MultiScaleBlock(nn.Module):
    def __init__(self, dim: int, dim_out: int, heads: int, window: int, pool_q: bool) -> None:
        super().__init__()
        self.dim, self.dim_out, self.window, self.pool_q = dim, dim_out, window, pool_q
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = MultiScaleAttention(dim, dim_out, heads, pool_q)
        self.norm2 = nn.LayerNorm(dim_out, eps=1e-6)
        self.mlp = MLP(dim_out, 4 * dim_out, dim_out, 2, act=nn.GELU)
        if dim != dim_out:
            self.proj = nn.Linear(dim, dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.norm1(x)
        if self.dim != self.dim_out:
            shortcut = self.proj(x)
            if self.pool_q:
                shortcut = _pool(shortcut)
        w = self.window
        if w > 0:
            size = x.shape[1:3]
            x, padded = _partition(x, w)
        x = self.attn(x)
        if w > 0:
            if self.pool_q:
                w = w // 2
                size = shortcut.shape[1:3]
                padded = (size[0] + (w - size[0] % w) % w, size[1] + (w - size[1] % w) % w)
            x = _unpartition(x, w, padded, size)
        x = shortcut + x
        return x + self.mlp(self.norm2(x))


def block_layout(embed_dim: int, num_heads: int, stages: list[int], global_att_blocks: list[int],
                 window_spec: list[int]) -> list[dict]:
    """Per block: dim, dim_out, heads, window (0 = global), pool_q -- the official construction rule."""
    ends = [sum(stages[:i]) - 1 for i in range(1, len(stages) + 1)]
    pool_blocks = [e + 1 for e in ends[:-1]]
    out, stage, dim, heads = [], 1, embed_dim, num_heads
    for i in range(sum(stages)):
        window = window_spec[stage - 1]
        if i in global_att_blocks:
            window = 0
        dim_out = dim
        if i - 1 in ends:
            dim_out, heads, stage = 2 * dim, 2 * heads, stage + 1
        out.append({"dim": dim, "dim_out": dim_out, "heads": heads, "window": window, "pool_q": i in pool_blocks})
        dim = dim_out
    return out


class PatchEmbed(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=7, stride=4, padding=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).permute(0, 2, 3, 1)


class Hiera(nn.Module):
    """Hiera trunk: returns the four stage outputs (B, C_i, H_i, W_i), stride 4 first."""

    def __init__(self, embed_dim: int, num_heads: int, stages: list[int], global_att_blocks: list[int],
                 window_spec: list[int], window_pos_embed_bkg_spatial_size: list[int]) -> None:
        super().__init__()
        p = window_pos_embed_bkg_spatial_size
        self.pos_embed = nn.Parameter(torch.zeros(1, embed_dim, p[0], p[1]))
        self.pos_embed_window = nn.Parameter(torch.zeros(1, embed_dim, window_spec[0], window_spec[0]))
        self.patch_embed = PatchEmbed(embed_dim)
        layout = block_layout(embed_dim, num_heads, stages, global_att_blocks, window_spec)
        self.blocks = nn.ModuleList(MultiScaleBlock(**b) for b in layout)
        self.stage_ends = [sum(stages[:i]) - 1 for i in range(1, len(stages) + 1)]
        self.channels = [layout[e]["dim_out"] for e in self.stage_ends]

    def _pos(self, h: int, w: int) -> torch.Tensor:
        pos = F.interpolate(self.pos_embed, size=(h, w), mode="bicubic")
        win = self.pos_embed_window
        pos = pos + win.tile([a // b for a, b in zip(pos.shape, win.shape)])
        return pos.permute(0, 2, 3, 1)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.patch_embed(x)
        x = x + self._pos(*x.shape[1:3])
        outs = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self.stage_ends:
                outs.append(x.permute(0, 3, 1, 2))
        return outs


class _Lateral(nn.Module):
    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(d_in, d_out, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class FpnNeck(nn.Module):
    """1x1 laterals to 256 channels (``convs.0`` = stride 32), top-down sum into the stride-16 level
    only; returns the features and their 2-D sine encodings, stride 4 first."""

    def __init__(self, backbone_channel_list: list[int], d_model: int = 256, top_down_levels=(2, 3)) -> None:
        super().__init__()
        self.d_model = d_model
        self.convs = nn.ModuleList(_Lateral(c, d_model) for c in backbone_channel_list)
        self.top_down_levels = tuple(top_down_levels)

    def forward(self, xs: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        n = len(self.convs) - 1
        out: list = [None] * (n + 1)
        pos: list = [None] * (n + 1)
        prev = None
        for i in range(n, -1, -1):
            lateral = self.convs[n - i](xs[i])
            if i in self.top_down_levels and prev is not None:
                prev = lateral + F.interpolate(prev.to(torch.float32), scale_factor=2.0, mode="nearest")
            else:
                prev = lateral
            out[i] = prev
            pe = sine_pe_2d(self.d_model, prev.shape[-2], prev.shape[-1], device=prev.device)
            pos[i] = pe[None].expand(prev.shape[0], -1, -1, -1).to(prev.dtype)
        return out, pos


class ImageEncoder(nn.Module):
    """Trunk + neck; drops the stride-32 level (``scalp`` 1): returns levels 0-2 and their PEs."""

    def __init__(self, trunk: dict, neck: dict) -> None:
        super().__init__()
        self.trunk = Hiera(**trunk)
        self.neck = FpnNeck(**neck)
        if list(self.trunk.channels[::-1]) != list(self.neck.convs[i].conv.in_channels for i in range(len(self.neck.convs))):
            raise ValueError(f"neck input widths {neck} do not match the trunk's stage widths {self.trunk.channels}")

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        feats, pos = self.neck(self.trunk(x))
        return feats[:-1], pos[:-1]
