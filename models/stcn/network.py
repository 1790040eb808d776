"""The STCN evaluation network (405 official state-dict entries) and its frame-by-frame inference.

The user-facing model (``segment``, options, TTT hooks) is :class:`models.stcn.model.STCN`; the training
passes of test-time training are in :mod:`models.stcn.ttt` (the official training and evaluation networks
share every weight name).
"""
from __future__ import annotations

import contextlib

import numpy as np
import torch
from torch import nn

from models.padding import pad_divide_by, unpad
from models.stcn.inference import FrameSource, propagate
from models.stcn.modules import Decoder, KeyEncoder, KeyProjection, ValueEncoder

__all__ = ["STCNNet"]


class STCNNet(nn.Module):
    """STCN with the official submodule names: key_encoder, value_encoder, key_proj, key_comp, decoder."""

    def __init__(self, amp: bool = False) -> None:
        super().__init__()
        self.key_encoder = KeyEncoder()
        self.value_encoder = ValueEncoder()
        self.key_proj = KeyProjection(1024, 64)
        self.key_comp = nn.Conv2d(1024, 512, kernel_size=3, padding=1)
        self.decoder = Decoder()
        self.amp = amp

    # ------------------------------------------------------------------ building blocks
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def encode_key(self, images: torch.Tensor):
        """(B, 3, H, W) -> k16 (B, 64, h, w), f16_thin (B, 512), f16 (B, 1024), f8, f4."""
        f16, f8, f4 = self.key_encoder(images)
        return self.key_proj(f16), self.key_comp(f16), f16, f8, f4

    def encode_value(self, image: torch.Tensor, f16: torch.Tensor, masks: torch.Tensor,
                     others: torch.Tensor | None = None) -> torch.Tensor:
        """Values of K objects of one frame: image (1, 3, H, W), f16 (1, 1024, h, w), masks (K, 1, H, W).

        ``others`` defaults to the sum of the other objects' masks (zeros for one object).
        """
        k = masks.shape[0]
        if others is None:
            if k == 1:
                others = torch.zeros_like(masks)
            else:
                others = torch.cat([masks[[j for j in range(k) if j != i]].sum(0, keepdim=True)
                                    for i in range(k)], 0)
        return self.value_encoder(image, f16, masks, others)

    def decode(self, readout: torch.Tensor, f16_thin: torch.Tensor, f8: torch.Tensor,
               f4: torch.Tensor) -> torch.Tensor:
        """readout (K, 512, h, w) + query features (batch 1) -> logits (K, 1, H, W)."""
        return self.decoder(readout, f16_thin, f8, f4)

    # ------------------------------------------------------------------ inference
    def _autocast(self):
        if self.amp and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    def iter_probabilities(self, images: torch.Tensor | FrameSource, first_onehot: torch.Tensor, *,
                           top_k: int = 20, mem_every: int = 5, include_last: bool = False):
        """Yield (t, (K+1, H, W) probabilities, unpadded, on the device) for normalised (T, 3, H, W) images,
        or for a :class:`FrameSource` of uint8 frames (normalised one frame at a time)."""
        if isinstance(images, FrameSource):
            padded, pad, size = images, images.pad, images.size
        else:
            (padded, pad), size = pad_divide_by(images, 16), tuple(images.shape[-2:])
        if size != tuple(first_onehot.shape[-2:]):
            raise ValueError(f"first mask is {tuple(first_onehot.shape[-2:])} but frames are {size}")
        masks, _ = pad_divide_by(first_onehot.to(device=padded.device, dtype=padded.dtype), 16)
        self.eval()
        with torch.inference_mode(), self._autocast():
            for t, prob in propagate(self, padded, masks, top_k=top_k, mem_every=mem_every,
                                     include_last=include_last):
                yield t, unpad(prob, pad)

    def frame_source(self, frames: np.ndarray) -> FrameSource:
        """uint8 (T, H, W, 3) -> a :class:`FrameSource` in the model's dtype on its device (the frames stay
        uint8 until each is read)."""
        return FrameSource(frames, device=self.device, dtype=self.dtype)
