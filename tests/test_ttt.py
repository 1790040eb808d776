"""Test-time training: official losses/gradients/Adam step on the golden batch, the sampler, adapt()."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import models.ttt as ttt
from models import golden_init
from models.stcn import STCN, load
from models.ttt.sampler import label_presence, sample_indices, sample_triplet


@pytest.fixture(scope="module")
def base() -> STCN:
    return golden_init(load(device="cpu"), seed=0, s=1.0)


@pytest.fixture(scope="module")
def ttt_golden(golden):
    return np.load(golden / "stcn" / "ttt.npz")


def _golden_batch(z, kind):
    batch = {k: torch.from_numpy(z[k]) for k in ("rgb", "gt", "sec_gt", "selector", "cls_gt")}
    if kind == "ae":  # the single-frame batch equals the first-frame slices (golden README)
        batch = {"rgb": batch["rgb"][:, :1], "gt": batch["gt"][:, :, :1], "sec_gt": batch["sec_gt"][:, :, :1],
                 "selector": batch["selector"], "cls_gt": batch["cls_gt"][:, :1]}
    return batch


@pytest.mark.parametrize("kind", ["mcc", "ent", "ae"])
def test_loss_gradient_and_one_adam_step_match_official(base, ttt_golden, kind):
    z = ttt_golden
    net = copy.deepcopy(base)
    named = ttt.trainable_parameters(net, kind)
    assert [n for n, _ in named] == list(z[f"{kind}_param_names"])
    assert len(named) == (116 if kind == "ent" else 231)
    for p in net.parameters():
        p.requires_grad_(False)
    for _, p in named:
        p.requires_grad_(True)
    opt = torch.optim.Adam([p for _, p in named], lr=1e-5, weight_decay=1e-7)
    batch = _golden_batch(z, kind)

    opt.zero_grad()
    value = ttt.loss_from_batch(net, batch, kind)
    value.backward()
    # golden README tolerances; measured (AVX-512 Xeon, 1 and 2 threads): loss <= 6.4e-8, grad norm
    # <= 5.1e-7, loss after the step <= 2e-7 relative (the official float32-vs-float64 gaps: README)
    np.testing.assert_allclose(value.item(), z[f"{kind}_loss_before"], rtol=1e-5)
    grads = [p.grad for _, p in named]
    total = torch.sqrt(sum(g.double().pow(2).sum() for g in grads if g is not None)).item()
    np.testing.assert_allclose(total, z[f"{kind}_grad_norm"], rtol=1e-4)
    no_grad = [n for (n, _), g in zip(named, grads) if g is None]
    assert no_grad == list(z[f"{kind}_param_names"][np.isnan(z[f"{kind}_grad_norm_per_param"])])
    if kind == "ae":
        assert no_grad == ["key_proj.key_proj.weight", "key_proj.key_proj.bias"]

    before = {n: p.detach().clone() for n, p in named}
    opt.step()
    with torch.no_grad():
        after = ttt.loss_from_batch(net, batch, kind).item()
    np.testing.assert_allclose(after, z[f"{kind}_loss_after"], rtol=5e-5)
    if kind == "ae":  # Adam leaves parameters without gradient untouched
        assert torch.equal(net.key_proj.key_proj.weight, before["key_proj.key_proj.weight"])


def test_loss_from_uint8_frames_equals_golden(base, golden, ttt_golden):
    """The uint8 entry point builds the same batch (frames 0, 4, 9 of the inference video)."""
    z = np.load(golden / "stcn" / "inference.npz")
    with torch.no_grad():
        value = ttt.loss(base, z["frames"][[0, 4, 9]], z["first_mask"], "ent", labels=z["labels"][[0, 4, 9]])
    np.testing.assert_allclose(value.item(), ttt_golden["ent_loss_before"], rtol=1e-5)


def test_trainable_sets_and_freezing_tokens(base):
    all_names = [n for n, _ in base.named_parameters()]
    assert [n for n, _ in ttt.trainable_parameters(base, "tt-mcc")] == all_names
    bn = [n for n, _ in ttt.trainable_parameters(base, "ent")]
    assert len(bn) == 116 and sum(p.numel() for _, p in ttt.trainable_parameters(base, "ent")) == 35_072
    assert all((".bn" in n or "downsample.1" in n) for n in bn)
    dec_frozen = [n for n, _ in ttt.trainable_parameters(base, "mcc", frozen="dec")]
    assert dec_frozen and not any(n.startswith("decoder.") for n in dec_frozen)
    with pytest.raises(ValueError, match="unknown freezing token"):
        ttt.trainable_parameters(base, "mcc", frozen="nonsense")
    with pytest.raises(ValueError, match="unknown TTT loss"):
        ttt.trainable_parameters(base, "xyz")


def test_sampler_respects_triplet_constraints():
    rng = np.random.default_rng(0)
    for n in (3, 5, 12, 40):
        for _ in range(300):
            i0, i, j = sample_indices(n, 3, 10, rng)
            assert i0 == 0 < i < j <= n - 1 and i <= 10 and j - i <= 10
    assert sample_indices(40, 1, 10, rng) == [0]
    assert sample_indices(2, 3, 10, rng) == [0, 1, 0]

    # 30 frames, 2 objects; object 2 is visible only in frames 0..7
    labels = torch.zeros(30, 8, 8, dtype=torch.uint8)
    labels[:, :2, :2] = 1
    labels[:8, 4:6, 4:6] = 2
    presence = label_presence(labels, 3)
    for _ in range(200):
        idx, targets = sample_triplet(presence, check_last=True, rng=rng)
        assert sorted(targets) == [1, 2]
        assert idx[0] == 0 and presence[idx[-1]][targets].all()
        assert idx[-1] <= 7
    # the seed alone decides the draws
    draws = [[sample_triplet(presence, rng=g)[0] for _ in range(10)]
             for g in (np.random.default_rng(7), np.random.default_rng(7), np.random.default_rng(8))]
    assert draws[0] == draws[1] != draws[2]
    # without check_last (tt-Ent) any draw is used
    last = {sample_triplet(presence, check_last=False, rng=rng)[0][-1] for _ in range(200)}
    assert max(last) > 7


def test_sampler_fallback_replaces_last_frame_by_frame0():
    rng = np.random.default_rng(1)
    labels = torch.zeros(15, 8, 8, dtype=torch.uint8)
    labels[:, :2, :2] = 1
    labels[0, 4:6, 4:6] = 2  # object 2 never reappears: no valid triplet exists
    presence = label_presence(labels, 3)
    for _ in range(20):
        idx, _ = sample_triplet(presence, check_last=True, rng=rng)
        assert idx[0] == 0 and idx[-1] == 0 and 0 < idx[1] <= 10


def test_sampler_more_than_six_objects_and_batch_layout():
    rng = np.random.default_rng(2)
    labels = torch.zeros(4, 16, 16, dtype=torch.long)
    for o in range(1, 9):
        labels[:, o, :] = o
    images = torch.randn(4, 3, 16, 16)
    idx, targets = sample_triplet(label_presence(labels, 9), rng=rng)
    assert len(targets) == 6 and len(set(targets)) == 6
    batch = ttt.build_batch(images, labels, [(idx, targets)], 8)
    assert batch["gt"].shape == (1, 6, 3, 1, 16, 16) and batch["selector"].tolist() == [[1.0] * 6]
    for c, t in enumerate(targets, 1):
        assert torch.equal(batch["cls_gt"][0, 0] == c, labels[0] == t)
        assert torch.equal(batch["gt"][0, c - 1, 0, 0] == 1, labels[0] == t)
    # others count all 8 objects
    assert torch.equal(batch["sec_gt"][0, 0, 0, 0], ((labels[0] > 0) & (labels[0] != targets[0])).float())
    # one object: dummy second object with selector 0 (official layout), padding to 16
    one = ttt.build_batch(torch.randn(2, 3, 10, 20), (labels[:2, :10, :20] == 1).long(), [([0, 1], [1])], 1)
    assert one["rgb"].shape == (1, 2, 3, 16, 32) and one["selector"].tolist() == [[1.0, 0.0]]
    assert torch.equal(one["sec_gt"][0, 1], one["gt"][0, 0]) and not one["gt"][0, 1].any()


def _tiny_video(n=8, h=64, w=112, seed=0):
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 255, (n, h, w, 3), dtype=np.uint8)
    mask = np.zeros((h, w), np.uint8)
    mask[10:30, 10:40], mask[35:60, 60:100] = 1, 2
    return frames, mask


@pytest.mark.parametrize("kind,rounds,iterations", [("mcc", 2, 1), ("ent", 1, 2), ("ae", 1, 1)])
def test_adapt_end_to_end_tiny(base, kind, rounds, iterations):
    frames, mask = _tiny_video()
    original = {k: v.clone() for k, v in base.state_dict().items()}
    kw = dict(iterations=iterations, rounds=rounds, lr=1e-5, seed=3)
    adapted = ttt.adapt(base, frames, mask, kind, **kw)
    assert all(torch.equal(v, original[k]) for k, v in base.state_dict().items()), "original model changed"
    assert adapted is not base and not adapted.training
    changed = {k for k, v in adapted.state_dict().items() if not torch.equal(v, original[k])}
    trainable = {n for n, _ in ttt.trainable_parameters(base, kind)}
    assert changed and changed <= trainable
    if kind == "ae":
        assert not any(k.startswith("key_proj") for k in changed)
        assert adapted.ttt_log["samples"] == [[[0]]]
    log = adapted.ttt_log
    assert len(log["losses"]) == rounds * iterations and np.isfinite(log["losses"]).all()
    assert log["pseudo_label_passes"] == (rounds if kind == "mcc" else 0)  # the redundant official passes are skipped
    assert all(p.requires_grad for p in adapted.parameters()) and all(p.grad is None for p in adapted.parameters())
    if kind == "ent":  # the same seed reproduces the run
        again = ttt.adapt(base, frames, mask, kind, **kw)
        assert again.ttt_log["samples"] == log["samples"] and again.ttt_log["losses"] == log["losses"]
    if kind == "mcc":
        p = adapted.segment(frames, mask)
        assert p.shape == (3, 8, 64, 112) and np.isfinite(p).all()


def test_adapt_accepts_presets_and_delegates_to_model_hook():
    class Own(torch.nn.Module):
        def test_time_adapt(self, frames, first_mask, **params):
            self.seen = params
            return "adapted"

    model = Own()
    assert ttt.adapt(model, np.zeros((2, 4, 4, 3), np.uint8), np.ones((4, 4), np.uint8),
                     **{**ttt.load_preset("stcn_mcc"), "seed": 5, "extra": 1}) == "adapted"
    assert model.seen["kind"] == "mcc" and model.seen["seed"] == 5 and model.seen["extra"] == 1
    assert "description" not in model.seen


def test_presets_mirror_official_configs():
    names = [n for n in ttt.available_presets() if n.startswith("stcn")]
    assert names == sorted(f"stcn{c}_{k}" for c in ("", "_s01", "_s0") for k in ("mcc", "ent", "ae"))
    for name in names:
        p = ttt.load_preset(name)
        kind = name.rsplit("_", 1)[1]
        assert p["kind"] == kind and p["batch_size"] == 1 and p["jump"] == 10 and p["weight_decay"] == 1e-7
        assert p["lr"] == (1e-6 if name.startswith("stcn_" + kind) else 1e-5)
        assert (p["rounds"], p["iterations"], p["num_frames"]) == ((1, 20, 1) if kind == "ae" else (10, 10, 3))
        assert p["frozen"] == ("net,ubn" if kind == "ent" else None)
        assert p["segment"] == {"top_k": 20, "mem_every": 5, "include_last": False}
    with pytest.raises(ValueError, match="unknown TTT preset"):
        ttt.load_preset("stcn_nope")
    with pytest.raises(TypeError, match="unexpected keyword"):
        ttt.adapt(STCN(), np.zeros((2, 16, 16, 3), np.uint8), np.ones((16, 16), np.uint8), "mcc",
                  iterations=1, rounds=1, lr=1e-5, seed=0, bogus=1)


def test_sampling_resolution_resizes_the_shorter_side():
    from models.ttt.core import _resize_labels, _resize_short_side
    frames = np.random.default_rng(0).integers(0, 255, (2, 60, 100, 3), dtype=np.uint8)
    assert _resize_short_side(frames, None) is frames and _resize_short_side(frames, 60) is frames
    assert _resize_short_side(frames, 30).shape == (2, 30, 50, 3)
    labels = torch.zeros(2, 60, 100, dtype=torch.long)
    labels[:, 10:20, 10:30] = 2
    small = _resize_labels(labels, (30, 50))
    assert small.shape == (2, 30, 50) and set(small.unique().tolist()) == {0, 2}
