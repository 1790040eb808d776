"""Detection ops of torchvision's Mask R-CNN, written in plain PyTorch (torchvision is never imported).

Semantics follow ``shared/spec/eosvos_torchvision_ops.md``: the CPU kernels of RoIAlign
(``aligned=False``) and NMS, the box coder, the anchor generator, the resize/normalise transform,
``MultiScaleRoIAlign`` and ``paste_masks_in_image``.  Where torchvision 0.4 (what e-OSVOS was
trained with) and 0.28 differ, the function takes ``semantics="tv04" | "tv028"``.

Floating-point operations are written in the order of the reference so that float32 results are
bit-identical where the reference is deterministic (the RoIAlign forward accumulates the four
bilinear terms and the sample points in the kernel's order); gradients come from autograd.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

__all__ = [
    "SEMANTICS", "check_semantics", "roi_align", "nms", "batched_nms", "box_iou", "box_area", "clip_boxes_to_image",
    "remove_small_boxes", "encode_boxes", "decode_boxes", "BBOX_XFORM_CLIP", "cell_anchors", "grid_anchors",
    "level_of_boxes", "multiscale_roi_align", "roi_level_scales", "match", "sample_pos_neg", "normalize_image",
    "resized_size", "resize_image", "resize_boxes", "resize_masks", "batch_images", "paste_masks_in_image",
    "IMAGE_MEAN", "IMAGE_STD",
]

SEMANTICS = ("tv04", "tv028")
#: ``log(1000 / 16)``: the largest width/height log-delta a box decoder applies
BBOX_XFORM_CLIP = math.log(1000.0 / 16)
IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)
_ROI_CHUNK_SAMPLES = 1 << 22  # bound on (rois x samples x channels) gathered at once


def check_semantics(semantics: str) -> str:
    if semantics not in SEMANTICS:
        raise ValueError(f"semantics must be one of {SEMANTICS}, got {semantics!r}")
    return semantics


# --------------------------------------------------------------------------------------- RoIAlign
def _axis_samples(start: torch.Tensor, bin_size: torch.Tensor, pooled: int, grid: int, size: int):
    """Sample coordinates along one axis for every roi: low/high index, weights, validity.

    ``start``/``bin_size``: ``[K]``.  Returns tensors of shape ``[K, pooled, grid]``.
    """
    dtype = start.dtype
    p = torch.arange(pooled, dtype=dtype).view(1, pooled, 1)
    off = (torch.arange(grid, dtype=dtype) + 0.5).view(1, 1, grid)
    b = bin_size.view(-1, 1, 1)
    coord = start.view(-1, 1, 1) + p * b + off * b / float(grid)
    valid = (coord.double() >= -1.0) & (coord.double() <= float(size))
    coord = torch.where(coord <= 0, torch.zeros_like(coord), coord)
    low = coord.to(torch.int64)
    at_edge = low >= size - 1
    low = torch.where(at_edge, torch.full_like(low, size - 1), low)
    high = torch.where(at_edge, low, low + 1)
    coord = torch.where(at_edge, low.to(dtype), coord)
    frac = coord - low.to(dtype)
    return low, high, frac, 1.0 - frac, valid


def _roi_align_group(feat: torch.Tensor, x1, y1, x2, y2, out_h: int, out_w: int, scale: float, gh: int, gw: int):
    """RoIAlign of rois sharing one sampling grid on one image's feature map ``[C, H, W]``."""
    C, H, W = feat.shape
    sx, sy = x1 * scale, y1 * scale
    rw = torch.clamp(x2 * scale - sx, min=1.0)
    rh = torch.clamp(y2 * scale - sy, min=1.0)
    yl, yh, ly, hy, vy = _axis_samples(sy, rh / out_h, out_h, gh, H)
    xl, xh, lx, hx, vx = _axis_samples(sx, rw / out_w, out_w, gw, W)
    K = x1.shape[0]
    # [K, PH, gh, PW, gw]
    def bc_y(t):
        return t.view(K, out_h, gh, 1, 1)

    def bc_x(t):
        return t.view(K, 1, 1, out_w, gw)

    w1 = bc_y(hy) * bc_x(hx)
    w2 = bc_y(hy) * bc_x(lx)
    w3 = bc_y(ly) * bc_x(hx)
    w4 = bc_y(ly) * bc_x(lx)
    valid = bc_y(vy) & bc_x(vx)
    flat = feat.reshape(C, H * W)

    def gather(yi, xi):
        idx = (bc_y(yi) * W + bc_x(xi)).expand(K, out_h, gh, out_w, gw).reshape(-1)
        return flat[:, idx].view(C, K, out_h, gh, out_w, gw)

    val = w1 * gather(yl, xl) + w2 * gather(yl, xh)
    val = val + w3 * gather(yh, xl)
    val = val + w4 * gather(yh, xh)
    val = torch.where(valid, val, torch.zeros((), dtype=val.dtype))
    acc = None
    for iy in range(gh):
        for ix in range(gw):
            term = val[:, :, :, iy, :, ix]
            acc = term if acc is None else acc + term
    acc = acc / float(max(gh * gw, 1))
    return acc.permute(1, 0, 2, 3)  # [K, C, PH, PW]


def roi_align(features: torch.Tensor, rois: torch.Tensor, output_size: int | tuple[int, int],
              spatial_scale: float = 1.0, sampling_ratio: int = -1) -> torch.Tensor:
    """torchvision ``roi_align(..., aligned=False)``: ``features [N,C,H,W]``, ``rois [K,5]`` (b, x1, y1, x2, y2)."""
    out_h, out_w = (output_size, output_size) if isinstance(output_size, int) else output_size
    N, C, H, W = features.shape
    K = rois.shape[0]
    out = features.new_zeros((K, C, out_h, out_w))
    if K == 0:
        return out
    rois = rois.detach().to(features.dtype)
    scale = torch.tensor(spatial_scale, dtype=features.dtype)
    batch = rois[:, 0].to(torch.int64)
    x1, y1, x2, y2 = rois[:, 1], rois[:, 2], rois[:, 3], rois[:, 4]
    if sampling_ratio > 0:
        gh_all = torch.full((K,), sampling_ratio, dtype=torch.int64)
        gw_all = gh_all
    else:
        rh = torch.clamp(y2 * scale - y1 * scale, min=1.0)
        rw = torch.clamp(x2 * scale - x1 * scale, min=1.0)
        gh_all = torch.ceil(rh / out_h).to(torch.int64)
        gw_all = torch.ceil(rw / out_w).to(torch.int64)
    keys = torch.stack([batch, gh_all, gw_all], 1)
    groups = torch.unique(keys, dim=0)
    pieces: list[tuple[torch.Tensor, torch.Tensor]] = []
    for b, gh, gw in groups.tolist():
        sel = torch.nonzero((batch == b) & (gh_all == gh) & (gw_all == gw)).squeeze(1)
        per = max(1, _ROI_CHUNK_SAMPLES // max(1, C * out_h * out_w * gh * gw))
        for start in range(0, sel.numel(), per):
            idx = sel[start:start + per]
            res = _roi_align_group(features[b], x1[idx], y1[idx], x2[idx], y2[idx], out_h, out_w, scale, gh, gw)
            pieces.append((idx, res))
    if len(pieces) == 1 and pieces[0][0].numel() == K and bool((pieces[0][0] == torch.arange(K)).all()):
        return pieces[0][1]
    out = out.index_put((torch.cat([p[0] for p in pieces]),), torch.cat([p[1] for p in pieces]))
    return out


# --------------------------------------------------------------------------------------- boxes
def box_area(boxes: torch.Tensor) -> torch.Tensor:
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """IoU matrix ``[N, M]`` (torchvision ``box_iou``, no +1 in the areas)."""
    area1, area2 = box_area(boxes1), box_area(boxes2)
    lt = torch.max(boxes1[:, None, :2], boxes2[:, :2])
    rb = torch.min(boxes1[:, None, 2:], boxes2[:, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[:, :, 0] * wh[:, :, 1]
    return inter / (area1[:, None] + area2 - inter)


def clip_boxes_to_image(boxes: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    height, width = int(size[0]), int(size[1])
    bx = boxes[..., 0::2].clamp(min=0, max=width)
    by = boxes[..., 1::2].clamp(min=0, max=height)
    return torch.stack((bx, by), dim=boxes.dim()).reshape(boxes.shape)


def remove_small_boxes(boxes: torch.Tensor, min_size: float) -> torch.Tensor:
    ws, hs = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    return torch.nonzero((ws >= min_size) & (hs >= min_size)).squeeze(1)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy NMS exactly as torchvision's CPU kernel: stable descending sort, strict ``IoU > t``.

    Returns the kept indices (int64) in decreasing score order.
    """
    n = boxes.shape[0]
    if n == 0:
        return torch.empty((0,), dtype=torch.int64)
    boxes = boxes.detach()
    order = torch.sort(scores.detach(), dim=0, descending=True, stable=True)[1]
    b = boxes[order]
    x1, y1, x2, y2 = b[:, 0].contiguous(), b[:, 1].contiguous(), b[:, 2].contiguous(), b[:, 3].contiguous()
    areas = (x2 - x1) * (y2 - y1)
    suppressed = torch.zeros(n, dtype=torch.bool)
    keep: list[int] = []
    zero = torch.zeros((), dtype=b.dtype)
    sup_list = suppressed.numpy()
    for i in range(n):
        if sup_list[i]:
            continue
        keep.append(i)
        if i + 1 == n:
            break
        xx1 = torch.max(x1[i], x1[i + 1:])
        yy1 = torch.max(y1[i], y1[i + 1:])
        xx2 = torch.min(x2[i], x2[i + 1:])
        yy2 = torch.min(y2[i], y2[i + 1:])
        w = torch.max(zero, xx2 - xx1)
        h = torch.max(zero, yy2 - yy1)
        inter = w * h
        ovr = inter / (areas[i] + areas[i + 1:] - inter)
        suppressed[i + 1:] |= ovr.double() > float(iou_threshold)
    return order[torch.tensor(keep, dtype=torch.int64)]


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou_threshold: float,
                semantics: str = "tv04") -> torch.Tensor:
    """Per-category NMS.  tv04: always the coordinate-offset trick; tv028 (CPU): the trick up to
    1000 boxes, else one NMS per category and the union sorted by score (``torch.sort``, default)."""
    check_semantics(semantics)
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64)
    boxes = boxes.detach()
    if semantics == "tv028" and boxes.numel() > 4000:
        keep_mask = torch.zeros_like(scores, dtype=torch.bool)
        for class_id in torch.unique(idxs):
            curr = torch.where(idxs == class_id)[0]
            keep_mask[curr[nms(boxes[curr], scores[curr], iou_threshold)]] = True
        keep = torch.where(keep_mask)[0]
        return keep[scores[keep].sort(descending=True)[1]]
    if semantics == "tv028":
        offsets = idxs.to(boxes) * (boxes.max() + torch.tensor(1).to(boxes))
    else:
        offsets = idxs.to(boxes) * (boxes.max() + 1)
    return nms(boxes + offsets[:, None], scores, iou_threshold)


def encode_boxes(reference: torch.Tensor, proposals: torch.Tensor, weights: Sequence[float]) -> torch.Tensor:
    """Regression targets of ``reference`` (GT) boxes relative to ``proposals`` (torchvision BoxCoder.encode)."""
    w = torch.as_tensor(weights, dtype=reference.dtype)
    wx, wy, ww, wh = w[0], w[1], w[2], w[3]
    px1, py1, px2, py2 = (proposals[:, i].unsqueeze(1) for i in range(4))
    gx1, gy1, gx2, gy2 = (reference[:, i].unsqueeze(1) for i in range(4))
    ex_w = px2 - px1
    ex_h = py2 - py1
    ex_cx = px1 + 0.5 * ex_w
    ex_cy = py1 + 0.5 * ex_h
    gt_w = gx2 - gx1
    gt_h = gy2 - gy1
    gt_cx = gx1 + 0.5 * gt_w
    gt_cy = gy1 + 0.5 * gt_h
    dx = wx * (gt_cx - ex_cx) / ex_w
    dy = wy * (gt_cy - ex_cy) / ex_h
    dw = ww * torch.log(gt_w / ex_w)
    dh = wh * torch.log(gt_h / ex_h)
    return torch.cat((dx, dy, dw, dh), dim=1)


def decode_boxes(rel_codes: torch.Tensor, boxes: torch.Tensor, weights: Sequence[float]) -> torch.Tensor:
    """Apply deltas ``[N, 4k]`` to ``boxes [N, 4]`` (torchvision BoxCoder.decode_single)."""
    boxes = boxes.to(rel_codes.dtype)
    widths = boxes[:, 2] - boxes[:, 0]
    heights = boxes[:, 3] - boxes[:, 1]
    ctr_x = boxes[:, 0] + 0.5 * widths
    ctr_y = boxes[:, 1] + 0.5 * heights
    wx, wy, ww, wh = weights
    dx = rel_codes[:, 0::4] / wx
    dy = rel_codes[:, 1::4] / wy
    dw = torch.clamp(rel_codes[:, 2::4] / ww, max=BBOX_XFORM_CLIP)
    dh = torch.clamp(rel_codes[:, 3::4] / wh, max=BBOX_XFORM_CLIP)
    pcx = dx * widths[:, None] + ctr_x[:, None]
    pcy = dy * heights[:, None] + ctr_y[:, None]
    pw = torch.exp(dw) * widths[:, None]
    ph = torch.exp(dh) * heights[:, None]
    out = torch.stack((pcx - 0.5 * pw, pcy - 0.5 * ph, pcx + 0.5 * pw, pcy + 0.5 * ph), dim=2)
    return out.flatten(1)


# --------------------------------------------------------------------------------------- anchors
def cell_anchors(size: float, aspect_ratios: Sequence[float] = (0.5, 1.0, 2.0),
                 dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Zero-centred anchors of one level ``[A, 4]``, rounded half-to-even as torchvision does."""
    scales = torch.as_tensor((size,), dtype=dtype)
    ratios = torch.as_tensor(aspect_ratios, dtype=dtype)
    h_ratios = torch.sqrt(ratios)
    w_ratios = 1 / h_ratios
    ws = (w_ratios[:, None] * scales[None, :]).view(-1)
    hs = (h_ratios[:, None] * scales[None, :]).view(-1)
    return (torch.stack([-ws, -hs, ws, hs], dim=1) / 2).round()


def grid_anchors(grid_sizes: Sequence[tuple[int, int]], padded_size: tuple[int, int],
                 sizes: Sequence[float] = (32, 64, 128, 256, 512), semantics: str = "tv04",
                 dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """All anchors of one image, levels concatenated; location-major (y, then x), then anchor.

    tv04 computes in float32 with true-division strides; tv028 in ``dtype`` with floor-division strides.
    """
    check_semantics(semantics)
    dt = torch.float32 if semantics == "tv04" else dtype
    out = []
    for (gh, gw), size in zip(grid_sizes, sizes):
        if semantics == "tv04":
            sh, sw = padded_size[0] / gh, padded_size[1] / gw
        else:
            sh, sw = padded_size[0] // gh, padded_size[1] // gw
        shifts_x = torch.arange(0, gw, dtype=torch.float32) * sw
        shifts_y = torch.arange(0, gh, dtype=torch.float32) * sh
        shift_y, shift_x = torch.meshgrid(shifts_y, shifts_x, indexing="ij")
        shift_x, shift_y = shift_x.reshape(-1), shift_y.reshape(-1)
        shifts = torch.stack((shift_x, shift_y, shift_x, shift_y), dim=1).to(dt)
        base = cell_anchors(size, dtype=dt)
        out.append((shifts.view(-1, 1, 4) + base.view(1, -1, 4)).reshape(-1, 4))
    return torch.cat(out)


# --------------------------------------------------------------------------------------- multi-scale RoIAlign
def roi_level_scales(feature_sizes: Sequence[tuple[int, int]], image_sizes: Sequence[tuple[int, int]]) -> list[float]:
    """Per-level spatial scale ``2**round(log2(feat/original))`` from the largest unpadded image size."""
    original = tuple(max(s) for s in zip(*image_sizes))
    scales = []
    for size in feature_sizes:
        possible = [2 ** torch.tensor(float(s1) / s2).log2().round().item() for s1, s2 in zip(size, original)]
        if possible[0] != possible[1]:
            raise ValueError(f"feature map {size} is not a power-of-two scale of the image {original}")
        scales.append(possible[0])
    return scales


def level_of_boxes(boxes: torch.Tensor, k_min: int, k_max: int, semantics: str = "tv04") -> torch.Tensor:
    """FPN level index (0-based from ``k_min``) of each box: ``floor(4 + log2(sqrt(area)/224 [+eps]))``."""
    check_semantics(semantics)
    s = torch.sqrt(box_area(boxes))
    if semantics == "tv04":
        lvl = torch.floor(4 + torch.log2(s / 224 + 1e-6))
    else:
        lvl = torch.floor(4 + torch.log2(s / 224) + torch.tensor(1e-6, dtype=s.dtype))
    lvl = torch.clamp(lvl, min=k_min, max=k_max)
    return lvl.to(torch.int64) - k_min


def multiscale_roi_align(features: Sequence[torch.Tensor], boxes: Sequence[torch.Tensor],
                         image_sizes: Sequence[tuple[int, int]], output_size: int, sampling_ratio: int,
                         semantics: str = "tv04") -> torch.Tensor:
    """torchvision ``MultiScaleRoIAlign`` over levels P2..P5 (``features`` excludes 'pool')."""
    scales = roi_level_scales([f.shape[-2:] for f in features], image_sizes)
    k_min = int(-torch.log2(torch.tensor(scales[0], dtype=torch.float32)).item())
    k_max = int(-torch.log2(torch.tensor(scales[-1], dtype=torch.float32)).item())
    concat = torch.cat(list(boxes), dim=0)
    ids = torch.cat([torch.full_like(b[:, :1], i) for i, b in enumerate(boxes)], dim=0)
    rois = torch.cat([ids, concat], dim=1)
    levels = level_of_boxes(concat, k_min, k_max, semantics)
    C = features[0].shape[1]
    result = features[0].new_zeros((rois.shape[0], C, output_size, output_size))
    for level, (feat, scale) in enumerate(zip(features, scales)):
        idx = torch.nonzero(levels == level).squeeze(1)
        if idx.numel() == 0:
            continue
        result = result.index_put((idx,), roi_align(feat, rois[idx], output_size, scale, sampling_ratio))
    return result


# --------------------------------------------------------------------------------------- matching & sampling
def match(quality: torch.Tensor, high: float, low: float, allow_low_quality: bool) -> torch.Tensor:
    """torchvision ``Matcher``: ``quality [G, P]`` -> matched GT index per prediction, -1 below ``low``,
    -2 in ``[low, high)``; with ``allow_low_quality`` every prediction attaining some GT's best IoU keeps its match."""
    matched_vals, matches = quality.max(dim=0)
    all_matches = matches.clone() if allow_low_quality else None
    below = matched_vals < low
    between = (matched_vals >= low) & (matched_vals < high)
    matches[below] = -1
    matches[between] = -2
    if allow_low_quality:
        best, _ = quality.max(dim=1)
        pairs = torch.nonzero(quality == best[:, None])
        upd = pairs[:, 1]
        matches[upd] = all_matches[upd]
    return matches


def sample_pos_neg(labels: Sequence[torch.Tensor], batch_size_per_image: int, positive_fraction: float):
    """torchvision ``BalancedPositiveNegativeSampler`` on the global torch generator: per image
    ``randperm(#pos)`` then ``randperm(#neg)``.  Returns per-image boolean masks (pos, neg)."""
    pos_masks, neg_masks = [], []
    for lab in labels:
        positive = torch.nonzero(lab >= 1).squeeze(1)
        negative = torch.nonzero(lab == 0).squeeze(1)
        num_pos = min(positive.numel(), int(batch_size_per_image * positive_fraction))
        num_neg = min(negative.numel(), batch_size_per_image - num_pos)
        perm1 = torch.randperm(positive.numel())[:num_pos]
        perm2 = torch.randperm(negative.numel())[:num_neg]
        pm = torch.zeros_like(lab, dtype=torch.bool)
        nm = torch.zeros_like(lab, dtype=torch.bool)
        pm[positive[perm1]] = True
        nm[negative[perm2]] = True
        pos_masks.append(pm)
        neg_masks.append(nm)
    return pos_masks, neg_masks


# --------------------------------------------------------------------------------------- transform
def normalize_image(image: torch.Tensor) -> torch.Tensor:
    """``(img - mean) / std`` per channel, ImageNet statistics, in the image dtype."""
    mean = torch.as_tensor(IMAGE_MEAN, dtype=image.dtype)
    std = torch.as_tensor(IMAGE_STD, dtype=image.dtype)
    return (image - mean[:, None, None]) / std[:, None, None]


def resized_size(h: int, w: int, min_size: int = 800, max_size: int = 1333) -> tuple[tuple[int, int], float]:
    """Network input size and scale factor of GeneralizedRCNNTransform (floor of ``dim * scale`` in double)."""
    scale = float(min_size) / float(min(h, w))
    if float(max(h, w)) * scale > max_size:
        scale = float(max_size) / float(max(h, w))
    return (int(math.floor(float(h) * scale)), int(math.floor(float(w) * scale))), scale


def resize_image(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize ``[C,H,W]`` with source scale in/out (torch <=1.4 / ``recompute_scale_factor=True``)."""
    return F.interpolate(image[None], size=size, mode="bilinear", align_corners=False)[0]


def resize_masks(masks: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Nearest resize of ``[n,H,W]`` uint8 masks (src index ``floor(dst*in/out)``), back to uint8."""
    return F.interpolate(masks[None].float(), size=size, mode="nearest")[0].byte()


def resize_boxes(boxes: torch.Tensor, original: Sequence[int], new: Sequence[int], semantics: str = "tv04") -> torch.Tensor:
    """Scale boxes from ``original`` (h, w) to ``new`` (h, w).  tv04: Python-double ratios; tv028: float32."""
    check_semantics(semantics)
    if semantics == "tv04":
        rh = float(new[0]) / float(original[0])
        rw = float(new[1]) / float(original[1])
    else:
        rh = torch.tensor(new[0], dtype=torch.float32) / torch.tensor(original[0], dtype=torch.float32)
        rw = torch.tensor(new[1], dtype=torch.float32) / torch.tensor(original[1], dtype=torch.float32)
    x1, y1, x2, y2 = boxes.unbind(1)
    return torch.stack((x1 * rw, y1 * rh, x2 * rw, y2 * rh), dim=1)


def batch_images(images: Sequence[torch.Tensor], size_divisible: int = 32) -> torch.Tensor:
    """Zero-pad images bottom/right to a common size that is a multiple of ``size_divisible``."""
    c = max(i.shape[0] for i in images)
    h = int(math.ceil(float(max(i.shape[1] for i in images)) / size_divisible) * size_divisible)
    w = int(math.ceil(float(max(i.shape[2] for i in images)) / size_divisible) * size_divisible)
    out = images[0].new_zeros((len(images), c, h, w))
    for img, pad in zip(images, out):
        pad[: img.shape[0], : img.shape[1], : img.shape[2]].copy_(img)
    return out


# --------------------------------------------------------------------------------------- mask pasting
def paste_masks_in_image(masks: torch.Tensor, boxes: torch.Tensor, image_size: Sequence[int],
                         padding: int = 1) -> torch.Tensor:
    """Paste ``[n,1,M,M]`` mask probabilities into ``(H, W)`` images at ``boxes`` (original scale)."""
    im_h, im_w = int(image_size[0]), int(image_size[1])
    M = masks.shape[-1]
    scale = float(M + 2 * padding) / M
    padded = F.pad(masks, (padding,) * 4)
    w_half = (boxes[:, 2] - boxes[:, 0]) * 0.5
    h_half = (boxes[:, 3] - boxes[:, 1]) * 0.5
    x_c = (boxes[:, 2] + boxes[:, 0]) * 0.5
    y_c = (boxes[:, 3] + boxes[:, 1]) * 0.5
    w_half = w_half * scale
    h_half = h_half * scale
    exp = torch.stack((x_c - w_half, y_c - h_half, x_c + w_half, y_c + h_half), dim=1).to(torch.int64).tolist()
    res = []
    for m, box in zip(padded, exp):
        w = max(int(box[2] - box[0] + 1), 1)
        h = max(int(box[3] - box[1] + 1), 1)
        mask = F.interpolate(m[0].expand((1, 1, -1, -1)), size=(h, w), mode="bilinear", align_corners=False)[0][0]
        im = torch.zeros((im_h, im_w), dtype=mask.dtype)
        x0, x1 = max(box[0], 0), min(box[2] + 1, im_w)
        y0, y1 = max(box[1], 0), min(box[3] + 1, im_h)
        if x1 > x0 and y1 > y0:
            im[y0:y1, x0:x1] = mask[(y0 - box[1]):(y1 - box[1]), (x0 - box[0]):(x1 - box[0])]
        res.append(im)
    if not res:
        return masks.new_zeros((0, 1, im_h, im_w))
    return torch.stack(res, dim=0)[:, None]
