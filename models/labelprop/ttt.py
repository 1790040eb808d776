"""Test-time training for label propagation: CRW's contrastive random walk on the test video.

The CRW authors describe (paper, as summarised in spec labelprop.md §7) fine-tuning the encoder
on the test video with Adam at lr 1e-4, every 5 timesteps, 100 updates on the frames t-m..t+m
(m = 10), but never released the code.  This module is OUR READING of that description:

* objective: the CRW training loss (``crw_cycle_loss``): clips of ``clip_len`` consecutive
  frames drawn from the window, one random resized crop per clip (area 0.8-0.95) resized to
  ``crop``, a grid of ``patch``-sized patches at ``patch_stride`` each jittered by its own random
  resized crop (area 0.7-0.9); node = spatial mean of the encoder map of a patch, L2-normalised
  (no projection head: the layer3 features used for propagation are adapted directly, i.e.
  CRW's ``head_depth = -1``); palindrome walks of length 2..clip_len-1 with edge dropout, loss =
  cross-entropy of returning to the start node;
* schedule: adaptation points at t = 0, every, 2*every, ...; at each point ``iterations`` Adam
  updates on clips from frames max(0, t-window)..min(T-1, t+window) (future frames included, so
  the method is not causal, as in the paper); updates accumulate from point to point
  (``reset=True`` restarts each point from the original weights);
* BatchNorm statistics stay frozen (eval mode); its affine parameters are trained;
* propagation: targets t in [p, p+every) use the encoder adapted at point p for every frame
  they look at (query and context are re-encoded with that encoder, so each affinity compares
  features of one encoder).
"""
from __future__ import annotations

import copy
import math
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from models.labelprop.propagation import FrameFeatures

__all__ = ["adapt", "adapt_crw", "crw_cycle_loss", "clip_nodes", "ScheduledFeatures"]

EPS = 1e-20


def crw_cycle_loss(nodes: torch.Tensor, *, temperature: float = 0.05, edge_dropout: float = 0.1,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Contrastive random-walk loss of node embeddings (B, L, N, C) (L-normalised), L >= 3.

    Transitions are softmax(<v_t, v_t+1> / τ) forward and softmax of the transposed affinity
    backward, each with its own edge dropout; for every walk length ℓ = 2..L-1 the walk
    0 -> ℓ -> 0 must return to its start node.
    """
    b, length, n, _ = nodes.shape
    if length < 3:
        raise ValueError(f"the cycle loss needs clips of at least 3 frames, got {length}")
    affinity = torch.einsum("btnc,btmc->btnm", nodes[:, :-1], nodes[:, 1:])

    def stochastic(a: torch.Tensor) -> torch.Tensor:
        if edge_dropout > 0:
            drop = torch.rand(a.shape, generator=generator, device=a.device) < edge_dropout
            a = a.masked_fill(drop, -1e20)
        return torch.softmax(a / temperature, dim=-1)

    forward = [stochastic(affinity[:, i]) for i in range(length - 1)]
    backward = [stochastic(affinity[:, i].transpose(-1, -2)) for i in range(length - 1)]
    target = torch.arange(n, device=nodes.device).repeat(b)
    losses = []
    for i in range(1, length - 1):
        walk = forward[0]
        for step in forward[1:i + 1] + backward[:i + 1][::-1]:
            walk = walk @ step
        losses.append(F.nll_loss(torch.log(walk + EPS).flatten(0, 1), target))
    return torch.stack(losses).mean()


def _random_resized_boxes(count: int, scale: tuple[float, float], generator: torch.Generator) -> torch.Tensor:
    """Affine thetas (count, 2, 3) for square crops covering ``scale`` of the area, random position."""
    area = torch.empty(count).uniform_(*scale, generator=generator)
    side = area.sqrt()
    shift = (torch.rand(count, 2, generator=generator) * 2 - 1) * (1 - side)[:, None]
    theta = torch.zeros(count, 2, 3)
    theta[:, 0, 0] = side
    theta[:, 1, 1] = side
    theta[:, :, 2] = shift
    return theta


def clip_nodes(encoder: torch.nn.Module, clip: torch.Tensor, *, crop: int, patch: int,
               patch_stride: int, generator: torch.Generator) -> torch.Tensor:
    """Normalised images (L, 3, H, W) -> patch-node embeddings (L, N, C), L2-normalised."""
    length = clip.shape[0]
    theta = _random_resized_boxes(1, (0.8, 0.95), generator).to(clip.device).expand(length, 2, 3)
    grid = F.affine_grid(theta, (length, 3, crop, crop), align_corners=False)
    view = F.grid_sample(clip, grid, mode="bilinear", padding_mode="border", align_corners=False)
    patches = view.unfold(2, patch, patch_stride).unfold(3, patch, patch_stride)  # L,3,gh,gw,p,p
    n = patches.shape[2] * patches.shape[3]
    patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(length * n, 3, patch, patch)
    theta = _random_resized_boxes(length * n, (0.7, 0.9), generator).to(clip.device)
    grid = F.affine_grid(theta, patches.shape, align_corners=False)
    patches = F.grid_sample(patches, grid, mode="bilinear", padding_mode="border", align_corners=False)
    maps = encoder(patches)
    return F.normalize(maps.mean(dim=(2, 3)), dim=1).reshape(length, n, -1)


def adapt_crw(model, frames: np.ndarray, first_mask: np.ndarray | None = None, *,
              iterations: int = 100, lr: float = 1e-4, every: int = 5, window: int = 10,
              clip_len: int = 4, temperature: float = 0.05, edge_dropout: float = 0.1,
              crop: int = 256, patch: int = 64, patch_stride: int = 32, batch_size: int = 1,
              reset: bool = False, weight_decay: float = 0.0, seed: int = 0, progress: bool = False,
              kind: str | None = None, rounds: Any = None, jump: Any = None) -> Any:
    """Return an adapted copy of ``model`` whose ``segment`` follows the TTT schedule.

    ``first_mask`` is unused (the loss is self-supervised); ``weight_decay`` is Adam's (CRW: 0);
    ``kind`` must be ``"crw"`` or None;
    ``rounds`` and ``jump`` (STCN TTT options passed through ``models.ttt.adapt``) do not apply to
    this protocol and are ignored.
    """
    if kind not in (None, "crw"):
        raise ValueError(f"label propagation supports only the 'crw' test-time training, got {kind!r}")
    params = [p for p in model.encoder.parameters()]
    if not params:
        raise ValueError(f"the {model.encoder_name!r} encoder has no weights to adapt; "
                         "test-time training needs encoder='resnet18'")
    frames = np.asarray(frames)
    n_frames = len(frames)
    clip_len = min(clip_len, n_frames)
    if clip_len < 3:
        raise ValueError(f"CRW test-time training needs at least 3 frames, got {n_frames}")
    adapted = copy.deepcopy(model)
    adapted.ttt_schedule = None
    encoder = adapted.encoder
    original = copy.deepcopy(encoder.state_dict())
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(encoder.parameters(), lr=lr, weight_decay=weight_decay)
    points = list(range(0, n_frames, every))
    schedule = []
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(points) * iterations, desc="crw ttt", unit="step")
    for point in points:
        if reset:
            encoder.load_state_dict(original)
            optimizer = torch.optim.Adam(encoder.parameters(), lr=lr, weight_decay=weight_decay)
        lo = max(0, point - window)
        hi = min(n_frames - 1, point + window)
        length = min(clip_len, hi - lo + 1)
        if length < 3:  # window too short for a walk: widen it to clip_len frames
            lo = max(0, min(lo, n_frames - clip_len))
            hi, length = lo + clip_len - 1, clip_len
        encoder.eval()  # BatchNorm statistics stay frozen
        with torch.enable_grad():
            for _ in range(iterations):
                starts = torch.randint(lo, hi - length + 2, (batch_size,), generator=generator)
                clips = [encoder.preprocess(frames[s:s + length]) for s in starts.tolist()]
                nodes = torch.stack([clip_nodes(encoder, clip, crop=crop, patch=patch, patch_stride=patch_stride,
                                                generator=generator) for clip in clips])
                loss = crw_cycle_loss(nodes, temperature=temperature, edge_dropout=edge_dropout,
                                      generator=generator)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss.item():.3f}")
        schedule.append((point, {k: v.detach().clone() for k, v in encoder.state_dict().items()}))
    if bar is not None:
        bar.close()
    encoder.load_state_dict(schedule[-1][1])
    adapted.ttt_schedule = schedule
    return adapted.eval()


class ScheduledFeatures(FrameFeatures):
    """Features seen by each target under a TTT schedule: encoder of the latest point <= t."""

    def __init__(self, model, frames: np.ndarray) -> None:
        self.model = model
        self.frames = np.asarray(frames)
        self.schedule = model.ttt_schedule
        self.encoder = copy.deepcopy(model.encoder).eval()
        self.n_frames = len(self.frames)
        self.grid = (math.ceil(self.frames.shape[1] / 8), math.ceil(self.frames.shape[2] / 8))
        self.device = model.device
        self._point: int | None = None
        self._cache: dict[int, torch.Tensor] = {}

    def for_target(self, t: int) -> Callable[[int], torch.Tensor]:
        index = max(i for i, (start, _) in enumerate(self.schedule) if start <= t) if t > 0 else 0
        if index != self._point:
            self.encoder.load_state_dict(self.schedule[index][1])
            self._point = index
            self._cache = {}

        def feature(frame: int) -> torch.Tensor:
            if frame not in self._cache:
                with torch.no_grad():
                    raw = self.encoder.encode(self.frames[frame:frame + 1])[0]
                self._cache[frame] = F.normalize(raw.float(), dim=0)
            return self._cache[frame]

        return feature


#: the hook :class:`models.base.OwnTTT` calls: the whole TTT protocol of label propagation
adapt = adapt_crw
