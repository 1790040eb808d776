"""CRW's JHMDB pose propagation: joints as Gaussians on the feature grid, decoded by a top-3 mean
(spec jhmdb_vip.md §1.3-§1.5).

Encoding (frame 0 only): for joint j at 0-based pixel (x, y) of a W x H frame, the grid position is
``x_g = x * (crop / W) / 8``, ``y_g = y * (crop / H) / 8``; an *unnormalised* Gaussian (sigma 0.5 cells,
a 4x4 patch centred at its index 2, peak 1) is written over the joint's channel with its upper-left
corner at ``int(x_g - 3 sigma)`` (``int`` truncates toward zero, so near the top/left border the peak
moves one cell inwards), clipped at the grid border, and not drawn at all when it lies entirely
outside.  Channel 0 is background: 1 where every joint channel is exactly 0.  Channels do not sum to 1
and are never renormalised.

Decoding: per joint channel the top-3 cells by value (``torch.topk``), their values normalised to sum 1,
coordinate = the value-weighted mean of their (col, row) indices in grid units (no +0.5 offset);
(-1, -1) where the channel sums to exactly 0 (the joint is then invisible).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from models.labelprop.crop import encode_square, grid_of
from models.labelprop.encoders import STRIDE
from common.vocabulary import JHMDB_JOINTS  # JHMDB's 15 joints in pos_img order
from models.labelprop.propagation import propagate_soft

__all__ = ["JHMDB_JOINTS", "POSE_SETTINGS", "encode_joints", "decode_joints", "propagate_keypoints"]

#: the protocol's settings (CRW paper, supplementary E; the reference CLI's k, radius and crop)
POSE_SETTINGS = {"crop": 320, "context": 7, "k": 10, "radius": 12.0, "temperature": 0.07, "sigma": 0.5,
                 "decode_topk": 3}


def _draw_gaussian(channel: np.ndarray, x: float, y: float, sigma: float) -> None:
    """Write one unnormalised Gaussian patch over ``channel`` (h, w), as the reference places it."""
    h, w = channel.shape
    ul = (int(x - 3 * sigma), int(y - 3 * sigma))
    br = (int(x + 3 * sigma + 1), int(y + 3 * sigma + 1))
    if ul[0] >= w or ul[1] >= h or br[0] < 0 or br[1] < 0:
        return
    size = 6 * sigma + 1
    ax = np.arange(0, size, 1, float)
    centre = size // 2
    g = np.exp(-((ax[None, :] - centre) ** 2 + (ax[:, None] - centre) ** 2) / (2 * sigma ** 2))
    gx = max(0, -ul[0]), min(br[0], w) - ul[0]
    gy = max(0, -ul[1]), min(br[1], h) - ul[1]
    ix = max(0, ul[0]), min(br[0], w)
    iy = max(0, ul[1]), min(br[1], h)
    channel[iy[0]:iy[1], ix[0]:ix[1]] = g[gy[0]:gy[1], gx[0]:gx[1]]


def encode_joints(joints: np.ndarray, size: tuple[int, int], crop: int = 320, sigma: float = 0.5,
                  stride: int = STRIDE) -> np.ndarray:
    """Frame-0 label maps (g, g, 1 + J) float32 from 0-based pixel joints (J, 2) of an (H, W) frame.

    ``sigma`` > 0: Gaussians as in the module doc; ``sigma`` 0: one-hot at the truncated cell (the
    reference's other branch).
    """
    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 2 or joints.shape[1] != 2:
        raise ValueError(f"joints must be (J, 2) pixel (x, y), got shape {joints.shape}")
    height, width = size
    g = grid_of(crop) if stride == STRIDE else -(-crop // stride)
    maps = np.zeros((g, g, len(joints)), np.float64)
    for j, (x, y) in enumerate(joints):
        xg = x * float(crop) / float(width) / stride
        yg = y * float(crop) / float(height) / stride
        if sigma > 0:
            _draw_gaussian(maps[:, :, j], xg, yg, sigma)
        else:
            tx, ty = int(xg), int(yg)
            if 0 <= tx < g and 0 <= ty < g:
                maps[ty, tx, j] = 1.0
    background = (maps.sum(-1) == 0)[..., None].astype(np.float64)
    return np.concatenate([background, maps], -1).astype(np.float32)


def decode_joints(soft: np.ndarray | torch.Tensor, topk: int = 3) -> np.ndarray:
    """(h, w, 1 + J) propagated maps -> (J, 2) float32 (x, y) grid coordinates; (-1, -1) = invisible."""
    pred = torch.as_tensor(np.asarray(soft) if not torch.is_tensor(soft) else soft, dtype=torch.float32)[..., 1:]
    flat = pred.flatten(0, 1)
    k = min(flat.shape[0], topk)
    vals, ids = torch.topk(flat, k=k, dim=0)
    vals = vals / vals.sum(0)[None]
    xx, yy = ids % pred.shape[1], ids // pred.shape[1]
    coord = torch.stack([(xx * vals).sum(0), (yy * vals).sum(0)], dim=0)
    coord[:, flat.sum(0) == 0] = -1
    return coord.T.numpy().astype(np.float32)


def propagate_keypoints(model, frames: np.ndarray, joints0: np.ndarray, *, crop: int = 320, sigma: float = 0.5,
                        decode_topk: int = 3, k: int = 10, radius: float | None = 12.0, context: int = 7,
                        temperature: float = 0.07, return_soft: bool = False, return_neighbours: bool = False,
                        progress: bool = False) -> dict[str, Any]:
    """Track frame 0's joints through a video with ``model`` (a ``models.labelprop`` model).

    frames: uint8 (T, H, W, 3) RGB; joints0: (J, 2) 0-based pixel (x, y) of frame 0.  Returns ``grid``
    (T, J, 2) decoded grid coordinates (frame 0 decodes its own label map), ``grid_size`` (cells per side),
    with ``return_soft`` the propagated maps ``soft`` (T, g, g, 1 + J) and with ``return_neighbours`` the
    top-k ``topk_weight`` / ``topk_frame`` / ``topk_pos`` (T, k, g*g) of ``propagate_soft``.
    """
    frames = np.asarray(frames)
    feats = encode_square(model, frames, crop)
    g = feats.shape[-1]
    first = torch.from_numpy(encode_joints(joints0, frames.shape[1:3], crop=crop, sigma=sigma))
    if first.shape[0] != g:
        raise ValueError(f"crop {crop} gives a {first.shape[0]}-cell label grid but {g}-cell features")
    res = propagate_soft(feats, first, k=k, radius=radius, context=context, temperature=temperature,
                         return_neighbours=return_neighbours, progress=progress)
    soft = res["soft"].cpu()
    grid = np.stack([decode_joints(soft[t], decode_topk) for t in range(len(soft))])
    out: dict[str, Any] = {"grid": grid, "grid_size": int(g)}
    if return_soft:
        out["soft"] = soft.numpy()
    out.update({key: res[key].cpu().numpy() for key in ("topk_weight", "topk_frame", "topk_pos") if key in res})
    return out
