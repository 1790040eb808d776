"""e-OSVOS against the goldens of the official code (tests/golden/eosvos/README.md).

The goldens were made on CPU with 2 torch threads; torch's bilinear resize and convolutions round
differently with another thread count (measured: 1 thread moves the normalised input by 1.7e-7 and FPN
features by ~3e-6 relative, which reorders near-tied proposals).  The tests therefore run with 2
threads, where this port reproduces the float32 goldens bit for bit on x86-64 (AVX2), and hold
continuous quantities to the README's ~1e-5 relative in any case.  Every test runs the full
800x1333 network (15-60 s per forward on a shared 2-core CPU): all are ``slow``.
"""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from models.eosvos.checkpoint import golden_checkpoint, read_checkpoint
from models.eosvos.finetune import LOSS_ORDER, finetune_step, seed_all, training_batch
from models.eosvos.inference import Schedule, merge_objects, segment_frames
from models.eosvos.network import MaskRCNN, targets_from_mask

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def two_torch_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def gdir(golden):
    return golden / "eosvos"


@pytest.fixture(scope="module")
def video(gdir):
    return np.load(gdir / "synthetic_video.npz")


def _model(semantics: str, dtype: torch.dtype):
    m = MaskRCNN(semantics=semantics)
    init, lrs = read_checkpoint(golden_checkpoint(m), m)
    m.load_state_dict(init)
    return m.to(dtype), init, lrs


def _rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def _frame0(video, dtype):
    img = video["frames_uint8_rgb"][0].astype(np.float32) / 255.0
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).to(dtype)


def _match_rows(ours: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Index into ``ours`` of the nearest row for every row of ``ref``."""
    d = np.abs(ours[None, :, :] - ref[:, None, :]).max(axis=2)
    return d.argmin(axis=1)


@pytest.mark.parametrize("variant,semantics,dtype", [
    ("plain", "tv04", "float32"), ("extend", "tv04", "float32"), ("extend", "tv028", "float64")])
def test_forward_matches_golden(gdir, video, variant, semantics, dtype):
    tdtype = torch.float64 if dtype == "float64" else torch.float32
    model, _, _ = _model(semantics, tdtype)
    model.eval()
    targets = None
    if variant == "extend":
        targets = [targets_from_mask(torch.from_numpy((video["labels"][0] == 1).astype(np.float32)))]
        torch.manual_seed(0)
    rec: dict = {}
    with torch.no_grad():
        out = model.detect([_frame0(video, tdtype)], targets, rec)
    g = np.load(gdir / f"forward_{variant}_{semantics}_{dtype}.npz")
    images = rec["images"].double().numpy()
    assert list(images.shape) == list(g["transform_images__shape"])
    assert rec["image_sizes"] == [tuple(g["transform_image_sizes"][0])]
    assert _rel(images[0, :, 300:332, 500:532], g["transform_images_crop"]) < 1e-6
    for i, key in enumerate(["0", "1", "2", "3", "pool"]):
        f = rec["features"][i].double().numpy()
        assert list(f.shape) == list(g[f"fpn_{key}__shape"])
        assert _rel(f[0, :4, 2:6, 2:6], g[f"fpn_{key}_crop"]) < 1e-5, key
        assert abs(np.abs(f).sum() / g[f"fpn_{key}__abssum"] - 1) < 1e-5, key
    if variant == "extend":
        np.testing.assert_allclose(rec["target_boxes"][0].numpy(), g["transform_target_boxes"], rtol=1e-6)
        np.testing.assert_allclose(rec["extend_rand"], g["extend_rand_log"], rtol=1e-6)
    props, gprops = rec["proposals"][0].double().numpy(), g["rpn_proposals"]
    assert props.shape == gprops.shape
    # the same proposal set; in this port's float32 run also the same order (checked below via the logits)
    order = _match_rows(props, gprops)
    assert np.abs(props[order] - gprops).max() < 1e-3
    assert len(set(order.tolist())) == len(order)
    assert _rel(rec["class_logits"].numpy()[order], g["class_logits"]) < 1e-5
    assert _rel(rec["box_regression"].numpy()[order], g["box_regression"]) < 1e-5
    boxes, scores, labels = rec["detections"][0]
    np.testing.assert_allclose(boxes.numpy(), g["detections_netscale_boxes"], rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(scores.numpy(), g["detections_netscale_scores"], rtol=1e-5)
    np.testing.assert_array_equal(labels.numpy(), g["detections_netscale_labels"])
    assert _rel(rec["mask_logits"].numpy(), g["mask_logits"]) < 1e-5
    assert _rel(rec["detection_masks"].numpy(), g["detections_netscale_masks"]) < 1e-5
    np.testing.assert_allclose(out[0]["masks"].double().numpy(), g["out_masks"], atol=1e-5)
    np.testing.assert_allclose(out[0]["boxes"].numpy(), g["out_boxes"][0], rtol=1e-5, atol=1e-3)
    if dtype == "float32":  # 2 threads, x86-64: the official float32 numbers exactly, order included
        np.testing.assert_array_equal(props, gprops)
        np.testing.assert_array_equal(rec["class_logits"].numpy(), g["class_logits"])


def _rng_logger(monkeypatch):
    log: list[str] = []
    original = torch.randperm

    def randperm(n, *args, **kwargs):
        if not args and kwargs.get("generator") is None:
            digest = hashlib.md5(torch.get_rng_state().numpy().tobytes()).hexdigest()[:10]
            r = original(n, *args, **kwargs)
            log.append(f"randperm|{n}|{digest}|{int(r[:8].sum())}")
            return r
        return original(n, *args, **kwargs)

    monkeypatch.setattr(torch, "randperm", randperm)
    return log


@pytest.mark.parametrize("semantics,dtype", [("tv04", "float32"), ("tv028", "float64")])
def test_finetune_step_matches_golden(gdir, video, monkeypatch, semantics, dtype):
    tdtype = torch.float64 if dtype == "float64" else torch.float32
    model, _, lrs = _model(semantics, tdtype)
    before = {k: p.detach().clone() for k, p in model.named_parameters()}
    img = video["frames_uint8_rgb"][0].astype(np.float32) / 255.0
    gt = (video["labels"][0] == 1).astype(np.float32)
    log = _rng_logger(monkeypatch)
    seed_all(2)  # seed 1 + epoch 1 + online step 0
    images, gts = training_batch(img, gt, 3, False, tdtype)
    losses = finetune_step(model, lrs, images, gts)
    g = np.load(gdir / f"step_{semantics}_{dtype}.npz")
    # identical discrete decisions: the samplers drew the same randperms (sizes = #positives / #negatives)
    # from the same generator states; the golden's first 6 entries are the RandomSampler's private generator
    assert log == g["rng_log"].tolist()[6:]
    for k in LOSS_ORDER:
        assert abs(losses[k] / float(g["loss__" + k]) - 1) < 1e-6, k
    assert abs(losses["loss"] / float(g["loss_total"]) - 1) < 1e-6
    names = list(g["param_names"])
    assert names == [n for n, _ in model.named_parameters()]
    delta = {k: (p.detach() - before[k]).double().numpy() for k, p in model.named_parameters()}
    maxabs = np.array([np.abs(delta[k]).max() for k in names])
    abssum = np.array([np.abs(delta[k]).sum() for k in names])
    np.testing.assert_allclose(maxabs, g["delta_maxabs"], rtol=1e-5)
    np.testing.assert_allclose(abssum, g["delta_abssum"], rtol=5e-5)
    for key in g.files:
        if key.startswith("delta_full__"):
            assert _rel(delta[key[len("delta_full__"):]], g[key]) < 1e-6, key


def test_video_final_label_maps_match_golden(gdir, video):
    model = MaskRCNN(semantics="tv04")
    init, lrs = read_checkpoint(golden_checkpoint(model), model)
    schedule = Schedule(num_epochs=2, batch_size=1, augment=False)  # the golden's overrides
    ids, runs = segment_frames(model, init, lrs, video["frames_uint8_rgb"], video["labels"][0], schedule)
    g = np.load(gdir / "video_tv04_float32.npz")
    assert ids == [1, 2]
    labels = merge_objects(torch.stack([r.probs for r in runs])).numpy()
    np.testing.assert_array_equal(labels, g["final_label_maps"])
    for k, run in enumerate(runs):
        assert abs(run.train_losses[-1]["loss"] / g["train_loss_final_per_object"][k] - 1) < 1e-5
        probs = g[f"probs_call{k}_obj{k}_frames1-4"][:, 0]
        # After two fine-tuning steps the probabilities are not forward quantities of the given weights: the
        # steps' parameter deltas agree to <= 1.2e-6 relative (autograd's scatter order in RoIAlign's backward
        # differs from the kernel's; test_finetune_step_matches_golden), and two steps carry that into the
        # probabilities.  Measured at 2 threads: 278 of 114,688 values differ by more than 1e-5, at most
        # 2.67e-5 (5.2e-5 relative); the discrete decisions (label maps above, losses) are identical.
        np.testing.assert_allclose(run.probs[1:].numpy(), probs, atol=5e-5)
