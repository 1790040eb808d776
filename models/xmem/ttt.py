"""Test-time training forward passes for XMem (tt-MCC, tt-Ent, tt-AE) and its octuplet sampler.

There is no official XMem-TTT code.  We transfer the STCN-TTT protocol to XMem's own training
forward pass (``model/trainer.py`` of the official repository), made deterministic so that the TTT
seed alone fixes the result:

* all keys/features of the sample frames are computed once;
* frame a's value comes from the given masks with a zero sensory memory and a deep update;
* every later frame is read from memory with the full-softmax (training) read over ALL earlier
  frames of the sample (training samples 3 of them to save GPU memory; STCN-TTT also reads every
  earlier frame), decoded with the current sensory memory (decoder hidden update on all but the
  last frame), and - except the last - encoded into memory from its soft prediction;
* deep updates (value-encoder refresh of the sensory memory) happen on sample frames 0, 5, 10, ...:
  training draws them with probability 0.2, we take every 5th frame (same rate, no random draw).

tt-MCC runs that forward through the sample (the paper's octuplets: frame 0 then 7 later frames) and
back again, starting the backward half from the last frame's soft prediction (not detached, so the
loss on frame a back-propagates through the whole cycle).  tt-Ent uses the forward outputs; tt-AE
decodes frame a straight from its own value (no matching), with the sensory memory that value
encoding produced.

Octuplets (:func:`sample_indices`): XMem's training sampler grown from frame 0 - distinct frames,
each within ``max_jump`` of an already chosen one, sorted in time (:func:`models.ttt.sampler.grown_indices`).

The hooks :class:`models.base.TTTHooks` reaches: :func:`prepare`, :func:`pseudo_labels`,
:data:`FREEZE_GROUPS`, :func:`cycle`, :func:`single`, :func:`sample_indices`, :func:`max_sampled_frames`.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from models.ttt.cycle import cycle_with
from models.ttt.sampler import grown_indices as sample_indices
from models.ttt.sampler import grown_reach as max_sampled_frames
from models.xmem.inference import iterate_images, normalise
from models.xmem.network import XMemNet

__all__ = ["prepare", "pseudo_labels", "encode_sample", "propagate", "cycle", "single",
           "sample_indices", "max_sampled_frames",
           "FREEZE_GROUPS", "DEEP_UPDATE_EVERY"]

#: deep update on sample frames 0, 5, ... (XMem trains with a deep-update probability of 0.2)
DEEP_UPDATE_EVERY = 5

#: freezing tokens -> parameter-name prefixes (the STCN-TTT tokens mapped onto XMem's modules)
FREEZE_GROUPS: dict[str, list[str]] = {
    "enc": ["key_encoder.", "value_encoder."],
    "dec": ["decoder."],
    "all_keys": ["key_encoder.", "key_proj."],
    "key_enc": ["key_encoder."],
    "val_enc": ["value_encoder."],
    "key_proj": ["key_proj."],
}


def prepare(net: XMemNet, frames: np.ndarray) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> normalised float (T, 3, H, W) on the model's device."""
    device = next(net.parameters()).device
    return torch.stack([normalise(f, device) for f in np.asarray(frames)])


def pseudo_labels(net: XMemNet, images: torch.Tensor, first_labels: torch.Tensor, cfg: dict[str, Any]) -> torch.Tensor:
    """Standard inference on normalised frames -> (T, H, W) uint8 class maps (frame 0 = given)."""
    k = int(first_labels.max())
    onehot = torch.stack([first_labels == i for i in range(1, k + 1)]).to(images.dtype)
    labels = torch.empty((images.shape[0], *images.shape[-2:]), dtype=torch.uint8, device=images.device)
    for t, prob, _ in iterate_images(net, images.shape[0], lambda i: images[i], onehot, cfg):
        labels[t] = prob.argmax(0).to(torch.uint8)
    labels[0] = first_labels.to(torch.uint8)
    return labels


def encode_sample(net: XMemNet, rgb: torch.Tensor) -> dict[str, torch.Tensor]:
    """rgb (B, T, 3, H, W) -> per-frame key, shrinkage, selection, f16, f8, f4, each (B, T, ...)."""
    b, t = rgb.shape[:2]
    outs = net.encode_key(rgb.flatten(0, 1), need_sk=True, need_ek=True)
    names = ("key", "shrinkage", "selection", "f16", "f8", "f4")
    feats = {name: x.view(b, t, *x.shape[1:]) for name, x in zip(names, outs)}
    feats["rgb"] = rgb
    return feats


def propagate(net: XMemNet, feats: dict[str, torch.Tensor], masks: torch.Tensor, selector: torch.Tensor,
              *, deep_update_every: int = DEEP_UPDATE_EVERY) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Segment frames 1..T-1 of ``feats`` from soft masks (B, O, H, W) of frame 0.

    Returns, per frame, (log-odds (B, O+1, H, W), object probabilities (B, O, H, W)).
    """
    rgb, key, shrinkage, selection = feats["rgb"], feats["key"], feats["shrinkage"], feats["selection"]
    f16, f8, f4 = feats["f16"], feats["f8"], feats["f4"]
    n = rgb.shape[1]
    hidden = torch.zeros((rgb.shape[0], masks.shape[1], net.hidden_dim, *key.shape[-2:]),
                         device=rgb.device, dtype=rgb.dtype)
    value, hidden = net.encode_value(rgb[:, 0], f16[:, 0], hidden, masks, deep_update=True)
    values = [value]
    sel = selector[:, :, None, None]
    outs = []
    for i in range(1, n):
        readout = net.read_memory_full(key[:, i], selection[:, i], key[:, :i].transpose(1, 2),
                                       shrinkage[:, :i].transpose(1, 2), torch.stack(values, 3))
        last = i == n - 1
        new_hidden, log_odds, prob = net.decode(f16[:, i], f8[:, i], f4[:, i], readout, hidden,
                                                h_out=not last, selector=sel)
        prob = prob[:, 1:]
        outs.append((log_odds, prob))
        if not last:
            hidden = new_hidden if new_hidden is not None else hidden
            value, hidden = net.encode_value(rgb[:, i], f16[:, i], hidden, prob,
                                             deep_update=i % deep_update_every == 0)
            values.append(value)
    return outs


def cycle(net: XMemNet, batch: dict, *, backwards: bool = True):
    """Forward a -> ... -> z and (optionally) back z -> ... -> a.

    batch: ``rgb`` (B, T, 3, H, W), ``gt`` (B, O, T, 1, H, W), ``selector`` (B, O).  Returns the
    lists of log-odds (B, O+1, H, W) of the forward frames 1..T-1 and of the backward frames
    T-2..0 (the last entry is frame a), or None for the latter without ``backwards``.
    """
    return cycle_with(encode_sample, propagate, net, batch, backwards=backwards)


def single(net: XMemNet, batch: dict) -> torch.Tensor:
    """tt-AE pass on frame a: decode its own value (from the given masks), no matching.

    Returns the log-odds (B, O+1, H, W).
    """
    rgb = batch["rgb"][:, 0]
    masks = batch["gt"][:, :, 0, 0]
    _, _, _, f16, f8, f4 = net.encode_key(rgb, need_sk=False, need_ek=False)
    hidden = torch.zeros((rgb.shape[0], masks.shape[1], net.hidden_dim, *f16.shape[-2:]),
                         device=rgb.device, dtype=rgb.dtype)
    value, hidden = net.encode_value(rgb, f16, hidden, masks, deep_update=True)
    selector = batch["selector"].to(rgb.dtype)[:, :, None, None]
    _, log_odds, _ = net.decode(f16, f8, f4, value, hidden, h_out=False, selector=selector)
    return log_odds
