"""STCN with objects that are given on later frames (YouTube-VOS, MOSE, LVOS, SA-V protocol).

Semantics of the official ``eval_youtube.py`` / ``inference_core_yv.py`` (read for facts, not copied):

* nothing is predicted before the first frame that gives a mask (those frames are background);
* on a frame that gives masks, the running prediction of the objects already known is computed first;
  then every channel is zeroed where the given map has an object, the given objects' channels are set
  to their masks, and all K object channels go through the soft aggregation (objects not known yet are
  0 there, as in the official probability buffer);
* that frame becomes a permanent memory frame for every known object, and the memory schedule restarts
  from it (``t - last memory frame >= mem_every``);
* each object reads only the memory written since its first frame (the official code keeps one memory
  bank per object; here the banks share keys and an object's bank is a suffix of the slots);
* the last frame is never stored.

When all objects are given on frame 0 this is exactly :func:`models.stcn.inference.propagate` (which the
``segment`` call keeps using for that case, so the DAVIS numbers cannot move).
"""
from __future__ import annotations

import math
from typing import Iterator

import torch

from models.aggregate import aggregate

__all__ = ["propagate_given"]


class _Banks:
    """Memory slots (key, |key|^2, values of all K objects), a temporary slot, and per-object start slots."""

    def __init__(self) -> None:
        self.keys: list[torch.Tensor] = []  # (hw, key_dim)
        self.key_sq: list[torch.Tensor] = []  # (hw,)
        self.values: list[torch.Tensor] = []  # (K, hw, value_dim)
        self.temp: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        self.start: dict[int, int] = {}  # object channel -> first slot of its bank

    def add(self, key: torch.Tensor, value: torch.Tensor, temporary: bool = False) -> None:
        """key (key_dim, hw); value (K, value_dim, hw) with zeros for objects not known yet."""
        entry = (key.t().contiguous(), key.pow(2).sum(0), value.transpose(1, 2).contiguous())
        self.temp = None  # any addition replaces the temporary entry (official MemoryBank rule)
        if temporary:
            self.temp = entry
        else:
            self.keys.append(entry[0])
            self.key_sq.append(entry[1])
            self.values.append(entry[2])

    def readout(self, query: torch.Tensor, objects: list[int], top_k: int) -> torch.Tensor:
        """query (key_dim, hw) -> (len(objects), value_dim, hw), each object over its own bank."""
        out = [None] * len(objects)
        by_start: dict[int, list[int]] = {}
        for i, obj in enumerate(objects):
            by_start.setdefault(self.start[obj], []).append(i)
        for start, members in by_start.items():
            keys, sq, vals = self.keys[start:], self.key_sq[start:], self.values[start:]
            if self.temp is not None:
                keys, sq, vals = keys + [self.temp[0]], sq + [self.temp[1]], vals + [self.temp[2]]
            mk, msq = torch.cat(keys, 0), torch.cat(sq, 0)
            mv = torch.cat(vals, 1)  # (K, n, value_dim)
            affinity = (2 * (query.t() @ mk.t()) - msq) / math.sqrt(mk.shape[1])  # (hw_q, n)
            vals_k, idx = affinity.topk(min(top_k, mk.shape[0]), dim=1)
            weights = torch.softmax(vals_k, dim=1)  # (hw_q, k)
            for i in members:
                obj = objects[i]
                gathered = mv[obj][idx]  # (hw_q, k, value_dim)
                out[i] = torch.einsum("qk,qkc->cq", weights, gathered)
        return torch.stack(out)


def propagate_given(net, images: torch.Tensor, given: dict[int, tuple[torch.Tensor, list[int]]], n_obj: int, *,
                    top_k: int = 20, mem_every: int = 5,
                    include_last: bool = False) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield ``(t, probabilities (K+1, H, W))`` for every frame (padded, on the images' device).

    ``images``: normalised, padded (T, 3, H, W), a tensor or a FrameSource; ``given``: {frame: (one-hot
    (K, H, W) padded, object channels given there)} over all K objects (channels in sorted label order).
    """
    if mem_every < 1:
        raise ValueError(f"mem_every must be >= 1, got {mem_every}")
    n_frames = images.shape[0]
    size = images.shape[-2:]
    frames_given = sorted(given)
    first = frames_given[0]
    background = torch.zeros((n_obj + 1, *size), device=images.device, dtype=images.dtype)
    background[0] = 1
    for t in range(first):
        yield t, background
    banks = _Banks()
    enabled: list[int] = []
    last_mem = first
    for t in range(first, n_frames):
        k16, f16_thin, f16, f8, f4 = net.encode_key(images[t:t + 1])
        prob = torch.zeros((n_obj + 1, *size), device=images.device, dtype=images.dtype)
        if enabled:
            readout = banks.readout(k16[0].flatten(1), enabled, top_k).reshape(len(enabled), -1, *k16.shape[-2:])
            logits = net.decode(readout, f16_thin, f8, f4)  # (n_enabled, 1, H, W)
            agg = torch.softmax(aggregate(torch.sigmoid(logits)), dim=0)[:, 0]
            prob[0] = agg[0]
            prob[[1 + o for o in enabled]] = agg[1:]
        if t in given:
            onehot, objs = given[t]
            objects = prob[1:].clone()
            objects[:, onehot.sum(0) > 0.5] = 0
            objects[objs] = onehot[objs].to(objects.dtype)
            prob = torch.softmax(aggregate(objects.unsqueeze(1)), dim=0)[:, 0]
            for o in objs:
                if o not in enabled:
                    enabled.append(o)
                    banks.start[o] = len(banks.keys)
            enabled.sort()
            unknown = [1 + o for o in range(n_obj) if o not in enabled]
            if unknown:  # the aggregation leaves ~1e-14 on them; the contract says exactly 0
                prob[unknown] = 0
            yield t, prob
            value = _values(net, images[t:t + 1], f16, prob, enabled, n_obj)
            banks.add(k16[0].flatten(1), value)
            last_mem = t
            continue
        yield t, prob
        if t != n_frames - 1:  # the last frame is never stored
            is_mem = t - last_mem >= mem_every
            if include_last or is_mem:
                banks.add(k16[0].flatten(1), _values(net, images[t:t + 1], f16, prob, enabled, n_obj),
                          temporary=not is_mem)
                if is_mem:
                    last_mem = t


def _values(net, image: torch.Tensor, f16: torch.Tensor, prob: torch.Tensor, enabled: list[int],
            n_obj: int) -> torch.Tensor:
    """(K, value_dim, h*w) values: the known objects encoded together (their "others" channel sums only
    known objects, as in the official code), zeros for objects not known yet."""
    enc = net.encode_value(image, f16, prob[[1 + o for o in enabled]].unsqueeze(1))  # (n, C, h, w)
    value = torch.zeros((n_obj, enc.shape[1], enc.shape[2] * enc.shape[3]), device=enc.device, dtype=enc.dtype)
    value[enabled] = enc.flatten(2)
    return value
