"""e-OSVOS's test-time procedure (official ``evaluate()``, spec §3): per object, reset to the
meta-learned initialisation, fine-tune on frame 0, segment the following frames with box proposals
extended from the previous frame's mask, optionally adapt online every ``ona_step`` frames, and merge
the objects (background where every object's probability is below 0.5, else the first maximum).
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import torch

from models.eosvos.finetune import finetune_step, seed_all, training_batch
from models.eosvos.network import MaskRCNN, targets_from_mask

__all__ = ["Schedule", "ObjectRun", "segment_object", "merge_objects", "segment_frames"]


@dataclass(frozen=True)
class Schedule:
    """The settings of one e-OSVOS run (DAVIS-2017 configs: seed 1, batch 3, augmentation on)."""

    num_epochs: int = 10            # fine-tuning steps on frame 0 (10 / 50 / 100)
    batch_size: int = 3             # copies of frame 0 per step (``batch_sizes.train``)
    augment: bool = True            # ``random_train_transform``
    seed: int = 1
    ona_step: int = 0               # online adaptation every this many frames (0: off; OnA configs: 5)
    ona_epochs: int = 10            # steps of each online adaptation
    min_prop: float = 0.5           # probability threshold of the propagated masks


@dataclass
class ObjectRun:
    """Per-object result: probabilities ``[T,H,W]`` (frame 0 = 2 * mask, as stored officially) and costs."""

    probs: torch.Tensor
    finetune_s: float = 0.0
    segment_s: float = 0.0
    train_losses: list[dict[str, float]] = field(default_factory=list)
    boxes: dict[int, np.ndarray] = field(default_factory=dict)


def _frame_tensor(frame: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    """uint8 (H,W,3) RGB -> contiguous float (3,H,W) in [0,1], computed as the official reader does."""
    img = frame.astype(np.float32) / 255.0
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).to(dtype)


def _segment_range(model: MaskRCNN, frames: np.ndarray, first: int, stop: int,
                   start_targets: torch.Tensor | None, dtype: torch.dtype, run: ObjectRun) -> None:
    """The official ``run_loader``: frames ``[first, stop)``, EXTEND proposals from the previous mask."""
    torch.empty((), dtype=torch.int64).random_()  # the test DataLoader's base seed
    if start_targets is not None and float(start_targets.sum()) == 0:
        start_targets = None
    targets = None if start_targets is None else start_targets.clone()
    model.eval()
    with torch.no_grad():
        for t in range(first, stop):
            out = model.detect([_frame_tensor(frames[t], dtype)],
                               None if targets is None else [targets_from_mask(targets)])[0]
            hit = torch.nonzero(out["labels"] == 1)
            if hit.numel():
                prob = out["masks"][hit[0, 0], 0]
                run.boxes[t] = out["boxes"][hit[0, 0]].numpy()
            else:
                prob = torch.zeros(frames.shape[1:3], dtype=dtype)
            run.probs[t] = prob.to(torch.float32)
            nxt = (prob >= 0.5).to(torch.float32)
            targets = nxt if float(nxt.sum()) != 0 else start_targets


def segment_object(model: MaskRCNN, init: Mapping[str, torch.Tensor], lrs: Mapping[str, torch.Tensor],
                   frames: np.ndarray, mask0: np.ndarray, schedule: Schedule,
                   dtype: torch.dtype = torch.float32) -> ObjectRun:
    """Fine-tune from ``init`` on frame 0 with binary ``mask0`` and segment frames 1..T-1 of one object."""
    T = frames.shape[0]
    gt0 = mask0.astype(np.float32)
    run = ObjectRun(probs=torch.zeros((T,) + frames.shape[1:3], dtype=torch.float32))
    run.probs[0] = 2 * torch.from_numpy(gt0)
    step = schedule.ona_step if schedule.ona_step else T
    image0 = frames[0].astype(np.float32) / 255.0
    first_step_state = None
    lo = hi = 1
    for chunk in range(len(range(1, T, step)) if T > 1 else 0):
        if chunk == 0:
            hi = lo
        else:
            lo = hi
        hi = min(hi + step, T)
        if chunk == 0:
            model.load_state_dict(dict(init))
            epochs = schedule.num_epochs
        else:
            model.load_state_dict(first_step_state)
            epochs = schedule.ona_epochs
            propagate = (run.probs[lo - 1] >= schedule.min_prop).to(torch.float32)
            prop_masks = {j: (run.probs[lo - j] >= schedule.min_prop).numpy().astype(np.float32)
                          for j in range(1, schedule.ona_step)}
        model.to(dtype)
        t0 = time.perf_counter()
        for epoch in range(1, epochs + 1):
            seed_all(schedule.seed + epoch + chunk)
            if chunk == 0:
                images, gts = training_batch(image0, gt0, schedule.batch_size, schedule.augment, dtype)
            else:
                images, gts = training_batch(image0, gt0, schedule.batch_size, False, dtype)
                images, gts = images[:1], gts[:1]
                n_prop = min(schedule.ona_step, schedule.batch_size)
                for j in range(schedule.ona_step - n_prop + 1, schedule.ona_step):
                    pm = prop_masks[j]
                    if (pm == 1.0).sum() == 0:
                        continue
                    pim, pgt = training_batch(frames[lo - j].astype(np.float32) / 255.0, pm,
                                              schedule.batch_size, False, dtype)
                    images.append(pim[0])
                    gts.append(pgt[0])
            run.train_losses.append(finetune_step(model, lrs, images, gts))
        if epochs:  # no step, no fine-tuning cost (not the microseconds of an empty loop)
            run.finetune_s += time.perf_counter() - t0
        if chunk == 0:
            first_step_state = copy.deepcopy(model.state_dict())
            start = torch.from_numpy(gt0)
        else:
            start = propagate
        t0 = time.perf_counter()
        _segment_range(model, frames, lo, hi, start, dtype, run)
        run.segment_s += time.perf_counter() - t0
        if hi == T:
            break
    return run


def merge_objects(probs: torch.Tensor) -> torch.Tensor:
    """``[K,T,H,W]`` per-object probabilities -> ``[T,H,W]`` labels 0..K (0 where all are < 0.5)."""
    labels = probs.argmax(dim=0) + 1
    labels[probs.max(dim=0)[0] < 0.5] = 0
    return labels.to(torch.uint8)


def segment_frames(model: MaskRCNN, init: Mapping[str, torch.Tensor], lrs: Mapping[str, torch.Tensor],
                   frames: np.ndarray, first_mask: np.ndarray, schedule: Schedule,
                   dtype: torch.dtype = torch.float32) -> tuple[list[int], list[ObjectRun]]:
    """Every object of ``first_mask`` (sorted ids), processed independently; returns ids and runs."""
    ids = [int(k) for k in np.unique(first_mask) if k not in (0, 255)]
    return ids, [segment_object(model, init, lrs, frames, first_mask == k, schedule, dtype) for k in ids]
