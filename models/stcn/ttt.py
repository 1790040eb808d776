"""Test-time training of STCN: the forward passes of the official ``STCN_TTT`` training network (full-softmax
matching, per-object decoding with a selector, log-odds outputs) and the hooks :class:`models.base.TTTHooks`
reaches: :func:`prepare`, :func:`pseudo_labels`, :data:`FREEZE_GROUPS`, :func:`cycle`, :func:`single`.
Samples are the STCN triplets of :mod:`models.ttt.sampler`.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from models.aggregate import aggregate
from models.imagenet import normalise
from models.stcn.network import STCNNet

__all__ = ["prepare", "pseudo_labels", "cycle", "single", "FREEZE_GROUPS"]

#: official freezing tokens (``freeze_parse``) -> parameter-name prefixes
FREEZE_GROUPS: dict[str, list[str]] = {
    "enc": ["key_encoder.", "value_encoder."], "dec": ["decoder."],
    "all_keys": ["key_encoder.", "key_proj.", "key_comp."], "key_enc": ["key_encoder."],
    "val_enc": ["value_encoder."], "key_proj": ["key_proj."], "key_comp": ["key_comp."]}


def prepare(net: STCNNet, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> normalised (T, 3, H, W) in the model's dtype on its device."""
    return normalise(frames, device=net.device, dtype=net.dtype)


def pseudo_labels(net: STCNNet, images: torch.Tensor, first_labels: torch.Tensor, cfg: dict[str, Any]) -> torch.Tensor:
    """Standard inference -> class maps (T, H, W) uint8 on the device (0 bg, 1..K objects)."""
    k = int(first_labels.max())
    onehot = torch.stack([first_labels == i for i in range(1, k + 1)]).to(images.dtype)
    labels = torch.empty((images.shape[0], *images.shape[-2:]), dtype=torch.uint8, device=images.device)
    for t, prob in net.iter_probabilities(images, onehot, **cfg):
        labels[t] = prob.argmax(0).to(torch.uint8)
    labels[0] = first_labels.to(torch.uint8)  # the official pass writes the given mask for frame 0
    return labels


def _keys(net: STCNNet, rgb: torch.Tensor):
    b, t = rgb.shape[:2]
    k16, f16_thin, f16, f8, f4 = net.encode_key(rgb.flatten(0, 1))
    return [x.view(b, t, *x.shape[1:]) for x in (k16, f16_thin, f16, f8, f4)]


def _values(net: STCNNet, image, f16, masks, others):
    """image (B, 3, H, W), f16 (B, 1024, h, w), masks/others (B, O, H, W) -> (B, O, 512, h, w)."""
    b, o = masks.shape[:2]
    v = net.value_encoder(image, f16, masks.reshape(b * o, 1, *masks.shape[-2:]),
                          others.reshape(b * o, 1, *others.shape[-2:]))
    return v.view(b, o, *v.shape[1:])


def _decode(net: STCNNet, readout, f16_thin, f8, f4, selector):
    """readout (B, O, 512, h, w) -> (log-odds (B, O+1, H, W), object probabilities (B, O, H, W))."""
    b, o = readout.shape[:2]
    logits = net.decoder(readout.flatten(0, 1), f16_thin, f8, f4)
    prob = torch.sigmoid(logits.view(b, o, *logits.shape[-2:])) * selector[:, :, None, None]
    log_odds = aggregate(prob, dim=1)
    return log_odds, torch.softmax(log_odds, dim=1)[:, 1:]


def _read(mem_k, mem_v, qk):
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


def _propagate(net: STCNNet, rgb, feats, masks, others, selector):
    """One direction of the cycle over the sample frames; returns the log-odds of frames 1..T-1."""
    k16, f16_thin, f16, f8, f4 = feats
    mem_v = _values(net, rgb[:, 0], f16[:, 0], masks, others).flatten(3)  # (B, O, 512, hw)
    mem_k = k16[:, 0].flatten(2)
    outs = []
    n = rgb.shape[1]
    for i in range(1, n):
        readout = _read(mem_k, mem_v, k16[:, i])
        log_odds, prob = _decode(net, readout, f16_thin[:, i], f8[:, i], f4[:, i], selector)
        outs.append((log_odds, prob))
        if i < n - 1:
            other = prob.sum(1, keepdim=True) - prob
            v = _values(net, rgb[:, i], f16[:, i], prob, other).flatten(3)
            mem_v = torch.cat([mem_v, v], 3)
            mem_k = torch.cat([mem_k, k16[:, i].flatten(2)], 2)
    return outs


def cycle(net: STCNNet, batch: dict, *, backwards: bool = True):
    """Forward a -> b -> c (and backward c -> b -> a): lists of log-odds (B, O+1, H, W).

    Frame a's values come from the given masks; every later value from the soft predictions,
    with gradients flowing through the whole cycle (official ``do_cycle_pass``,
    ``encode_first=False``).
    """
    rgb, gt, sec, selector = batch["rgb"], batch["gt"], batch["sec_gt"], batch["selector"]
    feats = _keys(net, rgb)
    fwd = _propagate(net, rgb, feats, gt[:, :, 0, 0], sec[:, :, 0, 0], selector)
    if not backwards:
        return [x[0] for x in fwd], None
    last = fwd[-1][1]
    rev = [x.flip(1) for x in feats]
    bwd = _propagate(net, rgb.flip(1), rev, last, last.sum(1, keepdim=True) - last, selector)
    return [x[0] for x in fwd], [x[0] for x in bwd]


def single(net: STCNNet, batch: dict) -> torch.Tensor:
    """Auto-encoder pass on frame a: values from the given masks, decoded without matching."""
    rgb, gt, sec, selector = batch["rgb"], batch["gt"], batch["sec_gt"], batch["selector"]
    k16, f16_thin, f16, f8, f4 = _keys(net, rgb[:, :1])
    values = _values(net, rgb[:, 0], f16[:, 0], gt[:, :, 0, 0], sec[:, :, 0, 0])
    log_odds, _ = _decode(net, values, f16_thin[:, 0], f8[:, 0], f4[:, 0], selector)
    return log_odds
