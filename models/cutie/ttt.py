"""Test-time training forward passes for Cutie (tt-MCC, tt-Ent, tt-AE) -- our reading.

There is no official Cutie-TTT code.  We transfer the STCN-TTT protocol (as already done for XMem,
:mod:`models.xmem.ttt`) to Cutie's own training forward pass (``cutie/model/train_wrapper.py`` of the
official repository), made deterministic so that the TTT seed alone fixes the result:

* all image features of the sample frames (pixel encoder, keys, shrinkage, selection) are computed once;
* frame a is memorised from the given masks with a zero sensory memory and a deep update (mask value,
  sensory memory, object summaries);
* every later frame reads ALL earlier frames of the sample with the full-softmax (training) read
  (training picks 3 of them at random; STCN-TTT also reads every earlier frame), fuses the readout with
  the sensory memory and the previous soft prediction (pixel fuser), refines it with the object
  transformer on the sum of all earlier object summaries, and is decoded with a decoder sensory update
  on all but the last frame; every frame except the last is memorised from its soft prediction;
* deep updates (mask-encoder refresh of the sensory memory) happen on sample frames 0, 5, 10, ...:
  training draws them with probability 0.2, we take every 5th frame (same rate, no random draw).

tt-MCC runs that forward through the sample (8 frames from frame 0, XMem's octuplet sampler, since
Cutie also trains on 8-frame sequences) and back again, starting the backward half from the last
frame's soft prediction (not detached, so the loss on frame a back-propagates through the whole cycle).
tt-Ent uses the forward outputs; tt-AE decodes frame a from its own mask value (no matching): the
value takes the place of the visual readout, the sensory memory is the one its deep update produced,
the previous mask is the given mask and the object memory is frame a's own summaries.

Parameters no TTT loss can reach: ``aux_computer.*`` (training-only auxiliary head) and
``object_transformer.mask_pred.*`` (they only decide the boolean attention masks, which carry no
gradient; official training trains them with auxiliary losses); tt-AE also leaves ``key_proj.*``
(no matching) and ``mask_decoder.sensory_update.*`` (no decoder sensory update) untouched.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from models.cutie.inference import iterate_images
from models.cutie.network import CutieNet
from models.readout import similarity
from models.ttt.cycle import cycle_with
from models.ttt.sampler import grown_indices as sample_indices
from models.ttt.sampler import grown_reach as max_sampled_frames

__all__ = ["prepare", "pseudo_labels", "encode_sample", "read_full", "propagate", "cycle",
           "single", "sample_indices", "max_sampled_frames",
           "FREEZE_GROUPS", "DEEP_UPDATE_EVERY"]

#: deep update on sample frames 0, 5, ... (Cutie trains with a deep-update probability of 0.2)
DEEP_UPDATE_EVERY = 5

#: freezing tokens -> parameter-name prefixes (the STCN-TTT tokens mapped onto Cutie's modules)
FREEZE_GROUPS: dict[str, list[str]] = {
    "enc": ["pixel_encoder.", "mask_encoder."],
    "dec": ["mask_decoder."],
    "all_keys": ["pixel_encoder.", "key_proj."],
    "key_enc": ["pixel_encoder."],
    "val_enc": ["mask_encoder."],
    "key_proj": ["key_proj."],
}


def prepare(net: CutieNet, frames: np.ndarray) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> float (T, 3, H, W) in [0, 1] (Cutie normalises inside the network, so
    zero padding is black, as in the official inference)."""
    device = next(net.parameters()).device
    x = torch.from_numpy(np.ascontiguousarray(frames)).to(device)
    return x.permute(0, 3, 1, 2).float().div(255)


def pseudo_labels(net: CutieNet, images: torch.Tensor, first_labels: torch.Tensor, cfg: dict[str, Any]) -> torch.Tensor:
    """Standard inference on prepared frames -> (T, H, W) uint8 class maps (frame 0 = given)."""
    labels = torch.empty((images.shape[0], *images.shape[-2:]), dtype=torch.uint8, device=images.device)
    given = {0: first_labels.long()}
    for t, prob, order, _ in iterate_images(net, images.shape[0], lambda i: images[i], given, cfg):
        lut = torch.tensor([0, *order], device=images.device, dtype=torch.uint8)
        labels[t] = lut[prob.argmax(0)]
    labels[0] = first_labels.to(torch.uint8)
    return labels


def encode_sample(net: CutieNet, rgb: torch.Tensor) -> dict[str, torch.Tensor]:
    """rgb (B, T, 3, H, W) in [0, 1] -> every image feature of :meth:`CutieNet.encode_image`, (B, T, ...)."""
    b, t = rgb.shape[:2]
    feats = {k: v.view(b, t, *v.shape[1:]) for k, v in net.encode_image(rgb.flatten(0, 1)).items()}
    feats["rgb"] = rgb
    return feats


def read_full(query_key, query_selection, mem_key, mem_shrinkage, mem_value) -> torch.Tensor:
    """Training-style read (softmax over all memory, max subtracted).

    query (B, Ck, h, w); memory key (B, T, Ck, h, w), shrinkage (B, T, 1, h, w),
    value (B, N, Cv, T, h, w) -> visual readout (B, N, Cv, h, w).
    """
    b, n, cv = mem_value.shape[:3]
    h, w = query_key.shape[-2:]
    mk = mem_key.transpose(1, 2).flatten(2)
    ms = mem_shrinkage.transpose(1, 2).flatten(2)
    affinity = torch.softmax(similarity(mk, ms, query_key.flatten(2), query_selection.flatten(2)), dim=2)
    out = torch.bmm(mem_value.flatten(1, 2).flatten(2), affinity.transpose(1, 2))
    return out.view(b, n, cv, h, w)


def propagate(net: CutieNet, feats: dict[str, torch.Tensor], masks: torch.Tensor, selector: torch.Tensor,
              *, deep_update_every: int = DEEP_UPDATE_EVERY) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Segment frames 1..T-1 of ``feats`` from soft masks (B, O, H, W) of frame 0.

    Returns, per frame, (log-odds (B, O+1, H, W), object probabilities (B, O, H, W)).
    """
    rgb, pix_feat = feats["rgb"], feats["pix_feat"]
    n = rgb.shape[1]
    sel = selector[:, :, None, None]
    sensory = torch.zeros((rgb.shape[0], masks.shape[1], net.sensory_dim, *pix_feat.shape[-2:]),
                          device=rgb.device, dtype=rgb.dtype)
    value, sensory, summary = net.encode_mask(rgb[:, 0], pix_feat[:, 0], sensory, masks, deep_update=True)
    values, obj_memory, last_mask = [value], summary, masks
    outs = []
    for i in range(1, n):
        visual = read_full(feats["key"][:, i], feats["selection"][:, i], feats["key"][:, :i],
                           feats["shrinkage"][:, :i], torch.stack(values, 3))
        pixel = net.pixel_fusion(pix_feat[:, i], visual, sensory, last_mask)
        readout, _ = net.readout_query(pixel, obj_memory, selector=sel)
        last = i == n - 1
        new_sensory, _, log_odds, prob = net.decode(feats["f8"][:, i], feats["f4"][:, i], readout, sensory,
                                                     update_sensory=not last, selector=sel)
        prob = prob[:, 1:]
        outs.append((log_odds, prob))
        if not last:
            sensory = new_sensory
            value, sensory, summary = net.encode_mask(rgb[:, i], pix_feat[:, i], sensory, prob,
                                                      deep_update=i % deep_update_every == 0)
            values.append(value)
            obj_memory = obj_memory + summary
        last_mask = prob
    return outs


def cycle(net: CutieNet, batch: dict, *, backwards: bool = True):
    """Forward a -> ... -> z and (optionally) back z -> ... -> a.

    batch: ``rgb`` (B, T, 3, H, W), ``gt`` (B, O, T, 1, H, W), ``selector`` (B, O).  Returns the
    lists of log-odds (B, O+1, H, W) of the forward frames 1..T-1 and of the backward frames
    T-2..0 (the last entry is frame a), or None for the latter without ``backwards``.
    """
    return cycle_with(encode_sample, propagate, net, batch, backwards=backwards)


def single(net: CutieNet, batch: dict) -> torch.Tensor:
    """tt-AE pass on frame a: decode it from its own mask value, no matching; log-odds (B, O+1, H, W)."""
    rgb = batch["rgb"][:, 0]
    masks = batch["gt"][:, :, 0, 0]
    sel = batch["selector"].to(rgb.dtype)[:, :, None, None]
    feats = net.encode_image(rgb)
    sensory = torch.zeros((rgb.shape[0], masks.shape[1], net.sensory_dim, *feats["pix_feat"].shape[-2:]),
                          device=rgb.device, dtype=rgb.dtype)
    value, sensory, summary = net.encode_mask(rgb, feats["pix_feat"], sensory, masks, deep_update=True)
    pixel = net.pixel_fusion(feats["pix_feat"], value, sensory, masks)
    readout, _ = net.readout_query(pixel, summary, selector=sel)
    _, _, log_odds, _ = net.decode(feats["f8"], feats["f4"], readout, sensory, update_sensory=False, selector=sel)
    return log_odds
