"""k-NN label propagation exactly as the CRW evaluation protocol does it (spec: labelprop.md §2-§5).

Why a re-implementation and not a port: the reference builds the dense affinity between every
query cell and every cell of all m+1 context frames (3.5 GB per 480p frame) and only then masks
it by the radius.  Here the short-term slots are scored window by window -- query tiles of
``TILE``x``TILE`` cells against the ``(TILE+2r)^2`` keys that can lie within the radius -- so
memory is bounded by the local window, while the long-term first-frame slot (never restricted)
is scored densely in query chunks.  The joint top-k over all slots is then recovered exactly from
per-slot top-k lists, because the top-k of a union is the top-k of the union of per-part top-ks.

Behaviour kept on purpose because the goldens depend on it:

* the context of frame ``t`` is the first frame (unrestricted) plus the frames ``t-m..t-1`` where
  negative indices stand for repeated copies of frame 0 (restricted by the radius), and every
  copy counts as a separate top-k candidate;
* top-k is taken jointly over all slots, then softmax(score / temperature) over the k kept;
* the soft label maps are fed back as they came out (no argmax, no renormalisation);
* labels are moved to and from the stride-8 grid with OpenCV's bilinear resize (half-pixel
  centres, no antialiasing), as the reference does;
* frame 0's output is the down/up-sampled first-frame annotation.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Iterator

import cv2
import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "propagate",
    "propagate_soft",
    "FrameFeatures",
    "context_frames",
    "label_values_of",
    "labels_to_grid",
    "upsample_soft",
    "soft_to_labels",
]

#: query tile edge (grid cells) of the windowed short-term scoring (12 was fastest at 480p on CPU)
TILE = 12
#: query rows per chunk of the dense (long-term) scoring
DENSE_CHUNK = 1024


def label_values_of(first_labels: np.ndarray) -> np.ndarray:
    """Channel -> label id: background 0 first, then the first frame's objects in ascending id.

    255 (DAVIS void) is not an object; its pixels count as background.  Objects that only appear
    after the first frame cannot be predicted (as in the reference).
    """
    ids = np.unique(np.asarray(first_labels))
    ids = ids[(ids != 0) & (ids != 255)]
    return np.concatenate([[0], ids]).astype(np.int64)


def _resize(maps: np.ndarray, height: int, width: int) -> np.ndarray:
    """OpenCV bilinear resize of an (h, w, K) float32 stack, keeping the channel axis."""
    out = cv2.resize(np.ascontiguousarray(maps, dtype=np.float32), (width, height),
                     interpolation=cv2.INTER_LINEAR)
    return out.reshape(height, width, maps.shape[2])


def labels_to_grid(first_labels: np.ndarray, label_values: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """One-hot of ``first_labels`` over ``label_values``, bilinearly resized to ``grid`` -> (h, w, K)."""
    labels = np.asarray(first_labels)
    if labels.ndim != 2:
        raise ValueError(f"first_labels must be an (H, W) label map, got shape {labels.shape}")
    index = np.zeros(labels.shape, dtype=np.int64)  # void and unknown values -> background
    for channel, value in enumerate(label_values):
        index[labels == value] = channel
    onehot = np.eye(len(label_values), dtype=np.float32)[index]
    return _resize(onehot, grid[0], grid[1])


def upsample_soft(soft: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(h, w, K) soft map -> (H, W, K) at frame size, OpenCV bilinear like the reference."""
    return _resize(soft, size[0], size[1])


def soft_to_labels(up: np.ndarray, label_values: np.ndarray) -> np.ndarray:
    """argmax over channels (first channel wins ties, as np.argmax) -> label ids (uint8)."""
    return np.asarray(label_values, dtype=np.uint8)[np.argmax(up, axis=-1)]


def context_frames(t: int, context: int) -> list[int]:
    """Real frame index of each of the m+1 context slots of target ``t`` (slot 0: long-term frame 0)."""
    return [0] + [max(0, s) for s in range(t - context, t)]


# ----------------------------------------------------------------------------------------------
# scoring


@dataclass
class _Candidates:
    """Per-query top-k of one context source: scores and flat key positions, (P, k') each."""
    score: torch.Tensor
    pos: torch.Tensor
    frame: int
    copies: int


def _dense_topk(query: torch.Tensor, keys: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k over every key cell for each query cell; query/keys (P, C) -> (P, k) scores, positions."""
    k = min(k, keys.shape[0])
    scores, positions = [], []
    for start in range(0, query.shape[0], DENSE_CHUNK):
        s = query[start:start + DENSE_CHUNK] @ keys.T
        v, i = s.topk(k, dim=1)
        scores.append(v)
        positions.append(i)
    return torch.cat(scores), torch.cat(positions)


class _Windows:
    """Static geometry of the windowed (radius-restricted) scoring for one grid size and radius."""

    def __init__(self, h: int, w: int, radius: float, device: torch.device) -> None:
        self.h, self.w = h, w
        self.r = max(0, math.ceil(radius) - 1)  # largest |offset| that can satisfy dist < R
        self.win = TILE + 2 * self.r
        self.nti, self.ntj = -(-h // TILE), -(-w // TILE)
        self.hq, self.wq = self.nti * TILE, self.ntj * TILE
        a = torch.arange(TILE, device=device)
        u = torch.arange(self.win, device=device)
        # offset between query cell a (in tile) and key cell u (in window): u - r - a
        d_row = (u[None, :] - self.r - a[:, None]).float()  # (TILE, win)
        dist2 = d_row[:, None, :, None] ** 2 + d_row[None, :, None, :] ** 2  # (a, b, u, v)
        inside = dist2 < float(radius) ** 2
        self.radius_bias = torch.where(inside, 0.0, -math.inf).reshape(TILE * TILE, self.win * self.win)
        # which window cells are real grid cells, per tile: (nti, ntj, win*win)
        valid = torch.zeros(self.hq + 2 * self.r, self.wq + 2 * self.r, device=device)
        valid[self.r:self.r + h, self.r:self.r + w] = 1
        self.valid = valid.unfold(0, self.win, TILE).unfold(1, self.win, TILE).reshape(
            self.nti, self.ntj, self.win * self.win) > 0
        # flat key position of every window cell, per tile (clamped where invalid)
        rows = (torch.arange(self.nti, device=device)[:, None] * TILE + u[None, :] - self.r)
        cols = (torch.arange(self.ntj, device=device)[:, None] * TILE + u[None, :] - self.r)
        pos = rows.clamp(0, h - 1)[:, None, :, None] * w + cols.clamp(0, w - 1)[None, :, None, :]
        self.key_pos = pos.reshape(self.nti, self.ntj, self.win * self.win)
        self.biases = [self.band_bias(ti) for ti in range(self.nti)]
        # small grids: one window would cover the whole grid, so score densely with a mask
        self.dense_bias = None
        if self.win * self.win >= h * w:
            rr = torch.arange(h, device=device).repeat_interleave(w).float()
            cc = torch.arange(w, device=device).repeat(h).float()
            near = (rr[:, None] - rr[None]) ** 2 + (cc[:, None] - cc[None]) ** 2 < float(radius) ** 2
            self.dense_bias = torch.where(near, 0.0, -math.inf)  # (query, key)

    def band_bias(self, ti: int) -> torch.Tensor:
        """Additive mask (ntj, TILE^2, win^2): -inf outside the radius or outside the grid."""
        invalid = torch.where(self.valid[ti], 0.0, -math.inf)
        return self.radius_bias[None] + invalid[:, None, :]

    def query_tiles(self, feat: torch.Tensor) -> torch.Tensor:
        """(C, h, w) -> (nti, ntj, TILE^2, C) query tiles (zero-padded to whole tiles)."""
        c = feat.shape[0]
        padded = F.pad(feat, (0, self.wq - self.w, 0, self.hq - self.h))
        tiles = padded.reshape(c, self.nti, TILE, self.ntj, TILE).permute(1, 3, 2, 4, 0)
        return tiles.reshape(self.nti, self.ntj, TILE * TILE, c)

    def pad_keys(self, feat: torch.Tensor) -> torch.Tensor:
        """(C, h, w) -> zero-padded (C, hq + 2r, wq + 2r) so every window is a slice."""
        return F.pad(feat, (self.r, self.wq - self.w + self.r, self.r, self.hq - self.h + self.r))

    def key_band(self, padded: torch.Tensor, ti: int) -> torch.Tensor:
        """Key windows of tile row ``ti`` from :meth:`pad_keys` output: (ntj, C, win^2)."""
        c = padded.shape[0]
        windows = padded[:, ti * TILE:ti * TILE + self.win].unfold(2, self.win, TILE)  # (C, win, ntj, win)
        return windows.permute(2, 0, 1, 3).reshape(self.ntj, c, self.win * self.win)

    def tiles_to_flat(self, x: torch.Tensor) -> torch.Tensor:
        """(nti, ntj, TILE^2, k) in tile layout -> (P, k) in row-major grid order."""
        k = x.shape[-1]
        x = x.reshape(self.nti, self.ntj, TILE, TILE, k).permute(0, 2, 1, 3, 4)
        return x.reshape(self.hq, self.wq, k)[:self.h, :self.w].reshape(self.h * self.w, k)


def _local_topk(geom: _Windows, q_tiles: torch.Tensor | None, q_flat: torch.Tensor, key_feat: torch.Tensor,
                k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k among the keys strictly within the radius of each query cell -> (P, k) scores, positions."""
    if geom.dense_bias is not None:
        scores = q_flat @ key_feat.flatten(1) + geom.dense_bias
        return scores.topk(min(k, scores.shape[1]), dim=1)
    k = min(k, geom.win * geom.win)
    scores, positions = [], []
    padded = geom.pad_keys(key_feat)
    for ti in range(geom.nti):
        s = torch.bmm(q_tiles[ti], geom.key_band(padded, ti)) + geom.biases[ti]
        v, i = s.topk(k, dim=2)
        scores.append(v)
        positions.append(torch.gather(geom.key_pos[ti][:, None, :].expand(-1, TILE * TILE, -1), 2, i))
    return geom.tiles_to_flat(torch.stack(scores)), geom.tiles_to_flat(torch.stack(positions))


def _candidates_for(t: int, frame_feat: Callable[[int], torch.Tensor], *, k: int, context: int,
                    geom: _Windows | None) -> Iterator[_Candidates]:
    """Per-source top-k lists whose union holds the joint top-k of target ``t``'s context."""
    query_map = frame_feat(t)
    query = query_map.flatten(1).T
    first = frame_feat(0)
    v, i = _dense_topk(query, first.flatten(1).T, k)  # long-term slot 0: frame 0, never restricted
    yield _Candidates(v, i, 0, 1)
    short = context_frames(t, context)[1:]
    q_tiles = None if geom is None or geom.dense_bias is not None else geom.query_tiles(query_map)
    for frame in sorted(set(short)):
        copies = min(short.count(frame), k)  # more than k equal copies can never all be kept
        if geom is None:  # no radius: short-term slots are unrestricted too
            v, i = _dense_topk(query, frame_feat(frame).flatten(1).T, k)
        else:
            v, i = _local_topk(geom, q_tiles, query, frame_feat(frame), k)
        yield _Candidates(v, i, frame, copies)


class FrameFeatures:
    """Feature maps as seen by each target frame.

    The plain case is one (T, C, h, w) tensor; test-time training swaps encoders during the video,
    so a subclass may return different maps of the same frame for different targets.
    """

    def __init__(self, features: torch.Tensor) -> None:
        if features.ndim != 4:
            raise ValueError(f"features must be (T, C, h, w), got shape {tuple(features.shape)}")
        self.features = features
        self.n_frames = features.shape[0]
        self.grid = tuple(features.shape[2:])
        self.device = features.device

    def for_target(self, t: int) -> Callable[[int], torch.Tensor]:
        """frame index -> L2-normalised (C, h, w) map used while propagating to target ``t``.

        Normalised on access (cheap next to the scoring) so no second copy of a whole video's
        features is ever held.
        """
        return lambda frame: F.normalize(self.features[frame].float(), dim=0)


# ----------------------------------------------------------------------------------------------
# propagation


def propagate_soft(features: torch.Tensor | FrameFeatures, first_soft: torch.Tensor, *, k: int = 10,
                   radius: float | None = 12, context: int = 20, temperature: float = 0.07,
                   return_neighbours: bool = False, progress: bool = False,
                   timings: list[float] | None = None,
                   later: dict[int, tuple[torch.Tensor, torch.Tensor]] | None = None) -> dict[str, torch.Tensor]:
    """Propagate grid-level soft labels through a video.

    features: (T, C, h, w) float (normalised here along C) or a :class:`FrameFeatures`;
    first_soft: (h, w, K) frame-0 labels on the grid.  Returns ``soft`` (T, h, w, K); with
    ``return_neighbours`` also ``topk_weight``, ``topk_frame`` and ``topk_pos`` (T, k, h*w) in
    descending weight order (row 0 is what the reference computes for frame 0 and discards).
    ``timings``, if given, receives the seconds spent on each target frame (for benchmarks).
    ``later`` = {t: (coverage (h, w), objects (h, w, K))}: masks given on frame t > 0; after propagating
    to t, the soft labels become ``soft * (1 - coverage) + objects`` (the given objects replace what
    was propagated under them; the rest is kept), and later frames propagate from that.
    """
    source = features if isinstance(features, FrameFeatures) else FrameFeatures(torch.as_tensor(features))
    if k < 1 or context < 0 or temperature <= 0:
        raise ValueError(f"need k >= 1, context >= 0, temperature > 0; got k={k}, context={context}, "
                         f"temperature={temperature}")
    n, (h, w), device = source.n_frames, source.grid, source.device
    if tuple(first_soft.shape[:2]) != (h, w):
        raise ValueError(f"first-frame labels on grid {tuple(first_soft.shape[:2])} do not match features {(h, w)}")
    with torch.no_grad():
        n_labels = first_soft.shape[-1]
        soft = torch.zeros(n, h * w, n_labels, device=device)
        soft[0] = first_soft.reshape(h * w, n_labels).to(device, torch.float32)
        geom = None if radius is None or math.isinf(radius) else _Windows(h, w, radius, device)
        neighbours = {key: [] for key in ("topk_weight", "topk_frame", "topk_pos")}
        targets = range(0 if return_neighbours else 1, n)
        if progress:
            from tqdm import tqdm
            targets = tqdm(targets, desc="propagate", unit="frame")
        for t in targets:
            started = time.perf_counter()
            # running joint top-k, merged source by source (memory O(P k), not O(P k m))
            top = torch.full((h * w, k), -math.inf, device=device)
            frame = torch.zeros(h * w, k, dtype=torch.long, device=device)
            pos = torch.zeros(h * w, k, dtype=torch.long, device=device)
            for cand in _candidates_for(t, source.for_target(t), k=k, context=context, geom=geom):
                scores = torch.cat([top] + [cand.score] * cand.copies, 1)
                frames = torch.cat([frame] + [torch.full_like(cand.pos, cand.frame)] * cand.copies, 1)
                positions = torch.cat([pos] + [cand.pos] * cand.copies, 1)
                top, pick = scores.topk(k, dim=1)
                frame = torch.gather(frames, 1, pick)
                pos = torch.gather(positions, 1, pick)
            # fewer than k real candidates (tiny grids): the -inf fillers get weight 0
            weight = torch.softmax(top / temperature, dim=1)
            if t > 0:
                labels = soft.reshape(n * h * w, n_labels)[frame * (h * w) + pos]  # (P, k, K)
                soft[t] = torch.einsum("pk,pkl->pl", weight, labels)
                if later is not None and t in later:
                    coverage, objects = later[t]
                    soft[t] = (soft[t] * (1 - coverage.reshape(h * w, 1).to(device))
                               + objects.reshape(h * w, n_labels).to(device))
            if return_neighbours:
                neighbours["topk_weight"].append(weight.T)
                neighbours["topk_frame"].append(frame.T)
                neighbours["topk_pos"].append(pos.T)
            if timings is not None:
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                timings.append(time.perf_counter() - started)
    out = {"soft": soft.reshape(n, h, w, n_labels)}
    if return_neighbours:
        out.update({key: torch.stack(value) for key, value in neighbours.items()})
    return out


def propagate(features: torch.Tensor | np.ndarray, first_labels: np.ndarray, *, k: int = 10,
              radius: float | None = 12, context: int = 20, temperature: float = 0.07,
              label_values: np.ndarray | None = None, return_neighbours: bool = False,
              return_probs: bool = False, progress: bool = False) -> dict[str, np.ndarray]:
    """CRW k-NN label propagation from per-frame features and the first-frame label map.

    features: (T, C, h, w) float tensor/array (any device); first_labels: (H, W) label ids at full
    resolution.  k: neighbours kept jointly over all context slots; radius: grid-distance limit
    (strictly less) for the short-term slots (None: unrestricted); context: m short-term slots;
    temperature: softmax temperature.  Returns numpy arrays: ``labels`` (T, H, W) uint8 label ids,
    ``soft`` (T, h, w, K) float32 grid maps, ``label_values`` (K,) channel -> id; with
    ``return_probs`` also ``probs`` (K, T, H, W) float32 upsampled maps; with
    ``return_neighbours`` the top-k weights/frames/positions (T, k, h*w).
    """
    feats = torch.as_tensor(features)
    first_labels = np.asarray(first_labels)
    values = label_values_of(first_labels) if label_values is None else np.asarray(label_values)
    h, w = feats.shape[-2:]
    first_soft = torch.from_numpy(labels_to_grid(first_labels, values, (h, w)))
    result = propagate_soft(feats, first_soft, k=k, radius=radius, context=context,
                            temperature=temperature, return_neighbours=return_neighbours,
                            progress=progress)
    soft = result["soft"].cpu().numpy()
    size = first_labels.shape
    labels = np.empty((soft.shape[0], *size), dtype=np.uint8)
    probs = np.empty((len(values), soft.shape[0], *size), dtype=np.float32) if return_probs else None
    for t in range(soft.shape[0]):
        up = upsample_soft(soft[t], size)
        labels[t] = soft_to_labels(up, values)
        if probs is not None:
            probs[:, t] = np.moveaxis(up, -1, 0)
    out = {"labels": labels, "soft": soft, "label_values": values}
    if probs is not None:
        out["probs"] = probs
    for key in ("topk_weight", "topk_frame", "topk_pos"):
        if key in result:
            out[key] = result[key].cpu().numpy()
    return out
