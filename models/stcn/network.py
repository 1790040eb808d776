"""The STCN evaluation network (405 official state-dict entries) and its public ``segment``.

The same module also implements the test-time-training hooks of :mod:`models.ttt` (the forward
passes of the official ``STCN_TTT`` training network: full-softmax matching, per-object
decoding with a selector, log-odds outputs), because the official training and evaluation
networks share every weight name.
"""
from __future__ import annotations

import contextlib
import math

import numpy as np
import torch
from torch import nn

from models.inputs import given_masks, object_first_frames
from models.stcn.inference import (FrameSource, aggregate, labels_to_onehot, normalise, pad_divide_by, propagate,
                                   unpad)
from models.stcn.later import propagate_given
from models.stcn.modules import Decoder, KeyEncoder, KeyProjection, ValueEncoder

__all__ = ["STCN"]


class STCN(nn.Module):
    """STCN with the official submodule names: key_encoder, value_encoder, key_proj, key_comp, decoder."""

    #: inputs are padded to multiples of this (stride of the key grid)
    ttt_pad = 16

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

    def prepare(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 (T, H, W, 3) -> normalised (T, 3, H, W) in the model's dtype on its device."""
        return normalise(frames, device=self.device, dtype=self.dtype)

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

    def segment(self, frames: np.ndarray, first_mask, *, top_k: int = 20, mem_every: int = 5,
                include_last: bool = False, progress: bool = False) -> np.ndarray:
        """Segment a video given its first-frame label map, or ``{frame: label map}`` (models.inputs).

        frames: uint8 RGB (T, H, W, 3); first_mask: uint8 (H, W) labels (0 background; 255 void is
        not an object).  Returns float32 (K+1, T, H, W): background first, then the objects in
        sorted label order.  The official eval script's final bilinear resize is an identity here
        because the output has the input's size.  Objects given on later frames join the memory there
        as in the official YouTube-VOS script (:mod:`models.stcn.later`); 0 before their first frame.
        ``progress``: a bar over the frames.
        """
        from tqdm import tqdm

        frames = np.asarray(frames)
        if isinstance(first_mask, dict) or hasattr(first_mask, "items"):
            given = given_masks(frames, first_mask)
            if list(given) != [0]:
                return self._segment_given(frames, given, top_k=top_k, mem_every=mem_every,
                                           include_last=include_last)
            first_mask = given[0]
        onehot, _ = labels_to_onehot(first_mask)
        images = self.frame_source(frames)
        out = torch.empty((onehot.shape[0] + 1, frames.shape[0], *frames.shape[1:3]), dtype=torch.float32)
        with tqdm(total=frames.shape[0], desc="stcn", unit="frame", disable=not progress, leave=False) as bar:
            for t, prob in self.iter_probabilities(images, onehot, top_k=top_k, mem_every=mem_every,
                                                   include_last=include_last):
                out[:, t] = prob.float().cpu()
                bar.update(1)
        return out.numpy()

    def _segment_given(self, frames: np.ndarray, given: dict, **kw) -> np.ndarray:
        labels = sorted(object_first_frames(given))
        padded = self.frame_source(frames)
        pad = padded.pad
        onehots = {}
        for t, m in given.items():
            m = torch.from_numpy(np.array(m))
            onehot = torch.stack([(m == label) for label in labels]).to(device=padded.device, dtype=padded.dtype)
            objs = [i for i, label in enumerate(labels) if bool((m == label).any())]
            onehots[t] = (pad_divide_by(onehot, 16)[0], objs)
        out = torch.empty((len(labels) + 1, frames.shape[0], *frames.shape[1:3]), dtype=torch.float32)
        self.eval()
        with torch.inference_mode(), self._autocast():
            for t, prob in propagate_given(self, padded, onehots, len(labels), **kw):
                out[:, t] = unpad(prob, pad).float().cpu()
        return out.numpy()

    # ------------------------------------------------------------------ test-time training hooks
    def ttt_pseudo_labels(self, images: torch.Tensor, first_labels: torch.Tensor, **segment_kw) -> torch.Tensor:
        """Standard inference -> class maps (T, H, W) uint8 on the device (0 bg, 1..K objects)."""
        k = int(first_labels.max())
        onehot = torch.stack([first_labels == i for i in range(1, k + 1)]).to(images.dtype)
        labels = torch.empty((images.shape[0], *images.shape[-2:]), dtype=torch.uint8, device=images.device)
        for t, prob in self.iter_probabilities(images, onehot, **segment_kw):
            labels[t] = prob.argmax(0).to(torch.uint8)
        labels[0] = first_labels.to(torch.uint8)  # the official pass writes the given mask for frame 0
        return labels

    def ttt_freeze_groups(self) -> dict[str, list[str]]:
        """Official freezing tokens (``freeze_parse``) -> parameter-name prefixes."""
        return {"enc": ["key_encoder.", "value_encoder."], "dec": ["decoder."],
                "all_keys": ["key_encoder.", "key_proj.", "key_comp."], "key_enc": ["key_encoder."],
                "val_enc": ["value_encoder."], "key_proj": ["key_proj."], "key_comp": ["key_comp."]}

    def _ttt_keys(self, rgb: torch.Tensor):
        b, t = rgb.shape[:2]
        k16, f16_thin, f16, f8, f4 = self.encode_key(rgb.flatten(0, 1))
        return [x.view(b, t, *x.shape[1:]) for x in (k16, f16_thin, f16, f8, f4)]

    def _ttt_values(self, image, f16, masks, others):
        """image (B, 3, H, W), f16 (B, 1024, h, w), masks/others (B, O, H, W) -> (B, O, 512, h, w)."""
        b, o = masks.shape[:2]
        v = self.value_encoder(image, f16, masks.reshape(b * o, 1, *masks.shape[-2:]),
                               others.reshape(b * o, 1, *others.shape[-2:]))
        return v.view(b, o, *v.shape[1:])

    def _ttt_decode(self, readout, f16_thin, f8, f4, selector):
        """readout (B, O, 512, h, w) -> (log-odds (B, O+1, H, W), object probabilities (B, O, H, W))."""
        b, o = readout.shape[:2]
        logits = self.decoder(readout.flatten(0, 1), f16_thin, f8, f4)
        prob = torch.sigmoid(logits.view(b, o, *logits.shape[-2:])) * selector[:, :, None, None]
        log_odds = aggregate(prob, dim=1)
        return log_odds, torch.softmax(log_odds, dim=1)[:, 1:]

    @staticmethod
    def _ttt_read(mem_k, mem_v, qk):
        """Full-softmax readout: mem_k (B, 64, N), mem_v (B, O, 512, N), qk (B, 64, h, w)."""
        b, ck = mem_k.shape[:2]
        h, w = qk.shape[-2:]
        q = qk.flatten(2)
        a_sq = mem_k.pow(2).sum(1).unsqueeze(2)
        affinity = (2 * (mem_k.transpose(1, 2) @ q) - a_sq) / math.sqrt(ck)  # (B, N, hw)
        affinity = torch.softmax(affinity, dim=1)
        o = mem_v.shape[1]
        out = torch.bmm(mem_v.flatten(1, 2), affinity)  # (B, O*512, hw)
        return out.view(b, o, -1, h, w)

    def _ttt_propagate(self, rgb, feats, masks, others, selector):
        """One direction of the cycle over the sample frames; returns the log-odds of frames 1..T-1."""
        k16, f16_thin, f16, f8, f4 = feats
        mem_v = self._ttt_values(rgb[:, 0], f16[:, 0], masks, others).flatten(3)  # (B, O, 512, hw)
        mem_k = k16[:, 0].flatten(2)
        outs = []
        n = rgb.shape[1]
        for i in range(1, n):
            readout = self._ttt_read(mem_k, mem_v, k16[:, i])
            log_odds, prob = self._ttt_decode(readout, f16_thin[:, i], f8[:, i], f4[:, i], selector)
            outs.append((log_odds, prob))
            if i < n - 1:
                other = prob.sum(1, keepdim=True) - prob
                v = self._ttt_values(rgb[:, i], f16[:, i], prob, other).flatten(3)
                mem_v = torch.cat([mem_v, v], 3)
                mem_k = torch.cat([mem_k, k16[:, i].flatten(2)], 2)
        return outs

    def ttt_cycle(self, batch: dict, *, backwards: bool = True):
        """Forward a -> b -> c (and backward c -> b -> a): lists of log-odds (B, O+1, H, W).

        Frame a's values come from the given masks; every later value from the soft predictions,
        with gradients flowing through the whole cycle (official ``do_cycle_pass``,
        ``encode_first=False``).
        """
        rgb, gt, sec, selector = batch["rgb"], batch["gt"], batch["sec_gt"], batch["selector"]
        feats = self._ttt_keys(rgb)
        fwd = self._ttt_propagate(rgb, feats, gt[:, :, 0, 0], sec[:, :, 0, 0], selector)
        if not backwards:
            return [x[0] for x in fwd], None
        last = fwd[-1][1]
        rev = [x.flip(1) for x in feats]
        bwd = self._ttt_propagate(rgb.flip(1), rev, last, last.sum(1, keepdim=True) - last, selector)
        return [x[0] for x in fwd], [x[0] for x in bwd]

    def ttt_single(self, batch: dict) -> torch.Tensor:
        """Auto-encoder pass on frame a: values from the given masks, decoded without matching."""
        rgb, gt, sec, selector = batch["rgb"], batch["gt"], batch["sec_gt"], batch["selector"]
        k16, f16_thin, f16, f8, f4 = self._ttt_keys(rgb[:, :1])
        values = self._ttt_values(rgb[:, 0], f16[:, 0], gt[:, :, 0, 0], sec[:, :, 0, 0])
        log_odds, _ = self._ttt_decode(values, f16_thin[:, 0], f8[:, 0], f4[:, 0], selector)
        return log_odds
