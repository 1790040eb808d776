"""Test-time training of the families whose TTT is our reading (no official code exists: XMem in
models/xmem/ttt.py, Cutie in models/cutie/ttt.py), one test per property, parametrized by family: the hooks
plug into models.ttt, losses go down, gradients reach exactly the intended parameters, the original model
stays untouched, seeds reproduce, samples are the octuplets grown from frame 0."""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from models import golden_init, load_model, ttt
from models.ttt.sampler import build_batch, grown_indices, grown_reach

H, W = 32, 48   # tiny on purpose: 2 x 3 key grid, every pass stays cheap on CPU

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@dataclass(frozen=True)
class Family:
    name: str
    load: dict
    init_scale: float
    checkpoint: str
    #: (kind, sample frames, lr, steps) of the loss-decrease test
    fixed_samples: tuple
    #: the frames of the tt-MCC gradient check
    mcc_sample: tuple
    #: parameter-name prefixes no TTT loss reaches
    unreachable: tuple
    #: what tt-AE leaves untouched besides ``unreachable`` (no matching, no decoder sensory update)
    ae_silent: tuple
    #: BatchNorm layers (tt-Ent trains their weight and bias)
    batchnorms: int


XMEM = Family(
    "xmem", {}, 1.1, "XMem.pth",
    fixed_samples=(("mcc", [0, 4, 9], 1e-5, 3), ("ent", [0, 4, 9], 1e-3, 3), ("ae", [0], 1e-5, 3)),
    # every parameter gets a gradient through the 8-frame cycle
    mcc_sample=(0, 1, 2, 4, 5, 6, 8, 9), unreachable=(),
    ae_silent=("key_proj.", "decoder.hidden_update."), batchnorms=58)
CUTIE = Family(
    # cutie-small: the same heads as cutie-base on a ResNet-18 pixel encoder, several times cheaper
    "cutie", {"variant": "small"}, 1.2, "cutie-base-mega.pth",
    # tt-Ent: one small step.  With random weights the entropy is a rough function of the BatchNorm
    # parameters (boolean attention masks of the object transformer flip): measured on this sample, lr 1e-5
    # gives 0.4707 -> 0.4691 after one step, while lr >= 1e-4 or further steps jump up (0.59 after 2 steps).
    fixed_samples=(("mcc", [0, 4, 9], 1e-5, 3), ("ent", [0, 4, 9], 1e-5, 2), ("ae", [0], 1e-5, 3)),
    # a 3-frame cycle: deep update on frame 0, decoder sensory update on frame 1, both directions
    mcc_sample=(0, 4, 9),
    # the training-only aux head, and the aux mask predictors of the object transformer (they only decide
    # boolean attention masks)
    unreachable=("aux_computer.", "object_transformer.mask_pred."),
    ae_silent=("key_proj.", "mask_decoder.sensory_update."), batchnorms=30)  # cutie-small: 15 + 15
FAMILIES = {f.name: f for f in (XMEM, CUTIE)}


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def family(request) -> Family:
    return FAMILIES[request.param]


@pytest.fixture(scope="module")
def vos(family):
    return golden_init(load_model(family.name, device="cpu", **family.load), seed=0, s=family.init_scale)


@pytest.fixture(scope="module")
def video():
    """Two coloured boxes drifting over a blocky random background, 10 frames."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:H, 0:W]
    base = (rng.integers(0, 255, (H // 4, W // 4, 3)).repeat(4, 0).repeat(4, 1)).astype(np.uint8)
    frames, masks = [], []
    for t in range(10):
        img, lab = base.copy(), np.zeros((H, W), np.uint8)
        for k, colour in enumerate(((230, 30, 30), (30, 30, 230)), 1):
            y0, x0 = 4 + 14 * (k - 1) + t // 2, 4 + 22 * (k - 1) + t
            box = (yy >= y0) & (yy < y0 + 10) & (xx >= x0) & (xx < x0 + 14)
            img[box], lab[box] = colour, k
        frames.append(img)
        masks.append(lab)
    return np.stack(frames), np.stack(masks)


def _batch(vos, frames, masks, idx):
    images = vos.prepare(frames)
    labels = torch.as_tensor(masks).long()
    return build_batch(images, labels, [(list(idx), [1, 2])], 2, vos.ttt_pad)


def _train(model, batch, kind, steps, lr):
    params = [p for _, p in ttt.trainable_parameters(model, kind)]
    for p in model.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=lr)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        value = ttt.loss_from_batch(model, batch, kind)
        value.backward()
        opt.step()
        losses.append(float(value.detach()))
    return losses


@pytest.mark.parametrize("kind", ["mcc", "ent", "ae"])
def test_loss_decreases_on_a_fixed_sample(family, vos, video, kind):
    (idx, lr, steps), = [(i, lr, s) for k, i, lr, s in family.fixed_samples if k == kind]
    model = copy.deepcopy(vos)
    losses = _train(model, _batch(model, *video, idx), kind, steps, lr)
    assert all(np.isfinite(losses))
    assert losses[-1] < losses[0], losses


def _grads(vos, batch, kind):
    model = copy.deepcopy(vos)
    chosen = dict(ttt.trainable_parameters(model, kind))
    for n, p in model.named_parameters():
        p.requires_grad_(n in chosen)
    ttt.loss_from_batch(model, batch, kind).backward()
    return {n: (p.grad is not None and bool(p.grad.abs().sum() > 0)) for n, p in model.named_parameters()}, chosen


def test_gradients_reach_the_trained_parameters(family, vos, video):
    frames, masks = video
    # tt-MCC trains everything; every reachable parameter gets a gradient through the cycle
    got, chosen = _grads(vos, _batch(vos, frames, masks, family.mcc_sample), "mcc")
    assert set(chosen) == {n for n, _ in vos.named_parameters()}
    silent = {n for n, ok in got.items() if not ok}
    assert silent == {n for n in got if family.unreachable and n.startswith(family.unreachable)}, sorted(silent)[:10]
    # tt-Ent trains only BatchNorm affine parameters (the two encoders), all reached
    got, chosen = _grads(vos, _batch(vos, frames, masks, [0, 3, 6]), "ent")
    bn = {f"{m}.{p}" for m, mod in vos.named_modules() if isinstance(mod, torch.nn.BatchNorm2d)
          for p in ("weight", "bias")}
    assert set(chosen) == bn and len(bn) == 2 * family.batchnorms
    assert {n for n, ok in got.items() if ok} == set(chosen)
    # tt-AE: no matching, no decoder sensory update -> those parameters get nothing
    got, _ = _grads(vos, _batch(vos, frames, masks, [0]), "ae")
    silent = {n for n, ok in got.items() if not ok}
    assert silent == {n for n, _ in vos.named_parameters() if n.startswith((*family.ae_silent, *family.unreachable))}


def test_adapt_leaves_original_untouched(family, vos, video):
    frames, masks = video
    before = {k: v.clone() for k, v in vos.state_dict().items()}
    # the preset's octuplets are exercised below; 3-frame samples keep this end-to-end run cheap
    params = dict(ttt.load_preset(f"{family.name}_mcc"), rounds=2, iterations=1, resolution=None, lr=1e-5,
                  num_frames=3)
    adapted = ttt.adapt(vos, frames, masks[0], seed=3, **params)
    for k, v in vos.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert adapted.ttt_log["pseudo_label_passes"] == 2 and len(adapted.ttt_log["losses"]) == 2
    changed = [k for k, v in adapted.state_dict().items() if not torch.equal(v, before[k])]
    assert changed and all(not k.endswith(("running_mean", "running_var", "num_batches_tracked")) for k in changed)
    probs = adapted.segment(frames, masks[0])
    assert probs.shape == (3, len(frames), H, W) and np.isfinite(probs).all()


def test_adapt_seeds_reproduce(family, vos, video):
    frames, masks = video
    params = dict(ttt.load_preset(f"{family.name}_ent"), rounds=1, iterations=2, resolution=None, lr=1e-4,
                  num_frames=3)
    a, b = (ttt.adapt(vos, frames, masks[0], seed=5, **params) for _ in range(2))
    assert a.ttt_log["losses"] == b.ttt_log["losses"]
    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_adapt_draws_octuplets_grown_from_frame_0(family, vos, video):
    frames, masks = video
    params = dict(ttt.load_preset(f"{family.name}_mcc"), rounds=1, iterations=1, resolution=None, lr=1e-5)
    adapted = ttt.adapt(vos, frames, masks[0], seed=1, **params)
    (idx,), = adapted.ttt_log["samples"]
    # 8 distinct frames grown from frame 0 (the official fallback may send the last one back to 0)
    assert len(idx) == 8 and idx[0] == 0 and len(set(idx[:-1])) == 7 and idx[:-1] == sorted(idx[:-1])
    assert vos.ttt_module.sample_indices is grown_indices and vos.ttt_module.max_sampled_frames is grown_reach


def test_octuplet_sampler():
    rng = np.random.default_rng(0)
    for _ in range(50):
        idx = grown_indices(100, 8, 10, rng)
        assert idx[0] == 0 and len(set(idx)) == 8 and idx == sorted(idx)
        assert max(np.diff(idx)) <= 10 and idx[-1] < grown_reach(8, 10)
    assert grown_indices(4, 8, 10, rng)[:4] == [0, 1, 2, 3]
    assert grown_indices(50, 1, 10, rng) == [0]
    same = [grown_indices(60, 8, 10, np.random.default_rng(7)) for _ in range(2)]
    assert same[0] == same[1]


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_methods_and_presets_registered(name):
    import importlib

    from harness.methods import load_method

    family = FAMILIES[name]
    declared = set(importlib.import_module(f"models.{name}").DEFAULT_CONFIG)
    expected = {name: None, f"{name}+mcc": "mcc", f"{name}+ent": "ent", f"{name}+ae": "ae"}
    for method, kind in expected.items():
        _, config = load_method(method)
        assert config["model"] == name and config["checkpoint"] == family.checkpoint
        assert set(config["segment"]) <= declared
        if kind is None:
            assert config["ttt"] is None
            continue
        preset = ttt.load_preset(config["ttt"])
        assert preset["kind"] == kind and preset["model"] == name and preset["lr"] == 1e-6
        assert preset["num_frames"] == (1 if kind == "ae" else 8)
        assert set(preset["segment"]) <= declared
