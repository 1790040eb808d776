"""e-OSVOS's network: torchvision's Mask R-CNN ResNet-50-FPN (v1) with GroupNorm(32) in place of
every norm, 2 classes, a 28x28 mask RoIAlign (56x56 mask logits), under the released checkpoint's
(torchvision 0.4) parameter names.  Facts: ``shared/spec/eosvos.md`` §1; ops: :mod:`models.eosvos.ops`.

:class:`MaskRCNN` runs the eval forward (with e-OSVOS's EXTEND proposals) and the training forward
(the five losses, Lovász mask loss).  ``semantics`` picks torchvision 0.4 (default: what the
released checkpoints were trained with) or 0.28 behaviour where they differ.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.eosvos import ops
from models.eosvos.lovasz import lovasz_hinge
from models.resnet import resnet50

__all__ = ["MaskRCNN", "Targets", "targets_from_mask", "NUM_CLASSES", "RPN_SIZES"]

NUM_CLASSES = 2
RPN_SIZES = (32, 64, 128, 256, 512)
_RPN_WEIGHTS = (1.0, 1.0, 1.0, 1.0)
_ROI_WEIGHTS = (10.0, 10.0, 5.0, 5.0)


def _gn_everywhere(module: nn.Module) -> None:
    for sub in module.modules():
        for name, child in list(sub._modules.items()):
            if isinstance(child, nn.BatchNorm2d):
                sub._modules[name] = nn.GroupNorm(32, child.num_features, eps=1e-5, affine=True)


class FPN(nn.Module):
    """torchvision ``FeaturePyramidNetwork`` ([256,512,1024,2048] -> 256) + ``LastLevelMaxPool``."""

    def __init__(self, in_channels=(256, 512, 1024, 2048), out_channels: int = 256) -> None:
        super().__init__()
        self.inner_blocks = nn.ModuleList(nn.Conv2d(c, out_channels, 1) for c in in_channels)
        self.layer_blocks = nn.ModuleList(nn.Conv2d(out_channels, out_channels, 3, padding=1) for _ in in_channels)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        last = self.inner_blocks[-1](xs[-1])
        results = [self.layer_blocks[-1](last)]
        for i in range(len(xs) - 2, -1, -1):
            lateral = self.inner_blocks[i](xs[i])
            last = lateral + F.interpolate(last, size=lateral.shape[-2:], mode="nearest")
            results.insert(0, self.layer_blocks[i](last))
        results.append(F.max_pool2d(results[-1], 1, 2, 0))
        return results


class Backbone(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = resnet50()
        _gn_everywhere(self.body)
        self.fpn = FPN()

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        b = self.body
        x = b.stem(x)
        feats = []
        for i in range(1, 5):
            x = getattr(b, f"layer{i}")(x)
            feats.append(x)
        return self.fpn(feats)


class RPNHead(nn.Module):
    def __init__(self, channels: int = 256, num_anchors: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.cls_logits = nn.Conv2d(channels, num_anchors, 1)
        self.bbox_pred = nn.Conv2d(channels, num_anchors * 4, 1)


class RPN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.head = RPNHead()


class BoxHead(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc6 = nn.Linear(256 * 7 * 7, 1024)
        self.fc7 = nn.Linear(1024, 1024)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.fc7(F.relu(self.fc6(x.flatten(start_dim=1)))))


class BoxPredictor(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.cls_score = nn.Linear(1024, NUM_CLASSES)
        self.bbox_pred = nn.Linear(1024, NUM_CLASSES * 4)


class MaskHead(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        for k in range(1, 5):
            setattr(self, f"mask_fcn{k}", nn.Conv2d(256, 256, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for k in range(1, 5):
            x = F.relu(getattr(self, f"mask_fcn{k}")(x))
        return x


class MaskPredictor(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv5_mask = nn.ConvTranspose2d(256, 256, 2, 2, 0)
        self.mask_fcn_logits = nn.Conv2d(256, NUM_CLASSES, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mask_fcn_logits(F.relu(self.conv5_mask(x)))


class RoIHeads(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.box_head = BoxHead()
        self.box_predictor = BoxPredictor()
        self.mask_head = MaskHead()
        self.mask_predictor = MaskPredictor()


@dataclass
class Targets:
    """Mask R-CNN targets of one image: boxes ``[n,4]`` float32, labels int64, masks uint8 ``[n,H,W]``."""

    boxes: torch.Tensor
    labels: torch.Tensor
    masks: torch.Tensor


def targets_from_mask(mask: torch.Tensor) -> Targets:
    """e-OSVOS's conversion of a label image (float, 0 = background, 255 = ignore) into targets (spec §3.4)."""
    ids = [v for v in torch.unique(mask).tolist() if v != 0.0 and v != 255.0]
    if not ids:
        raise ValueError("the target mask has no object pixel")
    obj_ids = torch.tensor(ids).to(mask.dtype)
    masks = mask == obj_ids[:, None, None]
    masks[:, mask == 255.0] = True
    boxes = []
    for m in masks.numpy():
        ys, xs = np.where(m)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    out = masks.to(torch.uint8)
    if bool((mask == 255.0).any()):
        out[:, mask == 255.0] = 255
        out[:, mask == 0.0] = 255
    return Targets(torch.as_tensor(np.array(boxes), dtype=torch.float32), obj_ids.to(torch.int64), out)


@dataclass
class _Batch:
    tensors: torch.Tensor
    image_sizes: list[tuple[int, int]]
    targets: list[Targets] | None
    original_sizes: list[tuple[int, int]] = field(default_factory=list)


class MaskRCNN(nn.Module):
    """The e-OSVOS Mask R-CNN (parameters under the released checkpoint's names)."""

    #: torchvision defaults used by e-OSVOS (spec §1.2-1.3)
    rpn_pre_nms_top_n = {True: 2000, False: 1000}
    rpn_post_nms_top_n = {True: 2000, False: 1000}
    rpn_nms_thresh = 0.7
    box_score_thresh = 0.5
    box_nms_thresh = 0.5

    def __init__(self, semantics: str = "tv04", detections_per_img: int = 1, min_size: int = 800,
                 max_size: int = 1333) -> None:
        super().__init__()
        self.semantics = ops.check_semantics(semantics)
        #: GeneralizedRCNNTransform sizes (official: 800 / 1333); smaller ones trade accuracy for speed
        self.min_size, self.max_size = int(min_size), int(max_size)
        self.detections_per_img = detections_per_img
        self.backbone = Backbone()
        self.rpn = RPN()
        self.roi_heads = RoIHeads()

    # ------------------------------------------------------------------ transform
    def transform(self, images: list[torch.Tensor], targets: list[Targets] | None) -> _Batch:
        out_imgs, out_t, sizes = [], [] if targets is not None else None, []
        originals = [tuple(int(s) for s in img.shape[-2:]) for img in images]
        for i, img in enumerate(images):
            h, w = img.shape[-2:]
            img = ops.normalize_image(img)
            if self.training and self.semantics == "tv028":
                torch.empty(1).uniform_(0.0, 1.0)  # torch_choice of the (single) min size: one draw
            size, _ = ops.resized_size(int(h), int(w), self.min_size, self.max_size)
            img = ops.resize_image(img, size)
            out_imgs.append(img)
            sizes.append(size)
            if targets is not None:
                t = targets[i]
                out_t.append(Targets(ops.resize_boxes(t.boxes, (h, w), size, self.semantics), t.labels,
                                     ops.resize_masks(t.masks, size)))
        return _Batch(ops.batch_images(out_imgs), sizes, out_t, originals)

    # ------------------------------------------------------------------ RPN
    def _rpn_head(self, feats: list[torch.Tensor]):
        head = self.rpn.head
        logits, deltas = [], []
        for f in feats:
            t = F.relu(head.conv(f))
            logits.append(head.cls_logits(t))
            deltas.append(head.bbox_pred(t))
        return logits, deltas

    @staticmethod
    def _flatten(layers: list[torch.Tensor], C: int) -> torch.Tensor:
        flat = []
        for lay in layers:
            N, AxC, H, W = lay.shape
            flat.append(lay.view(N, -1, C, H, W).permute(0, 3, 4, 1, 2).reshape(N, -1, C))
        return torch.cat(flat, dim=1).reshape(-1, C)

    def _filter_proposals(self, proposals, objectness, image_sizes, num_per_level):
        num_images = proposals.shape[0]
        objectness = objectness.detach().reshape(num_images, -1)
        levels = torch.cat([torch.full((n,), i, dtype=torch.int64) for i, n in enumerate(num_per_level)])
        levels = levels.reshape(1, -1).expand_as(objectness)
        pre = self.rpn_pre_nms_top_n[self.training]
        idx, offset = [], 0
        for ob in objectness.split(num_per_level, 1):
            k = min(pre, ob.shape[1])
            _, top = ob.topk(k, dim=1)
            idx.append(top + offset)
            offset += ob.shape[1]
        top_idx = torch.cat(idx, dim=1)
        bidx = torch.arange(num_images)[:, None]
        objectness = objectness[bidx, top_idx]
        levels = levels[bidx, top_idx]
        proposals = proposals[bidx, top_idx]
        if self.semantics == "tv028":
            objectness = torch.sigmoid(objectness)
        final_boxes, final_scores = [], []
        for boxes, scores, lvl, size in zip(proposals, objectness, levels, image_sizes):
            boxes = ops.clip_boxes_to_image(boxes, size)
            keep = ops.remove_small_boxes(boxes, 1e-3)
            boxes, scores, lvl = boxes[keep], scores[keep], lvl[keep]
            if self.semantics == "tv028":
                keep = torch.where(scores >= 0.0)[0]
                boxes, scores, lvl = boxes[keep], scores[keep], lvl[keep]
            keep = ops.batched_nms(boxes, scores, lvl, self.rpn_nms_thresh, self.semantics)
            keep = keep[: self.rpn_post_nms_top_n[self.training]]
            final_boxes.append(boxes[keep])
            final_scores.append(scores[keep])
        return final_boxes, final_scores

    def _extend(self, boxes: list[torch.Tensor], batch: _Batch, rand_log: list | None) -> list[torch.Tensor]:
        """e-OSVOS's EXTEND: keep the first post_nms_top_n//2 proposals, append as many jittered
        copies of every target box (four ``torch.rand`` draws: x1, y1, x2, y2)."""
        n = self.rpn_post_nms_top_n[False] // 2
        H, W = batch.tensors.shape[-2:]
        out = []
        for i, t in enumerate(batch.targets):
            aug = []
            for box in t.boxes:
                bw, bh = box[2] - box[0], box[3] - box[1]
                r = [torch.rand((n,)) for _ in range(4)]
                if rand_log is not None:
                    rand_log.extend(float(x.double().sum()) for x in r)
                x1 = box[0] - r[0] * bw * 0.1
                y1 = box[1] - r[1] * bh * 0.1
                x2 = box[2] + r[2] * bw * 0.1
                y2 = box[3] + r[3] * bh * 0.1
                aug.append(torch.stack([x1.clamp(0, W), y1.clamp(0, H), x2.clamp(0, W), y2.clamp(0, H)], dim=1))
            out.append(torch.cat([boxes[i][:n], torch.cat(aug, dim=0)], dim=0))
        return out

    def _anchors(self, batch: _Batch, feats: list[torch.Tensor]) -> torch.Tensor:
        grid = [tuple(int(s) for s in f.shape[-2:]) for f in feats]
        padded = tuple(int(s) for s in batch.tensors.shape[-2:])
        return ops.grid_anchors(grid, padded, RPN_SIZES, self.semantics, feats[0].dtype)

    def rpn_forward(self, batch: _Batch, feats: list[torch.Tensor], record: dict | None = None):
        logits, deltas = self._rpn_head(feats)
        anchors = self._anchors(batch, feats)
        num_images = batch.tensors.shape[0]
        num_per_level = [o[0].numel() for o in logits]
        objectness = self._flatten(logits, 1)
        pred_deltas = self._flatten(deltas, 4)
        all_anchors = anchors.repeat(num_images, 1)
        proposals = ops.decode_boxes(pred_deltas.detach(), all_anchors, _RPN_WEIGHTS).view(num_images, -1, 4)
        boxes, _ = self._filter_proposals(proposals, objectness, batch.image_sizes, num_per_level)
        if not self.training and batch.targets is not None:
            boxes = self._extend(boxes, batch, None if record is None else record.setdefault("extend_rand", []))
        losses = {}
        if self.training:
            labels, matched = [], []
            for t in batch.targets:
                quality = ops.box_iou(t.boxes, anchors)
                m = ops.match(quality, 0.7, 0.3, True)
                matched.append(t.boxes[m.clamp(min=0)])
                lab = (m >= 0).to(torch.float32)
                lab[m == -1] = 0
                lab[m == -2] = -1
                labels.append(lab)
            reg_targets = ops.encode_boxes(torch.cat(matched), all_anchors, _RPN_WEIGHTS)
            pos, neg = ops.sample_pos_neg(labels, 256, 0.5)
            pos_i = torch.nonzero(torch.cat(pos)).squeeze(1)
            neg_i = torch.nonzero(torch.cat(neg)).squeeze(1)
            sampled = torch.cat([pos_i, neg_i])
            if record is not None:
                record.setdefault("rpn_sampled", []).append(sampled)
            lab = torch.cat(labels)
            obj = objectness.flatten()
            reg_targets = reg_targets.to(pred_deltas.dtype)
            if self.semantics == "tv04":
                box_loss = F.l1_loss(pred_deltas[pos_i], reg_targets[pos_i], reduction="sum")
            else:
                box_loss = F.smooth_l1_loss(pred_deltas[pos_i], reg_targets[pos_i], beta=1 / 9, reduction="sum")
            losses["loss_objectness"] = F.binary_cross_entropy_with_logits(obj[sampled], lab[sampled].to(obj.dtype))
            losses["loss_rpn_box_reg"] = box_loss / sampled.numel()
        return boxes, losses

    # ------------------------------------------------------------------ RoI heads
    def _box_branch(self, feats, proposals, image_sizes, record=None):
        pooled = ops.multiscale_roi_align(feats[:4], proposals, image_sizes, 7, 2, self.semantics)
        head = self.roi_heads.box_head(pooled)
        pred = self.roi_heads.box_predictor
        class_logits = pred.cls_score(head)
        box_regression = pred.bbox_pred(head)
        if record is not None:
            record.update(box_roi_pool_out=pooled.detach(), box_head_out=head.detach(),
                          class_logits=class_logits.detach(), box_regression=box_regression.detach())
        return class_logits, box_regression

    def _postprocess_detections(self, class_logits, box_regression, proposals, image_sizes):
        per_image = [len(p) for p in proposals]
        pred_boxes = ops.decode_boxes(box_regression, torch.cat(proposals, dim=0), _ROI_WEIGHTS)
        pred_boxes = pred_boxes.reshape(sum(per_image), -1, 4)
        pred_scores = F.softmax(class_logits, -1)
        results = []
        for boxes, scores, size in zip(pred_boxes.split(per_image, 0), pred_scores.split(per_image, 0), image_sizes):
            boxes = ops.clip_boxes_to_image(boxes, size)
            labels = torch.arange(NUM_CLASSES).view(1, -1).expand_as(scores)
            boxes, scores, labels = boxes[:, 1:].reshape(-1, 4), scores[:, 1:].flatten(), labels[:, 1:].flatten()
            inds = torch.nonzero(scores > self.box_score_thresh).squeeze(1)
            boxes, scores, labels = boxes[inds], scores[inds], labels[inds]
            keep = ops.remove_small_boxes(boxes, 1e-2)
            boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
            keep = ops.batched_nms(boxes, scores, labels, self.box_nms_thresh, self.semantics)
            keep = keep[: self.detections_per_img]
            results.append((boxes[keep], scores[keep], labels[keep]))
        return results

    def _mask_logits(self, feats, boxes, image_sizes) -> torch.Tensor:
        pooled = ops.multiscale_roi_align(feats[:4], boxes, image_sizes, 28, 2, self.semantics)
        if pooled.shape[0] > 0:
            pooled = self.roi_heads.mask_head(pooled)
        return self.roi_heads.mask_predictor(pooled)

    # ------------------------------------------------------------------ forward passes
    def detect(self, images: list[torch.Tensor], targets: list[Targets] | None = None,
               record: dict | None = None) -> list[dict[str, torch.Tensor]]:
        """Eval forward of a list of ``[3,H,W]`` RGB images in [0,1] (``targets``: EXTEND boxes).

        Returns per image ``boxes`` (original scale), ``labels``, ``scores``, ``masks`` ``[n,1,H,W]``
        (pasted probabilities); ``record`` (a dict) receives the intermediates the goldens check.
        """
        if self.training:
            raise RuntimeError("detect() needs eval mode (model.eval())")
        batch = self.transform(images, targets)
        feats = self.backbone(batch.tensors)
        if record is not None:
            record.update(images=batch.tensors, image_sizes=batch.image_sizes, features=feats)
            if batch.targets is not None:
                record["target_boxes"] = [t.boxes for t in batch.targets]
        proposals, _ = self.rpn_forward(batch, feats, record)
        if record is not None:
            record["proposals"] = proposals
        class_logits, box_regression = self._box_branch(feats, proposals, batch.image_sizes, record)
        dets = self._postprocess_detections(class_logits, box_regression, proposals, batch.image_sizes)
        mask_logits = self._mask_logits(feats, [d[0] for d in dets], batch.image_sizes)
        labels = torch.cat([d[2] for d in dets])
        probs = mask_logits.sigmoid()[torch.arange(mask_logits.shape[0]), labels][:, None]
        if record is not None:
            record.update(mask_logits=mask_logits, detections=dets, detection_masks=probs)
        out = []
        for (boxes, scores, labs), m, size, orig in zip(dets, probs.split([len(d[0]) for d in dets]),
                                                         batch.image_sizes, batch.original_sizes):
            boxes = ops.resize_boxes(boxes, size, orig, self.semantics)
            out.append(dict(boxes=boxes, labels=labs, scores=scores, masks=ops.paste_masks_in_image(m, boxes, orig)))
        return out

    def losses(self, images: list[torch.Tensor], targets: list[Targets],
               record: dict | None = None) -> dict[str, torch.Tensor]:
        """Training forward: the five Mask R-CNN losses (Lovász mask loss), in e-OSVOS's order."""
        if not self.training:
            raise RuntimeError("losses() needs train mode (model.train())")
        batch = self.transform(images, targets)
        feats = self.backbone(batch.tensors)
        proposals, rpn_losses = self.rpn_forward(batch, feats, record)
        props, matched_idxs, labels, reg_targets = self._select_training_samples(proposals, batch.targets, record)
        class_logits, box_regression = self._box_branch(feats, props, batch.image_sizes)
        lab = torch.cat(labels)
        reg = torch.cat(reg_targets).to(box_regression.dtype)
        loss_cls = F.cross_entropy(class_logits, lab)
        pos = torch.nonzero(lab > 0).squeeze(1)
        box_regression = box_regression.reshape(class_logits.shape[0], -1, 4)
        beta = 1.0 if self.semantics == "tv04" else 1 / 9
        loss_box = F.smooth_l1_loss(box_regression[pos, lab[pos]], reg[pos], beta=beta, reduction="sum") / lab.numel()
        mask_props, pos_matched = [], []
        for p, m, la in zip(props, matched_idxs, labels):
            ps = torch.nonzero(la > 0).squeeze(1)
            mask_props.append(p[ps])
            pos_matched.append(m[ps])
        mask_logits = self._mask_logits(feats, mask_props, batch.image_sizes)
        loss_mask = self._lovasz_mask_loss(mask_logits, mask_props, batch.targets, pos_matched)
        out = dict(loss_classifier=loss_cls, loss_box_reg=loss_box, loss_mask=loss_mask)
        out.update(rpn_losses)
        return out

    def _select_training_samples(self, proposals, targets: list[Targets], record=None):
        proposals = [torch.cat((p, t.boxes.to(p.dtype))) for p, t in zip(proposals, targets)]
        matched_idxs, labels = [], []
        for p, t in zip(proposals, targets):
            m = ops.match(ops.box_iou(t.boxes, p), 0.5, 0.5, False)
            clamped = m.clamp(min=0)
            lab = t.labels[clamped].to(torch.int64)
            lab[m == -1] = 0
            lab[m == -2] = -1
            matched_idxs.append(clamped)
            labels.append(lab)
        pos, neg = ops.sample_pos_neg(labels, 512, 0.25)
        out_p, out_m, out_l, gt_boxes = [], [], [], []
        for i, (pm, nm) in enumerate(zip(pos, neg)):
            inds = torch.nonzero(pm | nm).squeeze(1)
            if record is not None:
                record.setdefault("roi_sampled", []).append(inds)
            out_p.append(proposals[i][inds])
            out_l.append(labels[i][inds])
            out_m.append(matched_idxs[i][inds])
            gt_boxes.append(targets[i].boxes[out_m[-1]])
        reg = ops.encode_boxes(torch.cat(gt_boxes), torch.cat(out_p), _ROI_WEIGHTS)
        return out_p, out_m, out_l, reg.split([len(p) for p in out_p], 0)

    def _lovasz_mask_loss(self, mask_logits, proposals, targets: list[Targets], matched) -> torch.Tensor:
        M = mask_logits.shape[-1]
        labels = torch.cat([t.labels[m] for t, m in zip(targets, matched)])
        mask_targets = []
        for t, p, m in zip(targets, proposals, matched):
            rois = torch.cat([m.to(p)[:, None], p], dim=1)
            mask_targets.append(ops.roi_align(t.masks[:, None].to(rois), rois, (M, M), 1.0, -1)[:, 0])
        mask_targets = torch.cat(mask_targets)
        if mask_targets.numel() == 0:
            return mask_logits.sum() * 0
        mask_targets[mask_targets > 1.0] = 255.0
        return lovasz_hinge(mask_logits[torch.arange(labels.shape[0]), labels], mask_targets, ignore=255.0)

    def forward(self, images: list[torch.Tensor], targets: list[Targets] | None = None) -> Any:
        return self.losses(images, targets) if self.training else self.detect(images, targets)
