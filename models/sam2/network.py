"""The SAM 2 network (``SAM2Base``'s modules and loose tensors, official state-dict names) and its
per-frame operations for semi-supervised VOS: image features, the SAM heads, the mask-as-output
path of an annotated frame, memory encoding and memory conditioning (spec/sam2.md 3, 5)."""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from models.sam2.common import MLP, sine_pe_1d, sine_pe_2d
from models.sam2.heads import MaskDecoder, PromptEncoder
from models.sam2.hiera import ImageEncoder
from models.sam2.memory import MemoryAttention, MemoryEncoder

__all__ = ["SAM2Net", "NO_OBJ_SCORE", "IMAGE_SIZE", "NUM_MASKMEM"]

NO_OBJ_SCORE = -1024.0
IMAGE_SIZE = 1024
NUM_MASKMEM = 7
HIDDEN, MEM_DIM = 256, 64


class SAM2Net(nn.Module):
    """Modules of one SAM 2 / 2.1 configuration; ``version`` "2.1" adds ``no_obj_embed_spatial`` and the
    projected temporal encoding of object pointers (``obj_ptr_tpos_proj``)."""

    def __init__(self, trunk: dict, neck: dict, version: str = "2.1", image_size: int = IMAGE_SIZE) -> None:
        super().__init__()
        if version not in ("2.0", "2.1"):
            raise ValueError(f"unknown SAM 2 version {version!r} (2.0 or 2.1)")
        if image_size % 64:
            raise ValueError(f"image_size must be a multiple of 64, got {image_size}")
        self.version = version
        #: square input size; every official config and checkpoint uses 1024 (smaller only for fast tests)
        self.image_size = int(image_size)
        self.maskmem_tpos_enc = nn.Parameter(torch.zeros(NUM_MASKMEM, 1, 1, MEM_DIM))
        self.no_mem_embed = nn.Parameter(torch.zeros(1, 1, HIDDEN))
        self.no_mem_pos_enc = nn.Parameter(torch.zeros(1, 1, HIDDEN))
        self.no_obj_ptr = nn.Parameter(torch.zeros(1, HIDDEN))
        if version == "2.1":
            self.no_obj_embed_spatial = nn.Parameter(torch.zeros(1, MEM_DIM))
        else:
            self.no_obj_embed_spatial = None
        self.image_encoder = ImageEncoder(trunk, neck)
        self.mask_downsample = nn.Conv2d(1, 1, kernel_size=4, stride=4)
        self.memory_attention = MemoryAttention(HIDDEN, MEM_DIM, 4)
        self.memory_encoder = MemoryEncoder(HIDDEN, MEM_DIM)
        self.sam_prompt_encoder = PromptEncoder(HIDDEN, self.image_size // 16, 16)
        self.sam_mask_decoder = MaskDecoder(HIDDEN, 3)
        self.obj_ptr_proj = MLP(HIDDEN, HIDDEN, HIDDEN, 3)
        self.obj_ptr_tpos_proj = nn.Linear(HIDDEN, MEM_DIM) if version == "2.1" else None
        with torch.no_grad():  # construction-time values (overwritten by a checkpoint)
            for p in (self.maskmem_tpos_enc, self.no_mem_embed, self.no_mem_pos_enc, self.no_obj_ptr):
                nn.init.trunc_normal_(p, std=0.02)
            if self.no_obj_embed_spatial is not None:
                nn.init.trunc_normal_(self.no_obj_embed_spatial, std=0.02)

    # ------------------------------------------------------------------ image features
    def image_features(self, image: torch.Tensor) -> dict[str, Any]:
        """(B, 3, S, S) normalised (S = ``image_size``, 1024) -> level-2 features ``feat`` (B, 256, 64, 64), their PE ``pos``
        and the projected high-res maps ``high_res`` [level 0 (B, 32, 256, 256), level 1 (B, 64, 128, 128)]."""
        feats, pos = self.image_encoder(image)
        dec = self.sam_mask_decoder
        return {"feat": feats[2], "pos": pos[2], "high_res": [dec.conv_s0(feats[0]), dec.conv_s1(feats[1])]}

    # ------------------------------------------------------------------ SAM heads
    def sam_heads(self, pix_feat: torch.Tensor, high_res: list[torch.Tensor], mask_prompt: torch.Tensor | None,
                  multimask: bool) -> dict[str, torch.Tensor]:
        """Decoder on (B, 256, 64, 64) features without clicks.  Returns the chosen low-res logits
        ``low_res`` (B, 1, 256, 256) (-1024 where the object score <= 0), ``object_score`` (B, 1), the
        gated pointer ``obj_ptr`` (B, 256) and, for inspection, ``ious`` and ``best`` (chosen index)."""
        b = pix_feat.shape[0]
        pe = self.sam_prompt_encoder
        sparse, dense = pe(b, mask_prompt)
        masks, ious, tokens, score = self.sam_mask_decoder(pix_feat, pe.dense_pe(), sparse, dense, high_res)
        if multimask:
            masks, ious, tokens = masks[:, 1:], ious[:, 1:], tokens[:, 1:]
        else:
            masks, ious, tokens = masks[:, :1], ious[:, :1], tokens[:, :1]
        present = score > 0
        masks = torch.where(present[:, :, None, None], masks, torch.full_like(masks, NO_OBJ_SCORE))
        masks = masks.to(self.no_obj_ptr.dtype)  # float32 (autocast may have produced bfloat16)
        best = ious.argmax(-1) if multimask else torch.zeros(b, dtype=torch.long, device=ious.device)
        rows = torch.arange(b, device=masks.device)
        low_res = masks[rows, best][:, None]
        ptr = self.obj_ptr_proj(tokens[rows, best])
        a = present.to(ptr.dtype)
        ptr = a * ptr + (1 - a) * self.no_obj_ptr
        return {"low_res": low_res, "object_score": score, "obj_ptr": ptr, "ious": ious, "best": best,
                "multimasks": masks}

    def mask_as_output(self, pix_feat: torch.Tensor, high_res: list[torch.Tensor], mask: torch.Tensor) -> dict:
        """Annotated frame: outputs from the binary mask (B, 1, 1024, 1024) alone; the pointer from the
        heads prompted with ``mask_downsample(mask)`` (single-mask output), gated twice."""
        high = mask * 20.0 - 10.0
        low = F.interpolate(high, size=(high.shape[-2] // 4, high.shape[-1] // 4), mode="bilinear",
                            align_corners=False, antialias=True)
        heads = self.sam_heads(pix_feat, high_res, self.mask_downsample(mask), multimask=False)
        a = (mask.flatten(1) > 0).any(1, keepdim=True).to(mask.dtype)
        ptr = a * heads["obj_ptr"] + (1 - a) * self.no_obj_ptr
        return {"low_res": low, "object_score": 20.0 * a - 10.0, "obj_ptr": ptr,
                "decoder_object_score": heads["object_score"]}

    # ------------------------------------------------------------------ memory
    def encode_memory(self, feat: torch.Tensor, low_res: torch.Tensor, object_score: torch.Tensor) -> torch.Tensor:
        """Memory features (B, 64, 64, 64) of a frame from its raw level-2 features and chosen low-res
        logits, no-object embedding added where the score is <= 0 (not yet rounded to bfloat16)."""
        s = self.image_size
        high = F.interpolate(low_res, size=(s, s), mode="bilinear", align_corners=False)
        mem, _ = self.memory_encoder(feat, torch.sigmoid(high) * 20.0 - 10.0)
        if self.no_obj_embed_spatial is not None:
            absent = (object_score <= 0).to(mem.dtype)[:, :, None, None]
            mem = mem + absent * self.no_obj_embed_spatial[:, :, None, None]
        return mem

    def memory_pos(self, h: int, w: int, device, dtype=torch.float32) -> torch.Tensor:
        """(h * w, 64) sine PE of a memory frame (identical for every frame)."""
        return sine_pe_2d(MEM_DIM, h, w, device=device).flatten(1).t().to(dtype)

    def condition(self, feat: torch.Tensor, pos: torch.Tensor, memories: list[tuple[torch.Tensor, int]],
                  pointers: list[tuple[torch.Tensor, float]], t_diff_max: int) -> torch.Tensor:
        """Memory attention of the current features (B, 256, 64, 64) with PE ``pos``.

        ``memories``: (features (B, 64, 64, 64), temporal row of ``maskmem_tpos_enc``) in bank order;
        ``pointers``: (pointer (B, 256), signed frame offset) in bank order; ``t_diff_max`` = pointer
        time normaliser.  Returns (B, 256, 64, 64)."""
        b, c, h, w = feat.shape
        mem_pos = self.memory_pos(h, w, feat.device, feat.dtype)
        mems, mpos = [], []
        for m, row in memories:
            mems.append(m.flatten(2).transpose(1, 2).to(feat.dtype))
            mpos.append((mem_pos + self.maskmem_tpos_enc[row].reshape(1, MEM_DIM))[None].expand(b, -1, -1))
        n_ptr = 0
        if pointers:
            ptrs = torch.stack([p for p, _ in pointers], 1)  # (B, N, 256)
            n = ptrs.shape[1]
            if self.obj_ptr_tpos_proj is not None:
                offsets = torch.tensor([o for _, o in pointers], device=feat.device)
                tpos = self.obj_ptr_tpos_proj(sine_pe_1d(offsets / t_diff_max, HIDDEN))  # (N, 64)
            else:
                tpos = ptrs.new_zeros(n, MEM_DIM)
            split = HIDDEN // MEM_DIM
            mems.append(ptrs.reshape(b, n * split, MEM_DIM).to(feat.dtype))
            mpos.append(tpos.repeat_interleave(split, 0)[None].expand(b, -1, -1).to(feat.dtype))
            n_ptr = n * split
        memory, memory_pos = torch.cat(mems, 1), torch.cat(mpos, 1)
        x = feat.flatten(2).transpose(1, 2)
        p = pos.flatten(2).transpose(1, 2)
        out = self.memory_attention(x, p, memory, memory_pos, n_ptr)
        return out.transpose(1, 2).reshape(b, c, h, w)
