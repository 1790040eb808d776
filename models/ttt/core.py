"""Losses, trainable sets and the per-video adaptation loop of test-time training.

The loop follows the official ``eval_all_datasets_ttt.py`` protocol (rounds of iterations, a new
Adam optimiser per round with weight decay 1e-7, tt-MCC pseudo-labels refreshed before every
round, BatchNorm in eval mode) but keeps everything in memory on the model's device: frames are
normalised once, pseudo-labels stay tensors, samples come from a seeded generator instead of a
16-worker data loader.  Work whose result is never used is skipped: the tt-MCC refresh before
round 1 repeats the initial pass with unchanged weights; tt-Ent / tt-AE never read pseudo-labels
(only frame 0's, which is the given mask); and since samples never reach past frame 20 and
inference is causal, tt-MCC pseudo-label passes stop at frame 20 instead of covering the video.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from tqdm.auto import tqdm

from models.inputs import check_frames
from models.ttt.checkpointing import checkpointed
from models.ttt.sampler import build_batch, label_presence, max_sampled_frames, sample_triplet

__all__ = ["KINDS", "normalise_kind", "trainable_parameters", "loss_from_batch", "loss", "adapt"]

KINDS = ("mcc", "ent", "ae")
_DEFAULT_FROZEN = {"mcc": None, "ent": "net,ubn", "ae": None}
_DEFAULT_FRAMES = {"mcc": 3, "ent": 3, "ae": 1}
#: preset keys that describe the run and are not adaptation parameters
PRESET_METADATA = ("description", "model", "checkpoint")


def normalise_kind(kind: str) -> str:
    """'mcc' / 'tt-mcc' / 'tt_MCC' -> 'mcc'."""
    k = str(kind).lower().replace("_", "-").removeprefix("tt-")
    if k not in KINDS:
        raise ValueError(f"unknown TTT loss {kind!r}; expected one of {', '.join(KINDS)} (or tt-<kind>)")
    return k


def _is_bn(module: nn.Module) -> bool:
    return isinstance(module, nn.modules.batchnorm._BatchNorm)


def trainable_parameters(vos: nn.Module, kind: str, frozen: str | None = "default") -> list[tuple[str, nn.Parameter]]:
    """(name, parameter) pairs that TTT of ``kind`` updates, in ``named_parameters`` order.

    ``frozen`` is the official freezing string applied token by token (``net`` freezes all,
    ``bn``/``ubn`` freeze/unfreeze BatchNorm weight and bias, model tokens such as ``dec`` or
    ``key_enc`` come from ``vos.ttt_freeze_groups()`` and ``u<token>`` unfreezes such a group); "default" means the released configs:
    nothing frozen for mcc/ae, ``net,ubn`` for ent.  The model itself is not modified.
    """
    kind = normalise_kind(kind)
    if frozen == "default":
        frozen = _DEFAULT_FROZEN[kind]
    names = [n for n, _ in vos.named_parameters()]
    train = dict.fromkeys(names, True)
    bn_params = {f"{m}.{p}" if m else p for m, mod in vos.named_modules() if _is_bn(mod)
                 for p, _ in mod.named_parameters(recurse=False)}
    groups = vos.ttt_freeze_groups() if hasattr(vos, "ttt_freeze_groups") else {}
    for token in (frozen or "").lower().split(","):
        token = token.strip()
        if not token:
            continue
        if token == "net":
            train = dict.fromkeys(names, False)
        elif token in ("bn", "ubn"):
            for n in bn_params:
                train[n] = token == "ubn"
        elif token in groups:
            for n in names:
                if any(n.startswith(p) for p in groups[token]):
                    train[n] = False
        elif token.startswith("u") and token[1:] in groups:  # u<group>: unfreeze that group again
            for n in names:
                if any(n.startswith(p) for p in groups[token[1:]]):
                    train[n] = True
        else:
            raise ValueError(f"unknown freezing token {token!r}; known: net, bn, ubn, {', '.join(groups)} "
                             "(u<group> unfreezes a group)")
    params = dict(vos.named_parameters())
    return [(n, params[n]) for n in names if train[n]]


def _entropy(logits: torch.Tensor) -> torch.Tensor:
    return -(F.softmax(logits, dim=1) * F.log_softmax(logits, dim=1)).sum(1).mean()


def loss_from_batch(vos: nn.Module, batch: dict[str, torch.Tensor], kind: str) -> torch.Tensor:
    """Scalar TTT loss of ``kind`` for a batch dict (see :mod:`models.ttt` for its layout)."""
    kind = normalise_kind(kind)
    if kind == "ae":
        return F.cross_entropy(vos.ttt_single(batch), batch["cls_gt"][:, 0])
    fwd, bwd = vos.ttt_cycle(batch, backwards=kind == "mcc")
    if kind == "mcc":
        return F.cross_entropy(bwd[-1], batch["cls_gt"][:, 0])
    return _entropy(torch.cat(fwd, 0))


def _class_map(first_mask: np.ndarray | torch.Tensor, device) -> tuple[torch.Tensor, int]:
    """Label map -> class map 0..K (sorted non-zero labels, 255 void = background), K."""
    m = torch.from_numpy(np.array(first_mask)).to(device).long()
    if m.dim() != 2:
        raise ValueError(f"first_mask must be a (H, W) label map, got shape {tuple(m.shape)}")
    ids = [int(v) for v in torch.unique(m).tolist() if v not in (0, 255)]
    if not ids:
        raise ValueError("first_mask contains no object (only background/void)")
    out = torch.zeros_like(m)
    for i, v in enumerate(ids, 1):
        out[m == v] = i
    return out, len(ids)


def loss(vos: nn.Module, frames: np.ndarray, first_mask: np.ndarray, kind: str, *,
         labels: np.ndarray | None = None, max_obj: int = 6, seed: int = 0) -> torch.Tensor:
    """TTT loss of ``kind`` on one sample given as uint8 RGB frames (T, H, W, 3).

    ``frames`` is the sampled triplet (frame 0 first) or, for ``ae``, the first frame (extra
    frames are ignored).  ``first_mask`` labels frame 0; ``labels`` optionally gives class maps
    of all sample frames (they do not change the loss).  Gradients flow into ``vos``.
    """
    kind = normalise_kind(kind)
    device = next(vos.parameters()).device
    frames = np.asarray(frames)
    if kind == "ae":
        frames = frames[:1]
    elif frames.shape[0] < 2:
        raise ValueError(f"tt-{kind} needs at least 2 frames (a triplet), got {frames.shape[0]}")
    images = vos.prepare(frames)
    cls0, k = _class_map(first_mask, device)
    maps = torch.zeros((frames.shape[0], *cls0.shape), dtype=torch.long, device=device)
    if labels is not None:
        maps[:] = torch.from_numpy(np.array(labels[: frames.shape[0]])).to(device).long()
    maps[0] = cls0
    presence = label_presence(maps[:1], k + 1)
    targets = np.random.default_rng(seed).choice(np.flatnonzero(presence[0, 1:]) + 1, min(k, max_obj),
                                                 replace=False)
    batch = build_batch(images, maps, [(list(range(frames.shape[0])), [int(t) for t in targets])], k,
                        getattr(vos, "ttt_pad", 16))
    return loss_from_batch(vos, batch, kind)


def _resize_short_side(frames: np.ndarray, resolution: int | None) -> np.ndarray:
    """Official sampling resize: shorter side -> ``resolution`` (bicubic); no-op if already there."""
    if resolution is None or min(frames.shape[1:3]) == resolution:
        return frames
    h, w = frames.shape[1:3]
    size = (resolution, int(resolution * w / h)) if h <= w else (int(resolution * h / w), resolution)
    return np.stack([np.asarray(Image.fromarray(f).resize(size[::-1], Image.BICUBIC)) for f in frames])


def _resize_labels(labels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(labels.shape[-2:]) == tuple(size):
        return labels
    return F.interpolate(labels[:, None].float(), size=size, mode="nearest-exact")[:, 0].to(labels.dtype)


def _adam(params: list[nn.Parameter], lr: float, weight_decay: float) -> torch.optim.Adam:
    """Adam (default betas/eps, L2 weight decay as in the official loop); the fused kernel when the
    device supports it -- same update up to float rounding, several times faster on CPU."""
    try:
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, ValueError):
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


def _delegate(hook, frames, first_mask, given: dict[str, Any], extra: dict[str, Any]) -> nn.Module:
    """A model that runs its own protocol (``test_time_adapt``) gets every parameter that differs from
    :func:`adapt`'s defaults, plus the extra ones (preset metadata left out)."""
    defaults = dict(jump=10, batch_size=1, num_frames=None, frozen="default", weight_decay=1e-7, max_obj=6,
                    resolution=None, segment=None, checkpointing=False, progress=False)
    params = {k: v for k, v in given.items() if k not in defaults or v != defaults[k]}
    params.update({k: v for k, v in extra.items() if k not in PRESET_METADATA})
    return hook(frames, first_mask, **params)


def _trainable_copy(vos: nn.Module, kind: str, frozen: str | None) -> tuple[nn.Module, list[nn.Parameter]]:
    """An eval-mode deep copy of ``vos`` whose chosen parameters (and only those) require gradients."""
    model = copy.deepcopy(vos).eval()
    chosen = {n for n, _ in trainable_parameters(model, kind, frozen)}
    for n, p in model.named_parameters():
        p.requires_grad_(n in chosen)
    return model, [p for n, p in model.named_parameters() if n in chosen]


@dataclasses.dataclass
class _Video:
    """The frames TTT works on: ``images`` (what pseudo-label inference reads) and ``train_images`` (the
    samples' frames, resized to the training resolution), both prepared by the model."""

    images: torch.Tensor
    train_images: torch.Tensor
    n_sampled: int

    @property
    def train_size(self) -> tuple[int, int]:
        return tuple(self.train_images.shape[-2:])


def _prepare_video(model: nn.Module, frames: np.ndarray, num_frames: int, jump: int,
                   resolution: int | None) -> _Video:
    """Prepare only the frames samples can reach: inference is causal and samples never reach past frame
    ``n_reach - 1`` (20 for triplets with jump 10), so pseudo-labels of those frames from a pass over them
    equal the official full-video pass where it matters."""
    reach = getattr(model, "ttt_max_sampled_frames", None)
    n_reach = reach(num_frames, jump) if callable(reach) else max_sampled_frames(num_frames, jump)
    n_sampled = 1 if num_frames == 1 else min(frames.shape[0], n_reach)
    sampled = frames[:n_sampled]
    images = model.prepare(sampled)
    train_frames = _resize_short_side(sampled, resolution)
    train_images = images if train_frames is sampled else model.prepare(train_frames)
    return _Video(images, train_images, n_sampled)


def _pseudo_labels(model: nn.Module, video: _Video, cls0: torch.Tensor, kind: str, segment: dict,
                   log: dict[str, Any]) -> torch.Tensor:
    """Class maps of the sampled frames at the training size: tt-MCC's pseudo-labels (the only loss that
    reads them, through ``check_last``); zeros for the others; frame 0 is always the given mask."""
    if kind == "mcc":
        labels = model.ttt_pseudo_labels(video.images, cls0, **segment).long()
        log["pseudo_label_passes"] += 1
    else:
        labels = torch.zeros((video.n_sampled, *cls0.shape), dtype=torch.long, device=cls0.device)
    labels[0] = cls0
    return _resize_labels(labels, video.train_size)


def _step(model: nn.Module, optimiser: torch.optim.Optimizer, batch: dict, kind: str,
          checkpointing: bool = False) -> float:
    """One optimiser step on one batch; returns the loss.  ``checkpointing``: the memory mode
    (:mod:`models.ttt.checkpointing`: the loss and its backward pass with the network's parts checkpointed)."""
    optimiser.zero_grad(set_to_none=True)
    with checkpointed(model) if checkpointing else contextlib.nullcontext():
        value = loss_from_batch(model, batch, kind)
        value.backward()
    optimiser.step()
    return float(value.detach())


def _release(model: nn.Module, vos: nn.Module) -> None:
    """Drop the gradients and give every parameter the ``requires_grad`` of the original model."""
    for _, p in model.named_parameters():
        p.grad = None
    for (_, p), (_, p0) in zip(model.named_parameters(), vos.named_parameters()):
        p.requires_grad_(p0.requires_grad)


def adapt(vos: nn.Module, frames: np.ndarray, first_mask: np.ndarray, kind: str, *, iterations: int,
          rounds: int, lr: float, jump: int = 10, batch_size: int = 1, seed: int,
          num_frames: int | None = None, frozen: str | None = "default", weight_decay: float = 1e-7,
          max_obj: int = 6, resolution: int | None = None, segment: dict | None = None,
          checkpointing: bool = False, progress: bool = False, **kw: Any) -> nn.Module:
    """Adapt a copy of ``vos`` to one video with TTT of ``kind``; ``vos`` itself is untouched.

    frames: uint8 RGB (T, H, W, 3); first_mask: uint8 (H, W) label map of frame 0.
    ``rounds`` x ``iterations`` optimiser steps (a new Adam per round, ``weight_decay`` 1e-7);
    samples of ``num_frames`` frames (3; 1 for ae) with jumps <= ``jump``; ``batch_size`` samples
    per step; ``resolution`` = shorter side the samples are resized to (official 480; None keeps
    the frames' size); ``segment`` = keyword arguments of the pseudo-label inference;
    ``checkpointing`` = the opt-in memory mode (activation checkpointing, :mod:`models.ttt.checkpointing`;
    not guaranteed bit-identical to the default, exact mode).  ``seed`` makes the run reproducible.  Preset metadata keys (description, model, checkpoint) are
    accepted and ignored so ``adapt(vos, f, m, seed=s, **load_preset(name))`` works.

    If ``vos`` defines ``test_time_adapt(frames, first_mask, **params)`` it does the whole job.
    The returned model carries ``ttt_log`` (losses, sampled frame indices, seconds, pseudo-label passes).
    """
    hook = getattr(vos, "test_time_adapt", None)
    if callable(hook):  # the model runs its own protocol; it gets every parameter we were given
        given = dict(kind=kind, iterations=iterations, rounds=rounds, lr=lr, jump=jump, batch_size=batch_size,
                     seed=seed, num_frames=num_frames, frozen=frozen, weight_decay=weight_decay,
                     max_obj=max_obj, resolution=resolution, segment=segment, checkpointing=checkpointing,
                     progress=progress)
        return _delegate(hook, frames, first_mask, given, kw)
    unknown = set(kw) - set(PRESET_METADATA)
    if unknown:
        raise TypeError(f"adapt() got unexpected keyword arguments: {', '.join(sorted(unknown))}")

    kind = normalise_kind(kind)
    num_frames = _DEFAULT_FRAMES[kind] if num_frames is None else int(num_frames)
    segment = dict(segment or {})
    frames = check_frames(frames)
    if kind != "ae" and frames.shape[0] < 2:
        raise ValueError(f"tt-{kind} needs a video of at least 2 frames, got {frames.shape[0]}")
    start = time.perf_counter()
    model, params_list = _trainable_copy(vos, kind, frozen)
    rng = np.random.default_rng(seed)
    cls0, k = _class_map(first_mask, next(model.parameters()).device)
    indices_fn = getattr(model, "ttt_sample_indices", None)  # models with their own sample shape (XMem)
    video = _prepare_video(model, frames, num_frames, jump, resolution)
    pad = getattr(model, "ttt_pad", 16)

    log: dict[str, Any] = {"kind": kind, "losses": [], "samples": [], "pseudo_label_passes": 0, "seed": seed,
                           "checkpointing": bool(checkpointing)}
    bar = tqdm(total=rounds * iterations, desc=f"tt-{kind}", disable=not progress, leave=False)
    labels = presence = None
    for r in range(rounds):
        if labels is None or kind == "mcc" and r > 0:  # tt-MCC refreshes its pseudo-labels every round
            labels = _pseudo_labels(model, video, cls0, kind, segment, log)
            presence = label_presence(labels, k + 1)
        optimiser = _adam(params_list, lr, weight_decay)
        for _ in range(iterations):
            samples = [sample_triplet(presence, num_frames=num_frames, max_jump=jump, check_last=kind == "mcc",
                                      max_obj=max_obj, rng=rng, indices_fn=indices_fn) for _ in range(batch_size)]
            log["samples"].append([idx for idx, _ in samples])
            batch = build_batch(video.train_images, labels, samples, k, pad)
            log["losses"].append(_step(model, optimiser, batch, kind, bool(checkpointing)))
            bar.update(1)
    bar.close()
    _release(model, vos)
    log["seconds"] = time.perf_counter() - start
    model.ttt_log = log
    return model.eval()
