"""The SAM heads: prompt encoder (``sam_prompt_encoder.*``) and mask decoder with its two-way
transformer (``sam_mask_decoder.*``), as used by video tracking (spec/sam2.md 3.6-3.7)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from models.sam2.common import MLP, LayerNorm2d

__all__ = ["PromptEncoder", "MaskDecoder", "TwoWayTransformer", "Attention"]


class RandomFourierPE(nn.Module):
    """Dense image PE from a fixed random (2, d/2) matrix (a buffer of the checkpoint)."""

    def __init__(self, num_feats: int = 128) -> None:
        super().__init__()
        self.register_buffer("positional_encoding_gaussian_matrix", torch.randn(2, num_feats))

    def encode(self, coords: torch.Tensor) -> torch.Tensor:
        coords = (2 * coords - 1) @ self.positional_encoding_gaussian_matrix
        coords = 2 * math.pi * coords
        return torch.cat([coords.sin(), coords.cos()], dim=-1)

    def grid(self, h: int, w: int) -> torch.Tensor:
        g = self.positional_encoding_gaussian_matrix
        ones = torch.ones((h, w), device=g.device, dtype=g.dtype)
        y = (ones.cumsum(0) - 0.5) / h
        x = (ones.cumsum(1) - 0.5) / w
        return self.encode(torch.stack([x, y], dim=-1)).permute(2, 0, 1)


class PromptEncoder(nn.Module):
    """Only the parts VOS uses are exercised: 'no point' tokens, the mask prompt, 'no mask'."""

    def __init__(self, embed_dim: int = 256, image_embedding_size: int = 64, mask_in_chans: int = 16) -> None:
        super().__init__()
        self.embed_dim, self.grid_size = embed_dim, image_embedding_size
        self.pe_layer = RandomFourierPE(embed_dim // 2)
        self.point_embeddings = nn.ModuleList(nn.Embedding(1, embed_dim) for _ in range(4))
        self.not_a_point_embed = nn.Embedding(1, embed_dim)
        self.mask_downscaling = nn.Sequential(
            nn.Conv2d(1, mask_in_chans // 4, kernel_size=2, stride=2), LayerNorm2d(mask_in_chans // 4), nn.GELU(),
            nn.Conv2d(mask_in_chans // 4, mask_in_chans, kernel_size=2, stride=2), LayerNorm2d(mask_in_chans),
            nn.GELU(), nn.Conv2d(mask_in_chans, embed_dim, kernel_size=1))
        self.no_mask_embed = nn.Embedding(1, embed_dim)

    def dense_pe(self) -> torch.Tensor:
        return self.pe_layer.grid(self.grid_size, self.grid_size)[None]

    def forward(self, batch: int, masks: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Sparse tokens for 'no click' (one label -1 point + the padding point: both are exactly
        ``not_a_point_embed``) and the dense prompt (mask prompt (B, 1, 256, 256) or ``no_mask_embed``)."""
        sparse = self.not_a_point_embed.weight[None].expand(batch, 2, -1)
        if masks is not None:
            dense = self.mask_downscaling(masks)
        else:
            dense = self.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(batch, -1, self.grid_size, self.grid_size)
        return sparse, dense


class Attention(nn.Module):
    """Multi-head attention with an optional down-projection (``downsample_rate``) and key/value width."""

    def __init__(self, dim: int, heads: int, downsample_rate: int = 1, kv_in_dim: int | None = None,
                 dropout: float = 0.0) -> None:
        super().__init__()
        kv = dim if kv_in_dim is None else kv_in_dim
        inner = dim // downsample_rate
        self.heads, self.dropout_p = heads, dropout
        self.q_proj = nn.Linear(dim, inner)
        self.k_proj = nn.Linear(kv, inner)
        self.v_proj = nn.Linear(kv, inner)
        self.out_proj = nn.Linear(inner, dim)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        return x.reshape(b, n, self.heads, c // self.heads).transpose(1, 2)

    def _attend(self, q, k, v):
        p = self.dropout_p if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
        b, h, n, d = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(b, n, h * d))

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return self._attend(self._split(self.q_proj(q)), self._split(self.k_proj(k)), self._split(self.v_proj(v)))


class TwoWayBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_dim: int, skip_first_pe: bool) -> None:
        super().__init__()
        self.self_attn = Attention(dim, heads)
        self.norm1 = nn.LayerNorm(dim)
        self.cross_attn_token_to_image = Attention(dim, heads, downsample_rate=2)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, mlp_dim, dim, 2, act=nn.ReLU)
        self.norm3 = nn.LayerNorm(dim)
        self.norm4 = nn.LayerNorm(dim)
        self.cross_attn_image_to_token = Attention(dim, heads, downsample_rate=2)
        self.skip_first_pe = skip_first_pe

    def forward(self, queries, keys, query_pe, key_pe):
        if self.skip_first_pe:
            queries = self.self_attn(queries, queries, queries)
        else:
            q = queries + query_pe
            queries = queries + self.self_attn(q, q, queries)
        queries = self.norm1(queries)
        q, k = queries + query_pe, keys + key_pe
        queries = self.norm2(queries + self.cross_attn_token_to_image(q, k, keys))
        queries = self.norm3(queries + self.mlp(queries))
        q, k = queries + query_pe, keys + key_pe
        keys = self.norm4(keys + self.cross_attn_image_to_token(k, q, queries))
        return queries, keys


class TwoWayTransformer(nn.Module):
    def __init__(self, depth: int = 2, dim: int = 256, heads: int = 8, mlp_dim: int = 2048) -> None:
        super().__init__()
        self.layers = nn.ModuleList(TwoWayBlock(dim, heads, mlp_dim, skip_first_pe=i == 0) for i in range(depth))
        self.final_attn_token_to_image = Attention(dim, heads, downsample_rate=2)
        self.norm_final_attn = nn.LayerNorm(dim)

    def forward(self, image: torch.Tensor, image_pe: torch.Tensor, tokens: torch.Tensor):
        keys = image.flatten(2).permute(0, 2, 1)
        key_pe = image_pe.flatten(2).permute(0, 2, 1)
        queries = tokens
        for layer in self.layers:
            queries, keys = layer(queries, keys, tokens, key_pe)
        attn = self.final_attn_token_to_image(queries + tokens, keys + key_pe, keys)
        return self.norm_final_attn(queries + attn), keys


class MaskDecoder(nn.Module):
    """Tokens [object score, IoU, 4 masks] + prompts -> (masks (B, 4, 256, 256), IoU (B, 4),
    mask-token outputs (B, 4, 256), object-score logit (B, 1)); selection happens in the caller."""

    def __init__(self, dim: int = 256, num_multimask: int = 3) -> None:
        super().__init__()
        n = num_multimask + 1
        self.num_mask_tokens = n
        self.transformer = TwoWayTransformer(2, dim, 8, 2048)
        self.iou_token = nn.Embedding(1, dim)
        self.mask_tokens = nn.Embedding(n, dim)
        self.obj_score_token = nn.Embedding(1, dim)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(dim, dim // 4, kernel_size=2, stride=2), LayerNorm2d(dim // 4), nn.GELU(),
            nn.ConvTranspose2d(dim // 4, dim // 8, kernel_size=2, stride=2), nn.GELU())
        self.conv_s0 = nn.Conv2d(dim, dim // 8, kernel_size=1)
        self.conv_s1 = nn.Conv2d(dim, dim // 4, kernel_size=1)
        self.output_hypernetworks_mlps = nn.ModuleList(MLP(dim, dim, dim // 8, 3) for _ in range(n))
        self.iou_prediction_head = MLP(dim, 256, n, 3, sigmoid_output=True)
        self.pred_obj_score_head = MLP(dim, dim, 1, 3)

    def forward(self, image: torch.Tensor, image_pe: torch.Tensor, sparse: torch.Tensor, dense: torch.Tensor,
                high_res: list[torch.Tensor]):
        b = image.shape[0]
        out_tokens = torch.cat([self.obj_score_token.weight, self.iou_token.weight, self.mask_tokens.weight], 0)
        tokens = torch.cat([out_tokens[None].expand(b, -1, -1), sparse], 1)
        src = image + dense
        pe = image_pe.expand(b, -1, -1, -1)
        _, c, h, w = src.shape
        hs, src = self.transformer(src, pe, tokens)
        iou_out = hs[:, 1]
        mask_out = hs[:, 2: 2 + self.num_mask_tokens]
        src = src.transpose(1, 2).reshape(b, c, h, w)
        dc1, ln1, act1, dc2, act2 = self.output_upscaling
        feat_s0, feat_s1 = high_res
        up = act1(ln1(dc1(src) + feat_s1))
        up = act2(dc2(up) + feat_s0)
        hyper = torch.stack([mlp(mask_out[:, i]) for i, mlp in enumerate(self.output_hypernetworks_mlps)], 1)
        b2, c2, h2, w2 = up.shape
        masks = (hyper @ up.view(b2, c2, h2 * w2)).view(b2, -1, h2, w2)
        return masks, self.iou_prediction_head(iou_out), mask_out, self.pred_obj_score_head(hs[:, 0])
