"""Semi-supervised VOS with SAM 2 as the official ``tools/vos_inference.py`` runs it (spec/sam2.md 2, 4, 5).

Every object is tracked on its own (its own conditioning frame, memory bank, pointers and object
scores); only the image features of a frame are shared.  An object starts on the frame where its
mask is given (frame 0 for DAVIS; later frames for datasets whose objects appear later, as the
official ``--track_object_appearing_later_in_video`` mode does) and is tracked forward from there;
its logits are -inf (probability 0) before.  Per frame we yield the unconstrained per-object logits
at video resolution; :func:`probabilities` turns them into the toolkit's (K+1) probabilities
(softmax over [0, l_1 .. l_K], spec section 8), whose argmax is the official label map.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm.auto import tqdm

from models.inputs import check_frames, given_masks, object_first_frames
from models.sam2.network import IMAGE_SIZE, NUM_MASKMEM, SAM2Net

__all__ = ["preprocess", "mask_input", "ObjectTrack", "track", "probabilities", "segment_video",
           "MAX_OBJ_PTRS", "IMAGENET_MEAN", "IMAGENET_STD", "label_map"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: object pointers per frame at most (max_obj_ptrs_in_encoder)
MAX_OBJ_PTRS = 16


def preprocess(frame: np.ndarray, device: Any = None, dtype: torch.dtype = torch.float32,
               size: int = IMAGE_SIZE) -> torch.Tensor:
    """uint8 (H, W, 3) RGB -> normalised float32 (1, 3, S, S), S = 1024: PIL bicubic squash on uint8,
    /255, ImageNet mean/std (the official frame loader)."""
    img = Image.fromarray(np.ascontiguousarray(frame)).convert("RGB").resize((size, size), Image.BICUBIC)
    x = torch.from_numpy(np.asarray(img) / 255.0).permute(2, 0, 1).to(torch.float32)
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32)[:, None, None]
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32)[:, None, None]
    return ((x - mean) / std)[None].to(device=device, dtype=dtype)


def mask_input(mask: np.ndarray | torch.Tensor, device: Any = None, dtype: torch.dtype = torch.float32,
               size: int = IMAGE_SIZE) -> torch.Tensor:
    """(H, W) boolean object mask -> binary float (1, 1, S, S) (antialiased bilinear, >= 0.5)."""
    m = torch.as_tensor(np.asarray(mask, dtype=bool))[None, None].to(device=device, dtype=dtype)
    if tuple(m.shape[-2:]) != (size, size):
        m = F.interpolate(m, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        m = (m >= 0.5).to(dtype)
    return m


@dataclass
class ObjectTrack:
    """Memory of one object: its conditioning frame and the tracked frames (memory features in
    bfloat16 as the official predictor stores them, pointer, object score)."""

    first_frame: int
    cond: dict[int, dict] = field(default_factory=dict)
    non_cond: dict[int, dict] = field(default_factory=dict)

    def bank(self, t: int, num_frames: int):
        """(memories [(features, tpos row)], pointers [(pointer, offset)], t_diff_max) for frame t."""
        memories = [(e["mem"], NUM_MASKMEM - 1) for e in self.cond.values()]
        for t_rel in range(NUM_MASKMEM - 1, 0, -1):  # oldest first: frame t-6 (row 5) .. t-1 (row 0)
            e = self.non_cond.get(t - t_rel)
            if e is not None:
                memories.append((e["mem"], t_rel - 1))
        max_ptr = min(num_frames, MAX_OBJ_PTRS)
        pointers = [(e["obj_ptr"], t - c) for c, e in self.cond.items() if c <= t]
        for d in range(1, max_ptr):
            if t - d < 0:
                break
            e = self.non_cond.get(t - d)
            if e is not None:
                pointers.append((e["obj_ptr"], d))
        return memories, pointers, max_ptr - 1

    def prune(self, t: int) -> None:
        """Drop tracked frames that no later frame can use (older than t - max(6, 15) + 1)."""
        keep = max(NUM_MASKMEM - 1, MAX_OBJ_PTRS - 1)
        for f in [f for f in self.non_cond if f <= t - keep]:
            del self.non_cond[f]


def _store(net: SAM2Net, feat: torch.Tensor, out: dict) -> dict:
    mem = net.encode_memory(feat, out["low_res"], out["object_score"]).to(torch.bfloat16)
    return {"mem": mem, "obj_ptr": out["obj_ptr"], "object_score": out["object_score"]}


def track(net: SAM2Net, num_frames: int, image_fn: Callable[[int], torch.Tensor], starts: dict[int, tuple[int, np.ndarray]],
          size: tuple[int, int], *, amp: bool = False, record: Callable[[int, int, dict], None] | None = None,
          progress: bool = False) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield (t, unconstrained logits (K, H, W) float32 at video resolution) for every frame.

    ``image_fn(t)``: frame t as a normalised (1, 3, 1024, 1024) tensor (see :func:`preprocess`);
    ``starts``: per object (in output order) its (first frame, (H, W) boolean mask there).
    ``record(t, k, out)`` (optional) sees every per-object output dict (inspection, tests).
    """
    device = next(net.parameters()).device
    dtype = next(net.parameters()).dtype  # float32 (float64 only for conditioning studies)
    tracks = [ObjectTrack(first) for first, _ in starts]
    use_amp = bool(amp) and device.type == "cuda"
    for t in tqdm(range(num_frames), desc="sam2", disable=not progress, leave=False):
        logits = torch.full((len(starts), *size), float("-inf"), device=device, dtype=dtype)
        active = [k for k, (first, _) in enumerate(starts) if first <= t]
        if not active:
            yield t, logits
            continue
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
            img = net.image_features(image_fn(t).to(device=device, dtype=dtype))
            feat, pos, high_res = img["feat"], img["pos"], img["high_res"]
            for k in active:
                tr, (first, mask) = tracks[k], starts[k]
                pix = None
                if t == first:
                    out = net.mask_as_output(feat, high_res, mask_input(mask, device, dtype, net.image_size))
                    tr.cond[t] = _store(net, feat, out)
                else:
                    memories, pointers, t_diff_max = tr.bank(t, num_frames)
                    pix = net.condition(feat, pos, memories, pointers, t_diff_max)
                    out = net.sam_heads(pix, high_res, None, multimask=True)
                    out["memory_tokens"] = 4096 * len(memories) + 4 * len(pointers)
                    tr.non_cond[t] = _store(net, feat, out)
                    tr.prune(t)
                low = out["low_res"].to(dtype)
                logits[k] = F.interpolate(low, size=size, mode="bilinear", align_corners=False)[0, 0]
                if record is not None:
                    record(t, k, {**out, "mem": (tr.cond.get(t) or tr.non_cond[t])["mem"], "pix_feat": pix})
        yield t, logits


def probabilities(logits: torch.Tensor) -> torch.Tensor:
    """(K, H, W) unconstrained logits -> (K+1, H, W) softmax over [0, l_1, ..., l_K] (background logit
    0 = the official score threshold); -inf (object not started) gives probability 0."""
    zero = torch.zeros_like(logits[:1])
    probs = torch.softmax(torch.cat([zero, logits], 0), dim=0)
    # argmax(probs) equals the official label map in exact arithmetic; where float32 rounding of exp() makes
    # two classes tie (two objects' logits within ~1e-7, or a logit within ~1e-7 of the threshold 0), give the
    # class the official rule picks the next float32 up, so the label map read off the output is the official
    # one by construction (probabilities change by one ulp there, nowhere else)
    best = logits.max(0)
    want = torch.where(best.values > 0, best.indices + 1, torch.zeros_like(best.indices))
    top = probs.max(0)
    bad = top.indices != want
    if bool(bad.any()):
        bumped = torch.nextafter(top.values, torch.full_like(top.values, float("inf")))
        probs.scatter_(0, want[None], torch.where(bad, bumped, probs.gather(0, want[None])[0])[None])
    return probs


def label_map(logits: torch.Tensor, labels: list[int]) -> torch.Tensor:
    """The official label map from unconstrained logits (K, H, W): non-overlap (winner keeps its logit,
    others min(l, -10)), threshold > 0, ids written so the smallest id wins."""
    k = logits.shape[0]
    winner = logits.argmax(0)
    keep = torch.arange(k, device=logits.device)[:, None, None] == winner[None]
    constrained = torch.where(keep, logits, logits.clamp(max=-10.0))
    out = torch.zeros(logits.shape[1:], dtype=torch.uint8, device=logits.device)
    for i in range(k - 1, -1, -1):
        out[constrained[i] > 0] = labels[i]
    return out


def segment_video(net: SAM2Net, frames: np.ndarray, masks, *, amp: bool = False, progress: bool = False,
                  record=None) -> np.ndarray:
    """frames uint8 (T, H, W, 3), masks: (H, W) label map of frame 0 or {frame: label map} ->
    float32 (K+1, T, H, W) probabilities (background, then objects in sorted label order)."""
    frames = check_frames(frames)
    given = given_masks(frames, masks)
    firsts = object_first_frames(given)
    starts = [(f, given[f] == label) for label, f in firsts.items()]
    t_len, h, w = frames.shape[:3]
    out = np.zeros((len(starts) + 1, t_len, h, w), dtype=np.float32)
    out[0] = 1.0
    device = next(net.parameters()).device
    dtype = next(net.parameters()).dtype
    for t, logits in track(net, t_len, lambda i: preprocess(frames[i], device, dtype, net.image_size), starts, (h, w), amp=amp, record=record,
                           progress=progress):
        out[:, t] = probabilities(logits).cpu().numpy()
    return out
