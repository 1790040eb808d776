"""Test-time training forward passes for SAM 2 (tt-MCC, tt-Ent, tt-AE): our reading.

There is no reference implementation of TTT for SAM 2.  We carry the STCN-TTT protocol over to
SAM 2's own structure, keeping every forward step identical to the official VOS inference (the
same modules, mask-as-output path, memory encoding with the 20*sigmoid-10 mask value, bfloat16
rounding of stored memories, multimask selection by predicted IoU, object-score gating):

* **Sample = short clip.**  The generic sampler's frames (a triplet 0 < i < j with jumps <= 10 by
  default) are treated as consecutive clip positions 0, 1, 2, ... -- SAM 2 itself trains on sampled
  frames that way -- so temporal rows and pointer offsets count clip positions and the pointer
  normaliser is min(clip length, 16) - 1.
* **Objects are independent** (as in inference): every (sample, object) pair is one batch row; the
  image features of a frame are computed once and shared by its objects.  Dummy objects
  (selector 0) get logit -1e4 (probability 0).
* **Forward half** (tt-MCC, tt-Ent): clip position 0 is the conditioning frame, built from the given
  mask exactly as ``add_new_mask`` does (logits +-10, pointer from the mask-prompted heads, memory
  from the 256 -> 1024 round trip); every later position is tracked with memory attention over all
  earlier positions of the clip (at most 6 + the conditioning frame, as inference), then encoded into
  memory from its own soft logits.
* **Backward half** (tt-MCC): the reversed clip starts from the last position as the conditioning
  frame *with its predicted soft logits* (memory encoded from them, its forward pointer), so the loss
  on frame 0 back-propagates through the whole cycle; the other positions are tracked again.
* **tt-AE**: frame 0's memory from the given mask, then frame 0 is decoded as a tracked frame from
  that memory alone (memory attention + heads; spec 8 notes that the annotated frame's own output does
  not depend on any weight).
* **Log-odds** of a frame = [0, l_1 .. l_O] with l the chosen low-res logits upsampled to the size of
  the labels (the frames' size; every frame itself is squashed to 1024x1024 as in inference): the softmax of that is the toolkit's probability definition, so the cross-entropy and the
  entropy are taken on the same quantity that ``segment`` outputs.
* **What trains** (see :data:`FREEZE_GROUPS`): by default everything except the image encoder
  (Hiera + FPN, 69-95 % of the weights): the image encoder then runs without gradients, which keeps
  a step affordable at SAM 2's fixed 1024x1024 input.  tt-Ent trains only the LayerNorm scales and
  shifts outside the image encoder (SAM 2 has no BatchNorm; ``net,uln``).  Dropout (memory attention
  only) stays off: TTT runs in eval mode; bf16 autocast is never used for TTT.

Hard decisions (object score > 0 gate, IoU argmax, -1024 fill) pass no gradient, as in the network.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from models.sam2.inference import MAX_OBJ_PTRS, preprocess, probabilities, track
from models.sam2.network import NUM_MASKMEM, SAM2Net

__all__ = ["FREEZE_GROUPS", "PAD", "prepare", "pseudo_labels", "freeze_groups", "cycle", "single", "clip_features",
           "run_clip"]

#: no padding: frames are squashed to the square input anyway, labels keep the frames' size
PAD = 1

#: freezing tokens -> parameter-name prefixes (``ln`` is filled in per network by :func:`freeze_groups`)
FREEZE_GROUPS: dict[str, list[str]] = {
    "image_encoder": ["image_encoder."],
    "trunk": ["image_encoder.trunk."],
    "neck": ["image_encoder.neck."],
    "memory": ["memory_attention.", "memory_encoder.", "maskmem_tpos_enc", "no_obj_embed_spatial",
               "obj_ptr_tpos_proj."],
    "heads": ["sam_prompt_encoder.", "sam_mask_decoder.", "obj_ptr_proj.", "no_obj_ptr", "mask_downsample."],
}


def prepare(net: SAM2Net, frames: np.ndarray) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> normalised (T, 3, S, S), S = ``image_size`` (the official frame loader)."""
    device = next(net.parameters()).device
    return torch.cat([preprocess(f, device, size=net.image_size) for f in np.asarray(frames)])


def pseudo_labels(net: SAM2Net, images: torch.Tensor, first_labels: torch.Tensor, cfg: dict[str, Any]) -> torch.Tensor:
    """Standard inference on prepared frames -> (T, H, W) uint8 class maps at the mask's size."""
    k = int(first_labels.max())
    size = tuple(first_labels.shape)
    m = first_labels.cpu().numpy()
    starts = [(0, m == i) for i in range(1, k + 1)]
    labels = torch.empty((images.shape[0], *size), dtype=torch.uint8, device=images.device)
    for t, logits in track(net, images.shape[0], lambda i: images[i:i + 1], starts, size, amp=cfg["amp"]):
        labels[t] = probabilities(logits).argmax(0).to(torch.uint8)
    return labels


def freeze_groups(net: SAM2Net) -> dict[str, list[str]]:
    """:data:`FREEZE_GROUPS` plus ``ln``: the LayerNorm / LayerNorm2d scale and shift names outside the
    image encoder (``uln`` unfreezes them, the analogue of the BatchNorm-only ``ubn``)."""
    groups = {k: list(v) for k, v in FREEZE_GROUPS.items()}
    ln = []
    for mod_name, mod in net.named_modules():
        if mod_name.startswith("image_encoder.") or type(mod).__name__ not in ("LayerNorm", "LayerNorm2d"):
            continue
        ln += [f"{mod_name}.{p}" for p, _ in mod.named_parameters(recurse=False)]
    groups["ln"] = ln
    return groups


def _encoder_frozen(net: SAM2Net) -> bool:
    return not any(p.requires_grad for p in net.image_encoder.parameters())


def clip_features(net: SAM2Net, rgb: torch.Tensor) -> list[dict]:
    """rgb (B, T, 3, 1024, 1024) -> per clip position the image features (batch B); without gradients
    when the image encoder is frozen."""
    out = []
    with torch.set_grad_enabled(torch.is_grad_enabled() and not _encoder_frozen(net)):
        for t in range(rgb.shape[1]):
            out.append(net.image_features(rgb[:, t]))
    return out


def _rows(feats: dict, n_obj: int) -> dict:
    """Repeat each sample's features for its objects (batch B -> B * O, sample-major)."""
    return {"feat": feats["feat"].repeat_interleave(n_obj, 0), "pos": feats["pos"].repeat_interleave(n_obj, 0),
            "high_res": [x.repeat_interleave(n_obj, 0) for x in feats["high_res"]]}


def _memory(net: SAM2Net, feat: torch.Tensor, out: dict) -> dict:
    mem = net.encode_memory(feat, out["low_res"], out["object_score"]).to(torch.bfloat16)
    return {"mem": mem, "obj_ptr": out["obj_ptr"]}


def run_clip(net: SAM2Net, feats: list[dict], cond: dict, cond_feat: torch.Tensor) -> list[dict]:
    """Track clip positions 1..T-1 from the conditioning output ``cond`` (dict with ``low_res``,
    ``object_score``, ``obj_ptr``) of position 0, whose raw features are ``cond_feat``.
    Returns the heads' output dicts of positions 1..T-1."""
    n = len(feats)
    bank = {0: _memory(net, cond_feat, cond)}
    t_diff_max = max(min(n, MAX_OBJ_PTRS) - 1, 1)
    outs = []
    for t in range(1, n):
        f = feats[t]
        memories = [(bank[0]["mem"], NUM_MASKMEM - 1)]
        memories += [(bank[t - r]["mem"], r - 1) for r in range(NUM_MASKMEM - 1, 0, -1) if t - r >= 1]
        pointers = [(bank[0]["obj_ptr"], t)] + [(bank[t - d]["obj_ptr"], d) for d in range(1, min(n, MAX_OBJ_PTRS))
                                              if t - d >= 1]
        pix = net.condition(f["feat"], f["pos"], memories, pointers, t_diff_max)
        out = net.sam_heads(pix, f["high_res"], None, multimask=True)
        outs.append(out)
        if t < n - 1:
            bank[t] = _memory(net, f["feat"], out)
    return outs


def _log_odds(low_res: torch.Tensor, selector: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B * O, 1, 256, 256) logits -> (B, O + 1, H, W) log-odds [0, l_1 .. l_O]; dummies at -1e4."""
    b, o = selector.shape
    up = F.interpolate(low_res, size=size, mode="bilinear", align_corners=False).reshape(b, o, *size)
    up = torch.where(selector[:, :, None, None] > 0, up, torch.full_like(up, -1e4))
    return torch.cat([torch.zeros_like(up[:, :1]), up], 1)


def _given_cond(net: SAM2Net, f0: dict, gt: torch.Tensor) -> dict:
    """Conditioning output of clip position 0 from the given masks (B, O, T, 1, H, W): each object's mask
    brought to the input size as ``add_new_mask`` does (antialiased bilinear, >= 0.5)."""
    b, o = gt.shape[:2]
    m = gt[:, :, 0].reshape(b * o, 1, *gt.shape[-2:]).to(f0["feat"].dtype)
    s = net.image_size
    if tuple(m.shape[-2:]) != (s, s):
        m = F.interpolate(m, size=(s, s), mode="bilinear", align_corners=False, antialias=True)
        m = (m >= 0.5).to(f0["feat"].dtype)
    return net.mask_as_output(f0["feat"], f0["high_res"], m)


def cycle(net: SAM2Net, batch: dict, *, backwards: bool = True):
    """Forward clip 0 -> T-1 (and back T-1 -> 0).  Returns lists of log-odds (B, O+1, H, W): forward
    positions 1..T-1, backward positions T-2..0 (last = frame 0) or None."""
    rgb, gt, selector = batch["rgb"], batch["gt"], batch["selector"].to(batch["rgb"].dtype)
    o = selector.shape[1]
    size = tuple(gt.shape[-2:])  # log-odds at the size of the labels
    feats = [_rows(f, o) for f in clip_features(net, rgb)]
    cond = _given_cond(net, feats[0], gt)
    fwd = run_clip(net, feats, cond, feats[0]["feat"])
    fwd_lo = [_log_odds(x["low_res"], selector, size) for x in fwd]
    if not backwards:
        return fwd_lo, None
    rev = feats[::-1]
    last = fwd[-1]
    bwd = run_clip(net, rev, {"low_res": last["low_res"], "object_score": last["object_score"],
                              "obj_ptr": last["obj_ptr"]}, rev[0]["feat"])
    return fwd_lo, [_log_odds(x["low_res"], selector, size) for x in bwd]


def single(net: SAM2Net, batch: dict) -> torch.Tensor:
    """tt-AE: frame 0 decoded as a tracked frame from its own memory (built from the given mask)."""
    rgb, gt, selector = batch["rgb"], batch["gt"], batch["selector"].to(batch["rgb"].dtype)
    o = selector.shape[1]
    size = tuple(gt.shape[-2:])
    f0 = _rows(clip_features(net, rgb[:, :1])[0], o)
    out = run_clip(net, [f0, f0], _given_cond(net, f0, gt), f0["feat"])[0]
    return _log_odds(out["low_res"], selector, size)
