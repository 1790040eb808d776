"""STCN inference with the semantics of the official ``InferenceCore`` / ``MemoryBank``.

What is kept exactly: ImageNet normalisation, zero padding (in normalised space) to multiples of
16 split floor/ceil, one-hot first-frame masks turned into soft probabilities by the soft
aggregation, the value of frame 0 encoded from those aggregated probabilities, the memory rule
(frame 0 + every ``mem_every``-th absolute frame, optionally one temporary "last frame" entry, the
last frame never encoded), the affinity ``(2 q.m - |m|^2) / sqrt(64)`` with a top-k softmax.

What is faster than the official loop without changing the numbers beyond float rounding:
everything runs under ``torch.inference_mode``; keys and their squared norms are computed once
per frame; the memory is preallocated for the whole video; the top-k readout is a sparse (CSR)
matrix product over the k selected positions instead of a dense product with a mostly-zero
affinity matrix; the K objects are encoded and decoded as one batch.  The softmax over the k
values subtracts the maximum (the official code does not and overflows above 88.7).

Memory cost (device): per memory frame ``(64 + 512 K) * h * w`` values for keys and values
(h, w = padded size / 16; 480x864 with 2 objects: 7.0 MB in float32), plus the features of the
current frame.  The (K+1, T, H, W) probabilities are written frame by frame to a CPU buffer, so
they do not occupy accelerator memory.  The frames stay uint8 until a frame is read: a
:class:`FrameSource` normalises and pads each one when :func:`propagate` needs it (bit-identical to
normalising the whole video first, which would hold T x 3 x H x W floats: 430 MiB for 90 frames at
480x864).
"""
from __future__ import annotations

import math
import warnings
from typing import Iterator

import numpy as np
import torch

from models.aggregate import aggregate
from models.imagenet import normalise
from models.padding import pad_amounts, pad_divide_by

__all__ = ["labels_to_onehot", "FrameSource", "propagate", "memory_bytes_per_frame"]

class FrameSource:
    """uint8 frames (T, H, W, 3) seen as the normalised, padded (T, 3, H', W') tensor :func:`propagate`
    reads, made one slice at a time (``source[t:t + 1]``): the same values as
    ``pad_divide_by(normalise(frames), d)[0][t:t + 1]``, without holding the whole float video."""

    def __init__(self, frames: np.ndarray, *, device=None, dtype=torch.float32, d: int = 16) -> None:
        frames = np.asarray(frames)
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"frames must be uint8 (T, H, W, 3), got {frames.shape} {frames.dtype}")
        self.frames, self.device, self.dtype, self.d = frames, torch.device(device or "cpu"), dtype, d
        h, w = frames.shape[1:3]
        self.size = (h, w)  # unpadded
        self.pad = pad_amounts(h, w, d)
        self.shape = torch.Size((frames.shape[0], 3, h + sum(self.pad[2:]), w + sum(self.pad[:2])))

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: slice) -> torch.Tensor:
        if not isinstance(index, slice):
            raise TypeError("FrameSource is read in slices, e.g. source[t:t + 1]")
        return pad_divide_by(normalise(self.frames[index], self.device, self.dtype), self.d)[0]


def labels_to_onehot(first_mask: np.ndarray | torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
    """Label map (H, W) -> (one-hot (K, H, W) float32, sorted object labels).

    Objects are the non-zero labels in sorted order; 255 (DAVIS void) is not an object.
    """
    m = first_mask if isinstance(first_mask, torch.Tensor) else torch.from_numpy(np.array(first_mask))
    if m.dim() != 2:
        raise ValueError(f"first_mask must be a (H, W) label map, got shape {tuple(m.shape)}")
    ids = tuple(int(v) for v in torch.unique(m).tolist() if v not in (0, 255))
    if not ids:
        raise ValueError("first_mask contains no object (only background/void)")
    onehot = torch.stack([(m == i) for i in ids]).to(torch.float32)
    return onehot, ids


class _Memory:
    """Preallocated key/value store: permanent frames first, then at most one temporary frame."""

    def __init__(self, capacity: int, hw: int, key_dim: int, value_dim: int, device, dtype) -> None:
        self.hw = hw
        self.keys = torch.empty(capacity * hw, key_dim, device=device, dtype=dtype)
        self.key_sq = torch.empty(capacity * hw, device=device, dtype=dtype)
        self.values = torch.empty(capacity * hw, value_dim, device=device, dtype=dtype)
        self.n_perm = 0
        self.has_temp = False

    def add(self, key: torch.Tensor, value: torch.Tensor, temporary: bool = False) -> None:
        """key (key_dim, hw), value (value_dim, hw)."""
        self.has_temp = False  # any addition clears the temporary entry (official rule)
        slot = self.n_perm
        rows = slice(slot * self.hw, (slot + 1) * self.hw)
        self.keys[rows] = key.t()
        self.key_sq[rows] = key.pow(2).sum(0)
        self.values[rows] = value.t()
        if temporary:
            self.has_temp = True
        else:
            self.n_perm += 1

    def readout(self, query: torch.Tensor, top_k: int) -> torch.Tensor:
        """query key (key_dim, hw) -> readout (value_dim, hw) with the top-k softmax."""
        n = (self.n_perm + int(self.has_temp)) * self.hw
        mk, msq = self.keys[:n], self.key_sq[:n]
        affinity = (2 * (query.t() @ mk.t()) - msq) / math.sqrt(mk.shape[1])  # (hw_q, n)
        k = min(top_k, n)
        vals, idx = affinity.topk(k, dim=1)
        weights = torch.softmax(vals, dim=1)
        hw_q = query.shape[1]
        if query.device.type in ("cpu", "cuda") and query.dtype != torch.float16:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                # sparse kernels lack bfloat16: under autocast (fast mode) this product runs in float32
                dtype = torch.promote_types(weights.dtype, torch.float32)
                sparse = torch.sparse_csr_tensor(
                    torch.arange(0, hw_q * k + 1, k, device=query.device), idx.reshape(-1),
                    weights.reshape(-1).to(dtype), size=(hw_q, n))
                with torch.autocast(query.device.type, enabled=False):
                    out = sparse @ self.values[:n].to(sparse.dtype)
        else:  # gather fallback (half precision, other devices)
            gathered = self.values[:n][idx.reshape(-1)].view(hw_q, k, -1)
            out = torch.bmm(weights.unsqueeze(1), gathered).squeeze(1)
        return out.t()  # (value_dim, hw)


def memory_bytes_per_frame(height: int, width: int, objects: int, dtype_bytes: int = 4) -> int:
    """Device bytes one memory frame costs (keys 64-d plus K values 512-d on the stride-16 grid)."""
    hw = math.ceil(height / 16) * math.ceil(width / 16)
    return (64 + 512 * objects) * hw * dtype_bytes


def _capacity(n_frames: int, mem_every: int, include_last: bool) -> int:
    perm = 1 + sum(1 for t in range(1, n_frames - 1) if t % mem_every == 0)
    return perm + int(include_last)


def propagate(net, images: torch.Tensor, masks: torch.Tensor, *, top_k: int = 20, mem_every: int = 5,
              include_last: bool = False) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield ``(t, probabilities (K+1, H, W))`` for every frame, padded, on the images' device.

    ``images``: normalised, padded (T, 3, H, W), as a tensor or a :class:`FrameSource` (read one frame at a
    time either way); ``masks``: padded one-hot (K, H, W) of frame 0.
    """
    if mem_every < 1:
        raise ValueError(f"mem_every must be >= 1, got {mem_every}")
    n_frames = images.shape[0]
    n_obj = masks.shape[0]
    prob0 = torch.softmax(aggregate(masks.unsqueeze(1).to(images.dtype)), dim=0)[:, 0]  # (K+1, H, W)
    yield 0, prob0
    if n_frames == 1:
        return
    k16, _, f16, _, _ = net.encode_key(images[:1])
    value = net.encode_value(images[:1], f16, prob0[1:].unsqueeze(1))  # (K, 512, h, w)
    h, w = k16.shape[-2:]
    memory = _Memory(_capacity(n_frames, mem_every, include_last), h * w, k16.shape[1],
                     value.shape[1] * n_obj, images.device, images.dtype)
    memory.add(k16[0].flatten(1), value.flatten(2).reshape(-1, h * w))
    last = n_frames - 1
    for t in range(1, n_frames):
        k16, f16_thin, f16, f8, f4 = net.encode_key(images[t:t + 1])
        readout = memory.readout(k16[0].flatten(1), top_k).reshape(n_obj, -1, h, w)
        logits = net.decode(readout, f16_thin, f8, f4)  # (K, 1, H, W)
        prob = torch.softmax(aggregate(torch.sigmoid(logits)), dim=0)[:, 0]  # (K+1, H, W)
        yield t, prob
        if t != last:
            is_mem = t % mem_every == 0
            if include_last or is_mem:
                value = net.encode_value(images[t:t + 1], f16, prob[1:].unsqueeze(1))
                memory.add(k16[0].flatten(1), value.flatten(2).reshape(-1, h * w), temporary=not is_mem)
