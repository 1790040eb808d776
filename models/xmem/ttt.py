"""Test-time training forward passes for XMem (tt-MCC, tt-Ent, tt-AE).

There is no official XMem-TTT code.  We transfer the STCN-TTT protocol to XMem's own training
forward pass (``model/trainer.py`` of the official repository), which is what its weights were
trained with:

* all keys/features of the sample frames are computed once;
* frame a's value comes from the given masks with a zero sensory memory and a deep update;
* every later frame is read from memory with the full-softmax (training) read, decoded with the
  current sensory memory (decoder hidden update on all but the last frame), and - except the last -
  encoded into memory from its soft prediction, with a deep update with probability
  ``deep_update_prob`` (0.2, as in training);
* the memory of frame i is every earlier frame while i <= ``num_ref_frames`` (3), afterwards frame a
  plus ``num_ref_frames - 1`` random earlier frames (as in training).

tt-MCC runs that forward through the sample (the paper's octuplets: frame 0 then 7 later frames) and
back again, starting the backward half from the last frame's soft prediction (not detached, so the
loss on frame a back-propagates through the whole cycle).  tt-Ent uses the forward outputs; tt-AE
decodes frame a straight from its own value (no matching), with the sensory memory that value
encoding produced.  Random choices draw from torch's global generator, which ``models.ttt`` seeds.
"""
from __future__ import annotations

import torch

from models.xmem.network import XMemNet

__all__ = ["encode_sample", "propagate", "cycle", "single", "FREEZE_GROUPS"]

#: freezing tokens -> parameter-name prefixes (the STCN-TTT tokens mapped onto XMem's modules)
FREEZE_GROUPS: dict[str, list[str]] = {
    "enc": ["key_encoder.", "value_encoder."],
    "dec": ["decoder."],
    "all_keys": ["key_encoder.", "key_proj."],
    "key_enc": ["key_encoder."],
    "val_enc": ["value_encoder."],
    "key_proj": ["key_proj."],
}


def encode_sample(net: XMemNet, rgb: torch.Tensor) -> dict[str, torch.Tensor]:
    """rgb (B, T, 3, H, W) -> per-frame key, shrinkage, selection, f16, f8, f4, each (B, T, ...)."""
    b, t = rgb.shape[:2]
    outs = net.encode_key(rgb.flatten(0, 1), need_sk=True, need_ek=True)
    names = ("key", "shrinkage", "selection", "f16", "f8", "f4")
    feats = {name: x.view(b, t, *x.shape[1:]) for name, x in zip(names, outs)}
    feats["rgb"] = rgb
    return feats


def _flip(feats: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: x.flip(1) for name, x in feats.items()}


def _reference_frames(i: int, num_ref_frames: int) -> list[int]:
    if i <= num_ref_frames:
        return list(range(i))
    return [0] + (torch.randperm(i - 1)[:num_ref_frames - 1] + 1).tolist()


def propagate(net: XMemNet, feats: dict[str, torch.Tensor], masks: torch.Tensor, selector: torch.Tensor,
              *, num_ref_frames: int = 3, deep_update_prob: float = 0.2) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Segment frames 1..T-1 of ``feats`` from soft masks (B, O, H, W) of frame 0.

    Returns, per frame, (log-odds (B, O+1, H, W), object probabilities (B, O, H, W)).
    """
    rgb, key, shrinkage, selection = feats["rgb"], feats["key"], feats["shrinkage"], feats["selection"]
    f16, f8, f4 = feats["f16"], feats["f8"], feats["f4"]
    b, n = rgb.shape[:2]
    hidden = torch.zeros((b, masks.shape[1], net.hidden_dim, *key.shape[-2:]), device=rgb.device, dtype=rgb.dtype)
    value, hidden = net.encode_value(rgb[:, 0], f16[:, 0], hidden, masks, deep_update=True)
    values = [value]
    sel = selector[:, :, None, None]
    outs = []
    for i in range(1, n):
        refs = _reference_frames(i, num_ref_frames)
        readout = net.read_memory_full(
            key[:, i], selection[:, i], key[:, refs].transpose(1, 2), shrinkage[:, refs].transpose(1, 2),
            torch.stack([values[r] for r in refs], 3))
        last = i == n - 1
        new_hidden, log_odds, prob = net.decode(f16[:, i], f8[:, i], f4[:, i], readout, hidden,
                                                h_out=not last, selector=sel)
        prob = prob[:, 1:]
        outs.append((log_odds, prob))
        if not last:
            hidden = new_hidden if new_hidden is not None else hidden
            deep = bool(torch.rand(()) < deep_update_prob)
            value, hidden = net.encode_value(rgb[:, i], f16[:, i], hidden, prob, deep_update=deep)
            values.append(value)
    return outs


def cycle(net: XMemNet, batch: dict, *, backwards: bool = True, **kw):
    """Forward a -> ... -> z and (optionally) back z -> ... -> a.

    batch: ``rgb`` (B, T, 3, H, W), ``gt`` (B, O, T, 1, H, W), ``selector`` (B, O).  Returns the
    lists of log-odds (B, O+1, H, W) of the forward frames 1..T-1 and of the backward frames
    T-2..0 (the last entry is frame a), or None for the latter without ``backwards``.
    """
    feats = encode_sample(net, batch["rgb"])
    selector = batch["selector"].to(batch["rgb"].dtype)
    fwd = propagate(net, feats, batch["gt"][:, :, 0, 0], selector, **kw)
    if not backwards:
        return [x[0] for x in fwd], None
    bwd = propagate(net, _flip(feats), fwd[-1][1], selector, **kw)
    return [x[0] for x in fwd], [x[0] for x in bwd]


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
