"""e-OSVOS: detection ops against scalar references and the spec's facts, the released-checkpoint
layout, the goldens' initialisation, presets and the leaderboard pairing (fast; the golden forward /
fine-tuning / video checks are in test_eosvos_golden.py, marked slow)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from models.checkpoint import CheckpointError
from models.eosvos import ops
from models.eosvos.checkpoint import golden_checkpoint, read_checkpoint
from models.eosvos.inference import merge_objects
from models.eosvos.lovasz import lovasz_grad, lovasz_hinge
from models.eosvos.network import MaskRCNN, targets_from_mask

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ----------------------------------------------------------------------------------- RoIAlign
def _roi_align_scalar(feat, roi, ph_n, pw_n, scale, sampling):
    """Direct transcription of the CPU kernel's loops (float64 Python arithmetic)."""
    C, H, W = feat.shape
    x1, y1, x2, y2 = (float(v) * scale for v in roi[1:])
    rw, rh = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
    bh, bw = rh / ph_n, rw / pw_n
    gh = sampling if sampling > 0 else math.ceil(rh / ph_n)
    gw = sampling if sampling > 0 else math.ceil(rw / pw_n)
    out = np.zeros((C, ph_n, pw_n))
    for ph in range(ph_n):
        for pw in range(pw_n):
            acc = np.zeros(C)
            for iy in range(gh):
                y = y1 + ph * bh + (iy + 0.5) * bh / gh
                for ix in range(gw):
                    x = x1 + pw * bw + (ix + 0.5) * bw / gw
                    if y < -1.0 or y > H or x < -1.0 or x > W:
                        continue
                    yy, xx = max(y, 0.0), max(x, 0.0)
                    yl, xl = int(yy), int(xx)
                    if yl >= H - 1:
                        yl = yh = H - 1
                        yy = float(yl)
                    else:
                        yh = yl + 1
                    if xl >= W - 1:
                        xl = xh = W - 1
                        xx = float(xl)
                    else:
                        xh = xl + 1
                    ly, lx = yy - yl, xx - xl
                    hy, hx = 1 - ly, 1 - lx
                    acc += (hy * hx * feat[:, yl, xl] + hy * lx * feat[:, yl, xh] + ly * hx * feat[:, yh, xl]
                            + ly * lx * feat[:, yh, xh])
            out[:, ph, pw] = acc / max(gh * gw, 1)
    return out


@pytest.mark.parametrize("sampling,scale", [(2, 0.25), (-1, 1.0), (2, 1.0 / 32)])
def test_roi_align_matches_kernel_loops(sampling, scale):
    g = torch.Generator().manual_seed(3)
    feat = torch.randn(2, 3, 11, 13, generator=g, dtype=torch.float64)
    side = 1 / scale
    rois = torch.tensor([[0, 2.3 * side, 1.1 * side, 9.7 * side, 8.2 * side],   # inside
                         [1, -3.0 * side, -2.0 * side, 4.0 * side, 3.0 * side],  # over the top-left border
                         [1, 10.5 * side, 9.5 * side, 14.0 * side, 12.5 * side],  # over the bottom-right border
                         [0, 5.0 * side, 5.0 * side, 5.1 * side, 5.05 * side]],  # smaller than one pixel
                        dtype=torch.float64)
    out = ops.roi_align(feat, rois, (4, 5), scale, sampling)
    for k in range(rois.shape[0]):
        ref = _roi_align_scalar(feat[int(rois[k, 0])].numpy(), rois[k].tolist(), 4, 5, scale, sampling)
        np.testing.assert_allclose(out[k].numpy(), ref, rtol=1e-12, atol=1e-12)


def test_roi_align_gradient_flows_to_features():
    feat = torch.randn(1, 2, 6, 6, dtype=torch.float64, requires_grad=True)
    rois = torch.tensor([[0, 0.5, 0.5, 4.5, 3.5]], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda f: ops.roi_align(f, rois, 3, 1.0, 2), (feat,))


# ----------------------------------------------------------------------------------- NMS
def _nms_scalar(boxes, scores, t):
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))  # stable descending
    areas = [(b[2] - b[0]) * (b[3] - b[1]) for b in boxes]
    sup, keep = set(), []
    for a, i in enumerate(order):
        if i in sup:
            continue
        keep.append(i)
        for j in order[a + 1:]:
            w = max(0.0, min(boxes[i][2], boxes[j][2]) - max(boxes[i][0], boxes[j][0]))
            h = max(0.0, min(boxes[i][3], boxes[j][3]) - max(boxes[i][1], boxes[j][1]))
            inter = w * h
            if inter / (areas[i] + areas[j] - inter) > t:
                sup.add(j)
    return keep


def test_nms_matches_greedy_reference_with_ties():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 50, (300, 2))
    wh = rng.uniform(2, 30, (300, 2))
    boxes = np.concatenate([xy, xy + wh], 1)
    scores = np.round(rng.uniform(0, 1, 300), 1)  # many exact ties: the stable order decides
    keep = ops.nms(torch.tensor(boxes), torch.tensor(scores), 0.5)
    assert keep.tolist() == _nms_scalar(boxes.tolist(), scores.tolist(), 0.5)


def test_nms_threshold_is_strict():
    boxes = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 5]])  # IoU exactly 0.5
    assert ops.nms(boxes, torch.tensor([0.9, 0.8]), 0.5).tolist() == [0, 1]
    assert ops.nms(boxes, torch.tensor([0.9, 0.8]), 0.49).tolist() == [0]


def test_batched_nms_semantics_agree_without_ties():
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 200, (1500, 2))
    boxes = torch.tensor(np.concatenate([xy, xy + rng.uniform(5, 60, (1500, 2))], 1), dtype=torch.float32)
    scores = torch.tensor(rng.permutation(1500) / 1500.0, dtype=torch.float32)
    idxs = torch.tensor(rng.integers(0, 5, 1500))
    a = ops.batched_nms(boxes, scores, idxs, 0.7, "tv04")     # offset trick
    b = ops.batched_nms(boxes, scores, idxs, 0.7, "tv028")    # > 1000 boxes: per-class loop
    assert a.tolist() == b.tolist()
    for c in range(5):  # no box of one class suppresses another class
        sel = torch.nonzero(idxs == c).squeeze(1)
        kept = sel[ops.nms(boxes[sel], scores[sel], 0.7)]
        assert sorted(kept.tolist()) == sorted(x for x in a.tolist() if int(idxs[x]) == c)


# ----------------------------------------------------------------------------------- boxes, anchors, levels
def test_box_coder_round_trip_and_clip():
    g = torch.Generator().manual_seed(0)
    props = torch.rand(20, 2, generator=g, dtype=torch.float64) * 100
    props = torch.cat([props, props + 5 + 50 * torch.rand(20, 2, generator=g, dtype=torch.float64)], 1)
    gt = props + torch.randn(20, 4, generator=g, dtype=torch.float64)
    for w in ((1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)):
        codes = ops.encode_boxes(gt, props, w)
        np.testing.assert_allclose(ops.decode_boxes(codes, props, w).numpy(), gt.numpy(), rtol=1e-10, atol=1e-9)
    big = torch.tensor([[0.0, 0.0, 100.0, 100.0]], dtype=torch.float64)
    out = ops.decode_boxes(big, torch.tensor([[0.0, 0, 10, 10]], dtype=torch.float64), (1, 1, 1, 1))
    assert float(out[0, 2] - out[0, 0]) == pytest.approx(10 * 1000 / 16)  # dw clipped at log(1000/16)


def test_anchors_follow_the_spec():
    assert ops.cell_anchors(32).tolist() == [[-23, -11, 23, 11], [-16, -16, 16, 16], [-11, -23, 11, 23]]
    a = ops.grid_anchors([(2, 3)], (8, 12), sizes=(32,))
    assert a.shape == (18, 4)
    assert a[3].tolist() == [-23 + 4, -11, 23 + 4, 11]            # second location (x = 4), first ratio
    assert a[9].tolist() == [-23, -11 + 4, 23, 11 + 4]            # second row (y = 4)
    # stride 800/25 = 32 both ways, but 810/25 = 32.4 (tv04 true division) vs 32 (tv028 floor division)
    t04 = ops.grid_anchors([(25, 25)], (810, 800), sizes=(32,), semantics="tv04")
    t28 = ops.grid_anchors([(25, 25)], (810, 800), sizes=(32,), semantics="tv028")
    assert float(t04[-1, 1] - t28[-1, 1]) == pytest.approx(24 * 0.4, abs=1e-4)


def test_level_mapper_eps_differs_only_at_boundaries():
    s = 112 * (1 - 1e-6)  # sqrt(area)/224 just below 0.5
    box = torch.tensor([[0.0, 0.0, s, s]], dtype=torch.float64)
    assert ops.level_of_boxes(box, 2, 5, "tv04").item() == 1     # log2(x + 1e-6) >= -1: level 3
    assert ops.level_of_boxes(box, 2, 5, "tv028").item() == 0    # log2(x) + 1e-6 < -1: level 2
    normal = torch.tensor([[0.0, 0.0, 300.0, 200.0]], dtype=torch.float64)
    assert ops.level_of_boxes(normal, 2, 5, "tv04").item() == ops.level_of_boxes(normal, 2, 5, "tv028").item()


def test_match_low_quality_and_sampler_counts():
    q = torch.tensor([[0.1, 0.25, 0.8, 0.5, 0.25]])
    assert ops.match(q, 0.7, 0.3, True).tolist() == [-1, -1, 0, -2, -1]
    q2 = torch.tensor([[0.1, 0.25, 0.25, 0.2]])  # best IoU 0.25 < 0.3: the low-quality rule keeps both ties
    assert ops.match(q2, 0.7, 0.3, True).tolist() == [-1, 0, 0, -1]
    torch.manual_seed(0)
    labels = [torch.tensor([1] * 10 + [0] * 600 + [-1] * 5, dtype=torch.float32)]
    pos, neg = ops.sample_pos_neg(labels, 256, 0.5)
    assert int(pos[0].sum()) == 10 and int(neg[0].sum()) == 246 and not bool(neg[0][:10].any())


# ----------------------------------------------------------------------------------- transform, pasting, targets
def test_resize_sizes_and_batch_padding():
    assert ops.resized_size(128, 224)[0] == (761, 1333)
    assert ops.resized_size(480, 854)[0] == (749, 1333)
    assert ops.resized_size(600, 600)[0] == (800, 800)
    batch = ops.batch_images([torch.ones(3, 761, 1333)])
    assert batch.shape == (1, 3, 768, 1344) and float(batch[:, :, 761:].abs().sum()) == 0


def test_paste_mask_covers_the_box():
    m = torch.ones(1, 1, 56, 56)
    out = ops.paste_masks_in_image(m, torch.tensor([[10.0, 20.0, 40.0, 30.0]]), (50, 60))[0, 0]
    inside = out[21:29, 11:39]
    assert float(inside.min()) > 0.99 and float(out[:15].max()) == 0 and float(out[:, 45:].max()) == 0


def test_targets_from_mask_box_has_exclusive_max():
    mask = torch.zeros(10, 12)
    mask[2:5, 3:9] = 1
    t = targets_from_mask(mask)
    assert t.boxes.tolist() == [[3.0, 2.0, 9.0, 5.0]] and t.labels.tolist() == [1]
    assert t.masks.dtype == torch.uint8 and int(t.masks.sum()) == 18
    with pytest.raises(ValueError, match="no object"):
        targets_from_mask(torch.zeros(4, 4))


def test_lovasz_values():
    gt = torch.tensor([1.0, 1.0, 0.0, 0.0])
    assert float(lovasz_grad(gt).sum()) == pytest.approx(1.0)  # increments sum to the full Jaccard loss
    perfect = torch.tensor([[5.0, 5.0, -5.0, -5.0]])
    assert float(lovasz_hinge(perfect, gt[None])) == 0.0
    # all margins 1 - 0 = 1 with logits 0: loss = mean error = 1 (weights sum to 1)
    assert float(lovasz_hinge(torch.zeros(1, 4), gt[None])) == pytest.approx(1.0)
    # ignored pixels do not count
    assert float(lovasz_hinge(torch.tensor([[5.0, -9.0]]), torch.tensor([[1.0, 255.0]]), ignore=255.0)) == 0.0


def test_merge_objects_official_rule():
    probs = torch.tensor([[[0.2, 0.6, 0.5, 0.7]], [[0.4, 0.6, 0.1, 0.9]]]).unsqueeze(1)  # K=2, T=1, 1x4
    assert merge_objects(probs)[0, 0].tolist() == [0, 1, 1, 2]  # ties -> first object; 0.5 is an object


# ----------------------------------------------------------------------------------- checkpoint
@pytest.fixture(scope="module")
def net():
    return MaskRCNN()


def test_parameter_names_and_shapes_match_release(net, golden):
    keys = json.loads((golden / "eosvos" / "state_dict_keys.json").read_text())
    entries = keys["model_parameters_in_named_parameters_order"]
    assert [(n, list(p.shape)) for n, p in net.named_parameters()] == [(e["name_v04"], e["shape"]) for e in entries]
    assert list(net.state_dict()) == [e["name_v04"] for e in entries]  # no buffers
    assert sum(p.numel() for p in net.parameters()) == keys["num_params"] == 43975515


def test_golden_init_matches_checksums(net, golden):
    init, lrs = read_checkpoint(golden_checkpoint(net), net)
    c = np.load(golden / "eosvos" / "golden_init_checksums.npz")
    for name in init:
        assert float(init[name].double().sum()) == pytest.approx(float(c["W_sum__" + name]), rel=1e-9, abs=1e-9)
        assert float(init[name].double().abs().sum()) == pytest.approx(float(c["W_abssum__" + name]), rel=1e-9)
        assert float(lrs[name].double().sum()) == pytest.approx(float(c["LR_sum__" + name]), rel=1e-9)
    np.testing.assert_array_equal(init["backbone.body.conv1.weight"].flatten()[:8].numpy(),
                                  c["W_first8__backbone_body_conv1_weight"])
    assert sum(v.numel() for v in lrs.values()) == 90998


def test_loader_reads_released_layout(net, tmp_path):
    import models

    meta = golden_checkpoint(net)
    assert list(meta)[0] == "log_init_lr_backbone-body-conv1-weight" and len(meta) == 402
    path = tmp_path / "best_val_meta_iter.model"
    torch.save({"meta_optim_state_dict": meta, "vis_win_names": {"a": "b"}, "meta_iter": 7, "meta_epoch": 2}, path)
    model = models.load_model("eosvos", str(path))
    init, lrs = model.meta_parameters()
    assert torch.equal(init["roi_heads.box_predictor.cls_score.bias"],
                       meta["model_init_roi_heads-box_predictor-cls_score-bias"])
    assert torch.equal(lrs["backbone.body.layer1.0.conv1.weight"],
                       meta["log_init_lr_backbone-body-layer1-0-conv1-weight"])
    assert lrs["backbone.body.layer1.0.conv1.weight"].shape == (64, 1, 1, 1)
    assert set(model.state_dict()) == set(meta)


def test_loader_refuses_bad_files(net, tmp_path):
    meta = golden_checkpoint(net)
    missing = dict(meta)
    del missing["model_init_rpn-head-conv-weight"]
    with pytest.raises(CheckpointError, match="model_init_rpn-head-conv-weight"):
        read_checkpoint({"meta_optim_state_dict": missing}, net)
    renamed = {k.replace("rpn-head-conv-", "rpn-head-conv-0-0-"): v for k, v in meta.items()}  # tv>=0.13 names
    with pytest.raises(CheckpointError, match="unexpected"):
        read_checkpoint(renamed, net)
    shaped = dict(meta)
    shaped["log_init_lr_rpn-head-conv-weight"] = torch.ones(256)
    with pytest.raises(CheckpointError, match="wrong shapes"):
        read_checkpoint(shaped, net)
    negative = dict(meta)
    negative["log_init_lr_rpn-head-conv-bias"] = -negative["log_init_lr_rpn-head-conv-bias"]
    with pytest.raises(CheckpointError, match="negative"):
        read_checkpoint(negative, net)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    bad = tmp_path / "evil.model"
    torch.save({"meta_optim_state_dict": meta, "x": Evil()}, bad)
    with pytest.raises(CheckpointError, match="cannot read"):
        read_checkpoint(bad, net)
    with pytest.raises(CheckpointError, match="not found"):
        read_checkpoint(tmp_path / "nope.model", net)


def test_random_init_is_the_golden_checkpoint():
    import models
    from models.golden_init import golden_init

    model = golden_init(models.load_model("eosvos"))
    init, lrs = model.meta_parameters()
    c = golden_checkpoint(model.net)
    assert torch.equal(init["backbone.body.conv1.weight"], c["model_init_backbone-body-conv1-weight"])
    assert torch.equal(lrs["rpn.head.cls_logits.bias"], c["log_init_lr_rpn-head-cls_logits-bias"])


def test_segment_rejects_bad_input():
    import models

    model = models.load_model("eosvos")
    frames = np.zeros((2, 8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="frame 0"):
        model.segment(frames, {0: np.ones((8, 8), np.uint8), 1: 2 * np.ones((8, 8), np.uint8)})
    with pytest.raises(TypeError, match="steps: not an option of e-OSVOS"):
        model.segment(frames, np.ones((8, 8), np.uint8), steps=3)
    with pytest.raises(ValueError, match="semantics"):
        models.load_model("eosvos", semantics="tv05")


# ----------------------------------------------------------------------------------- presets, leaderboard
def test_presets_and_explicit_pairing():
    from harness.methods import load_method

    schedules = {}
    for name in ("eosvos-0", "eosvos-10", "eosvos-50", "eosvos-50-ona", "eosvos-100-ona"):
        _, cfg = load_method(name)
        assert cfg["model"] == "eosvos" and cfg["ttt"] is None
        schedules[name] = (cfg["segment"]["num_epochs"], cfg["segment"]["ona_step"], cfg["pairs_with"])
    assert schedules == {"eosvos-0": (0, 0, None), "eosvos-10": (10, 0, "eosvos-0"), "eosvos-50": (50, 0, "eosvos-0"),
                         "eosvos-50-ona": (50, 5, "eosvos-0"), "eosvos-100-ona": (100, 5, "eosvos-0")}


def test_ttt_pairs_uses_pairs_with_and_keeps_the_plus_rule():
    from types import SimpleNamespace

    from leaderboard.tables import ttt_pairs

    runs = {m: {"config": {"model": m.split("+")[0].split("-")[0], "ttt": ("mcc" if "+" in m else None),
                           "pairs_with": ("eosvos-0" if m.startswith("eosvos-1") else None)}}
            for m in ("stcn", "stcn+mcc", "eosvos-0", "eosvos-10", "eosvos-100-ona")}
    results = SimpleNamespace(methods=sorted(runs), runs=runs)
    assert ttt_pairs(results) == {"stcn+mcc": "stcn", "eosvos-10": "eosvos-0", "eosvos-100-ona": "eosvos-0"}
