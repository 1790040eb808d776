"""Memory parts of SAM 2: the memory encoder (mask + raw features -> 64-channel memory,
``memory_encoder.*``) and the memory attention (4 RoPE transformer layers conditioning the current
frame on the memory bank, ``memory_attention.*``); spec/sam2.md 3.3-3.5."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.sam2.common import LayerNorm2d, apply_rope, axial_rope_table, sine_pe_2d
from models.sam2.heads import Attention

__all__ = ["MemoryEncoder", "MemoryAttention", "RoPEAttention"]


class RoPEAttention(Attention):
    """One-head attention with axial RoPE on queries and the first ``N - num_k_exclude_rope`` keys
    (the key table repeats once per memory frame); angles from a square grid of sqrt(N_q) tokens."""

    def __init__(self, dim: int = 256, kv_in_dim: int | None = None, dropout: float = 0.1, theta: float = 10000.0) -> None:
        super().__init__(dim, 1, 1, kv_in_dim, dropout)
        self.theta = theta
        self._table: torch.Tensor | None = None

    def _rope(self, n: int, device) -> torch.Tensor:
        side = int(round(n ** 0.5))
        if side * side != n:
            raise ValueError(f"RoPE attention assumes a square token grid, got {n} query tokens")
        t = self._table
        if t is None or t.shape[0] != n or t.device != torch.device(device):
            t = self._table = axial_rope_table(self.q_proj.out_features // self.heads, side, side, self.theta, device)
        return t

    def forward(self, q, k, v, num_k_exclude_rope: int = 0):
        q, k, v = self._split(self.q_proj(q)), self._split(self.k_proj(k)), self._split(self.v_proj(v))
        table = self._rope(q.shape[-2], q.device)
        q = apply_rope(q, table)
        n_rope = k.shape[-2] - num_k_exclude_rope
        if num_k_exclude_rope:
            k = torch.cat([apply_rope(k[:, :, :n_rope], table), k[:, :, n_rope:]], dim=2)
        else:
            k = apply_rope(k, table)
        return self._attend(q, k, v)


class MemoryAttentionLayer(nn.Module):
    def __init__(self, dim: int = 256, mem_dim: int = 64, ffn: int = 2048, dropout: float = 0.1) -> None:
        super().__init__()
        self.self_attn = RoPEAttention(dim, dropout=dropout)
        self.cross_attn_image = RoPEAttention(dim, kv_in_dim=mem_dim, dropout=dropout)
        self.linear1 = nn.Linear(dim, ffn)
        self.dropout = nn.Dropout(dropout)
        self.linear2 = nn.Linear(ffn, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)

    def forward(self, x, memory, memory_pos, num_ptr_tokens: int):
        n = self.norm1(x)
        x = x + self.dropout1(self.self_attn(n, n, n))
        n = self.norm2(x)
        x = x + self.dropout2(self.cross_attn_image(n, memory + memory_pos, memory, num_k_exclude_rope=num_ptr_tokens))
        n = self.norm3(x)
        return x + self.dropout3(self.linear2(self.dropout(F.relu(self.linear1(n)))))


class MemoryAttention(nn.Module):
    """(B, N, 256) current tokens + PE, (B, M, 64) memory + PE -> (B, N, 256) conditioned tokens."""

    def __init__(self, dim: int = 256, mem_dim: int = 64, num_layers: int = 4) -> None:
        super().__init__()
        self.layers = nn.ModuleList(MemoryAttentionLayer(dim, mem_dim) for _ in range(num_layers))
        self.norm = nn.LayerNorm(dim)

    def forward(self, x, pos, memory, memory_pos, num_ptr_tokens: int = 0):
        x = x + 0.1 * pos
        for layer in self.layers:
            x = layer(x, memory, memory_pos, num_ptr_tokens)
        return self.norm(x)


class CXBlock(nn.Module):
    """ConvNeXt block: depthwise 7x7, LN2d, pointwise MLP x4 with GELU, layer scale ``gamma``."""

    def __init__(self, dim: int = 256) -> None:
        super().__init__()
        self.gamma = nn.Parameter(1e-6 * torch.ones(dim))
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = LayerNorm2d(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(self.dwconv(x)).permute(0, 2, 3, 1)
        y = self.gamma * self.pwconv2(self.act(self.pwconv1(y)))
        return x + y.permute(0, 3, 1, 2)


class _Fuser(nn.Module):
    def __init__(self, dim: int = 256, num_layers: int = 2) -> None:
        super().__init__()
        self.layers = nn.ModuleList(CXBlock(dim) for _ in range(num_layers))

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


class _MaskDownSampler(nn.Module):
    def __init__(self, dim: int = 256, num_layers: int = 4) -> None:
        super().__init__()
        mods, c_in = [], 1
        for _ in range(num_layers):
            c_out = c_in * 4
            mods += [nn.Conv2d(c_in, c_out, kernel_size=3, stride=2, padding=1), LayerNorm2d(c_out), nn.GELU()]
            c_in = c_out
        mods.append(nn.Conv2d(c_in, dim, kernel_size=1))
        self.encoder = nn.Sequential(*mods)

    def forward(self, x):
        return self.encoder(x)


class MemoryEncoder(nn.Module):
    """raw level-2 features (B, 256, 64, 64) + mask value m (B, 1, 1024, 1024) (already 20*sigmoid-10)
    -> memory features (B, 64, 64, 64) and their 2-D sine PE (64 channels)."""

    def __init__(self, dim: int = 256, out_dim: int = 64) -> None:
        super().__init__()
        self.mask_downsampler = _MaskDownSampler(dim)
        self.pix_feat_proj = nn.Conv2d(dim, dim, kernel_size=1)
        self.fuser = _Fuser(dim)
        self.out_proj = nn.Conv2d(dim, out_dim, kernel_size=1)

    def forward(self, pix_feat: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pix_feat_proj(pix_feat) + self.mask_downsampler(mask)
        x = self.out_proj(self.fuser(x))
        pos = sine_pe_2d(x.shape[1], x.shape[-2], x.shape[-1], device=x.device).to(x.dtype)
        return x, pos[None].expand(x.shape[0], -1, -1, -1)
