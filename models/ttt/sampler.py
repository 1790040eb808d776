"""Training samples for test-time training, built in memory from one video.

Follows the official ``VOSDataset`` of the TTT repository for DAVIS-style videos (only frame 0
annotated): the sample starts at frame 0, the next frames jump forward by 1..``max_jump``, and
for tt-MCC (``check_last``) the last frame must show every chosen object in the pseudo-labels;
after 50 failed draws any draw is accepted, and a last frame whose set of labels differs from
frame 0's is replaced by frame 0 itself (cycle 0 -> i -> 0).  Exact triplet sequences are not
portable across implementations (the official one depends on data-loader worker seeding); ours
come from one seeded ``numpy.random.Generator``.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from models.padding import pad_divide_by

__all__ = ["sample_indices", "max_sampled_frames", "grown_indices", "grown_reach", "sample_triplet",
           "label_presence", "build_batch", "TRIPLET_REACH"]

_LIMIT = 100
#: TTT triplets come from frames 0..20 (jumps of at most 10 from frame 0, twice): the frames TTT prepares
TRIPLET_REACH = 21


def sample_indices(n_frames: int, num_frames: int, max_jump: int, rng: np.random.Generator) -> list[int]:
    """Frame indices of one sample: ``[0]`` for one frame, else 0 < i < j with jumps <= ``max_jump``.

    Official clamping: middle frames at most ``n_frames - J`` (J = min(n_frames - 1, max_jump)),
    the last at most ``n_frames - 1``; redrawn while the last two coincide.  A 2-frame video has
    no such triplet; it gets the official fallback shape ``[0, 1, 0]``.
    """
    if num_frames == 1:
        return [0]
    if n_frames < 2:
        raise ValueError(f"a {num_frames}-frame sample needs a video with at least 2 frames, got {n_frames}")
    if n_frames == 2:
        return [0] + [1] * (num_frames - 2) + [0]
    jump = min(n_frames - 1, max_jump)
    while True:
        idx = [0]
        for _ in range(num_frames - 2):
            idx.append(min(idx[-1] + int(rng.integers(1, jump + 1)), n_frames - jump, n_frames - 1))
        idx.append(min(idx[-1] + int(rng.integers(1, jump + 1)), n_frames - 1))
        if idx[-1] != idx[-2]:
            return idx


def max_sampled_frames(num_frames: int, max_jump: int) -> int:
    """How many leading frames the triplets of :func:`sample_indices` are drawn from: :data:`TRIPLET_REACH`
    (the official jump 10), whatever the arguments -- samples are drawn within those frames."""
    return TRIPLET_REACH


def grown_indices(n_frames: int, num_frames: int, max_jump: int, rng: np.random.Generator) -> list[int]:
    """Sorted frame indices of one sample grown from frame 0 (XMem's training sampler, also used for Cutie).

    Each new frame is drawn uniformly from the not-yet-chosen frames within ``max_jump`` of a chosen
    one, so 8-frame samples reach at most 7 * max_jump frames into the video.  A video shorter than
    the sample repeats its last chosen frame.
    """
    if num_frames == 1:
        return [0]
    if n_frames < 2:
        raise ValueError(f"a {num_frames}-frame sample needs a video with at least 2 frames, got {n_frames}")
    chosen = [0]
    reachable = set(range(1, min(n_frames, max_jump + 1)))
    while len(chosen) < num_frames and reachable:
        pick = int(rng.choice(sorted(reachable)))
        chosen.append(pick)
        reachable |= set(range(max(0, pick - max_jump), min(n_frames, pick + max_jump + 1)))
        reachable -= set(chosen)
    chosen.sort()
    chosen += [chosen[-1]] * (num_frames - len(chosen))
    return chosen


def grown_reach(num_frames: int, max_jump: int) -> int:
    """Frames 0..this-1 are the only ones :func:`grown_indices` can reach."""
    return 1 + (num_frames - 1) * max_jump


def label_presence(labels: torch.Tensor, n_classes: int) -> np.ndarray:
    """(T, H, W) class maps -> bool (T, n_classes): which classes each frame shows (one device sync)."""
    t = labels.shape[0]
    flat = labels.reshape(t, -1).long().clamp_(max=n_classes - 1)
    counts = torch.zeros(t, n_classes, dtype=torch.long, device=labels.device)
    counts.scatter_add_(1, flat, torch.ones_like(flat))
    return (counts > 0).cpu().numpy()


def sample_triplet(presence: np.ndarray, *, num_frames: int = 3, max_jump: int = 10, check_last: bool = True,
                   max_obj: int = 6, rng: np.random.Generator,
                   indices_fn: Callable[..., list[int]] | None = None) -> tuple[list[int], list[int]]:
    """Choose (frame indices, object classes) for one sample.

    ``presence`` (T, K+1) says which classes each frame's pseudo-label shows; row 0 is the given
    mask.  Objects: a random choice of at most ``max_obj`` of frame 0's objects (their order only
    matters when there are more than ``max_obj``).  ``indices_fn(n_frames, num_frames, max_jump,
    rng)`` replaces :func:`sample_indices` for models whose samples have another shape (XMem's
    octuplets).
    """
    n_frames = presence.shape[0]
    all_labels = int(presence[0].sum())
    draw = indices_fn or sample_indices
    trials = 0
    while True:
        idx = draw(n_frames, num_frames, max_jump, rng)
        first, last = presence[idx[0]], presence[idx[-1]]
        objects = np.flatnonzero(first[1:]) + 1
        if len(objects) == 0:
            raise ValueError("the first frame shows no object; nothing to train on")
        targets = rng.choice(objects, min(len(objects), max_obj), replace=False)
        if not check_last or last[targets].all():
            break
        if all_labels == first.sum() == last.sum():
            break
        if trials > _LIMIT // 2 and all_labels == first.sum():
            break
        trials += 1
        if trials >= _LIMIT:
            break
    if (check_last and first.sum() != last.sum()) or trials >= _LIMIT:
        idx[-1] = idx[0]
    return idx, [int(t) for t in targets]


def _pad(x: torch.Tensor, d: int) -> torch.Tensor:
    return pad_divide_by(x, d)[0]


def build_batch(images: torch.Tensor, labels: torch.Tensor, samples: list[tuple[list[int], list[int]]],
                n_objects: int, pad: int = 16) -> dict[str, torch.Tensor]:
    """Stack samples into the batch dict of the hook protocol (see :mod:`models.ttt`).

    ``images`` (T, 3, H, W) normalised, ``labels`` (T, H, W) class maps 0..K, both unpadded on the
    device; ``samples`` from :func:`sample_triplet`.  One object gets a dummy second object
    (selector 0); with more than ``max_obj`` objects the chosen ones become classes 1..O and the
    others background, while the "others" masks still count every object (official behaviour).
    """
    rgb, gt, sec, sel, cls = [], [], [], [], []
    classes = torch.arange(1, n_objects + 1, device=labels.device).view(-1, 1, 1, 1)
    for idx, targets in samples:
        frames = _pad(images[idx], pad)
        maps = _pad(labels[idx].long(), pad)  # (T, H, W)
        onehot = (maps.unsqueeze(0) == classes).to(images.dtype).unsqueeze(2)  # (K, T, 1, H, W)
        if n_objects == 1:
            masks = torch.cat([onehot, torch.zeros_like(onehot)])
            others = torch.cat([torch.zeros_like(onehot), onehot])
            selector = torch.tensor([1.0, 0.0], device=images.device, dtype=images.dtype)
            cls_gt = maps
        else:
            others = onehot.sum(0, keepdim=True) - onehot
            selector = torch.ones(len(targets), device=images.device, dtype=images.dtype)
            if len(targets) < n_objects:
                order = [t - 1 for t in targets]
                masks, others = onehot[order], others[order]
                cls_gt = torch.zeros_like(maps)
                for i, t in enumerate(targets):
                    cls_gt[maps == t] = i + 1
            else:
                masks, cls_gt = onehot, maps
        rgb.append(frames)
        gt.append(masks)
        sec.append(others)
        sel.append(selector)
        cls.append(cls_gt)
    return {"rgb": torch.stack(rgb), "gt": torch.stack(gt), "sec_gt": torch.stack(sec),
            "selector": torch.stack(sel), "cls_gt": torch.stack(cls)}
