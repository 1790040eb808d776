"""XMem over a video whose objects are given on different frames (official ``eval.py`` with its mask mapper).

Facts kept from the official evaluation (read, not copied):

* frames before the first given mask are skipped (not processed; we output background there), so the
  frame counter and the memory schedule start at the first given frame;
* object channels are numbered in the order objects are first given (the mask mapper), each given map
  becomes a one-hot over every object seen so far, and its labels are the *valid labels* of that step;
* on a frame with a mask, the known objects are still segmented when the mask does not name all of them;
  the prediction is cleared under the given pixels, objects not named keep their prediction, the named
  ones take their mask, and everything goes through the soft aggregation;
* a frame with a mask is always a memory frame (and a deep-update frame with the default synchronised
  deep update); new objects get zero sensory memory; the new object group's values start there
  (:mod:`models.xmem.groups`).

The probabilities come back in sorted label order (the toolkit contract), not mapper order.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from models.inputs import object_first_frames
from models.xmem.groups import GroupedMemory
from models.xmem.inference import InferenceCore, _memory_config, _resized_shape, normalise, pad16, unpad
from models.aggregate import aggregate
from models.xmem.network import XMemNet

import torch.nn.functional as F

__all__ = ["GroupedCore", "segment_given"]


class GroupedCore(InferenceCore):
    """:class:`InferenceCore` whose ``step`` takes a mask of some objects (``valid``: their 0-based channels)."""

    def __init__(self, net: XMemNet, **kw: Any) -> None:
        super().__init__(net, **kw)
        self.memory = GroupedMemory(self.memory_config, hidden_dim=net.hidden_dim)

    def step(self, image: torch.Tensor, mask: torch.Tensor | None = None, end: bool = False,
             valid: list[int] | None = None) -> torch.Tensor:
        """image (3, H, W); mask (N_all, H, W) one-hot over every object known so far (padded)."""
        t, net, enable_long = self._advance(mask), self.net, self.memory_config.enable_long_term
        image = image.unsqueeze(0)
        need_segment = t > 0 and (mask is None or len(valid) != self.num_objects)
        is_mem, is_deep, is_normal_update = self._schedule(t, mask, end)
        key, shrinkage, selection, f16, f8, f4 = net.encode_key(image, need_sk=is_mem,
                                                                need_ek=enable_long or need_segment)
        prob = None
        if need_segment:
            readout = self.memory.read(key, selection).unsqueeze(0)
            hidden, _, prob = net.decode(f16, f8, f4, readout, self.memory.hidden, h_out=is_normal_update)
            prob = prob[0]
            if is_normal_update:
                self.memory.hidden = hidden
        if mask is not None:
            mask = mask.to(image.dtype)
            if prob is not None:
                pred = prob[1:].clone()
                pred[:, mask.sum(0) > 0.5] = 0
                mask = mask.clone()
                keep = [i for i in range(pred.shape[0]) if i not in valid]
                mask[keep] = pred[keep]
            prob = torch.softmax(aggregate(mask, dim=0), dim=0)
            self.memory.create_hidden(self.num_objects, key)
        if is_mem:
            value, hidden = net.encode_value(image, f16, self.memory.hidden, prob[1:].unsqueeze(0),
                                             deep_update=is_deep)
            self.memory.add(key, shrinkage, value, selection if enable_long else None,
                            list(range(self.num_objects)))
            self.last_mem_t = t
            if is_deep:
                self.memory.hidden = hidden
                self.last_deep_update_t = t
        return prob


@torch.inference_mode()
def segment_given(net: XMemNet, frames: np.ndarray, given: dict[int, np.ndarray], cfg: dict) -> np.ndarray:
    """frames uint8 (T, H, W, 3), given {frame: label map} (models.inputs) -> float32 (K+1, T, H, W)."""
    first = object_first_frames(given)
    labels_sorted = list(first)
    mapper = sorted(labels_sorted, key=lambda label: (first[label], label))  # channel order of the mask mapper
    n_frames, height, width = frames.shape[:3]
    out = np.zeros((len(labels_sorted) + 1, n_frames, height, width), np.float32)
    start = min(given)
    out[0, :start] = 1.0
    device = next(net.parameters()).device
    core = GroupedCore(net, mem_every=cfg["mem_every"], deep_update_every=cfg["deep_update_every"],
                       memory=_memory_config(cfg, n_frames))
    size = cfg.get("size", -1)
    target = _resized_shape(height, width, size) if size and size > 0 else (height, width)
    resize = target != (height, width)
    order = [1 + labels_sorted.index(label) for label in mapper]  # output channel of each mapper channel
    for t in range(start, n_frames):
        image = normalise(frames[t], device)
        mask = valid = None
        if t in given:
            m = torch.from_numpy(np.array(given[t])).to(device)
            known = [label for label in mapper if first[label] <= t]
            mask = torch.stack([(m == label) for label in known]).float()
            valid = [i for i, label in enumerate(known) if bool((m == label).any())]
            if resize:
                mask = F.interpolate(mask[None], size=target, mode="nearest")[0]
            mask, _ = pad16(mask)
        if resize:
            image = F.interpolate(image[None], size=target, mode="bilinear", align_corners=False)[0]
        image, pad = pad16(image)
        prob = unpad(core.step(image, mask, end=(t == n_frames - 1), valid=valid), pad)
        if resize:
            prob = F.interpolate(prob[:, None], size=(height, width), mode="bilinear", align_corners=False)[:, 0]
        prob = prob.float().cpu().numpy()
        out[0, t] = prob[0]
        for c in range(1, prob.shape[0]):
            out[order[c - 1], t] = prob[c]
    return out
