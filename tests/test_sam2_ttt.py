"""Test-time training on SAM 2 through the generic models.ttt hooks (design: models/sam2/ttt.py).

No reference exists, so we test what can be tested: which parameters train (and that gradients reach
exactly those), that the loss decreases on the golden video, that the original model is untouched,
and seeded reproducibility.  The network runs at a 128x128 input here (same code as 1024) for speed.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from models import load_model, ttt
from models.sam2 import golden_init_v2
from models.sam2.ttt import freeze_groups


@pytest.fixture(scope="module")
def vos():
    return golden_init_v2(load_model("sam2.1_hiera_t", device="cpu", image_size=128))


@pytest.fixture(scope="module")
def video(golden):
    g = np.load(golden / "sam2" / "inference.npz")
    return g["frames"][:, ::2, ::2].copy(), g["first_mask"][::2, ::2].copy()  # 120x216


def _names(pairs):
    return {n for n, _ in pairs}


def test_trainable_sets_of_the_presets(vos):
    all_names = {n for n, _ in vos.named_parameters()}
    encoder = {n for n in all_names if n.startswith("image_encoder.")}
    mcc = _names(ttt.trainable_parameters(vos, "mcc", ttt.load_preset("sam2_t_mcc")["frozen"]))
    assert mcc == all_names - encoder
    ae = _names(ttt.trainable_parameters(vos, "ae", ttt.load_preset("sam2_bplus_ae")["frozen"]))
    assert ae == all_names - encoder
    ent = _names(ttt.trainable_parameters(vos, "ent", ttt.load_preset("sam2_t_ent")["frozen"]))
    ln = set(freeze_groups(vos)["ln"])
    assert ent == ln and len(ln) == 62
    assert all(n.endswith(("weight", "bias")) and ("norm" in n or "mask_downsampler.encoder" in n
                                                  or "mask_downscaling" in n or "output_upscaling" in n) for n in ln)
    assert not any(n.startswith("image_encoder.") for n in ln)
    with pytest.raises(ValueError, match="unknown freezing token"):
        ttt.trainable_parameters(vos, "mcc", "hiera")


@pytest.mark.parametrize("kind, frozen", [("mcc", "image_encoder"), ("ent", "net,uln"), ("ae", "image_encoder")])
def test_gradients_reach_exactly_the_trainable_parameters(vos, video, kind, frozen):
    frames, first = video
    chosen = _names(ttt.trainable_parameters(vos, kind, frozen))
    try:
        for n, p in vos.named_parameters():
            p.requires_grad_(n in chosen)
        value = ttt.loss(vos, frames[[0, 3, 6]], first, kind)
        value.backward()
        got = {n for n, p in vos.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    finally:
        for p in vos.parameters():
            p.grad = None
            p.requires_grad_(True)
    assert torch.isfinite(value)
    assert got <= chosen
    # hard decisions pass no gradient: the IoU head (argmax) and, objects being present, the absent-object tensors
    never = {n for n in chosen if n.startswith("sam_mask_decoder.iou_prediction_head.")} | {
        "no_obj_ptr", "no_obj_embed_spatial"}
    assert not got & never
    if kind == "ent":
        assert got == chosen - never
    else:
        for prefix in ("memory_attention.", "sam_mask_decoder.transformer.", "obj_ptr_proj.",
                       "sam_mask_decoder.output_hypernetworks_mlps.1."):
            assert any(n.startswith(prefix) for n in got), prefix
        if kind == "mcc":  # the cycle runs through the memory encoder of frame 0 and the pointer time encoding
            assert {"memory_encoder.out_proj.weight", "obj_ptr_tpos_proj.weight", "maskmem_tpos_enc",
                    "sam_prompt_encoder.mask_downscaling.0.weight", "mask_downsample.weight"} <= got


def test_mcc_loss_decreases_on_the_golden_video(vos, video):
    frames, first = video
    model = copy.deepcopy(vos)
    params = [p for n, p in model.named_parameters() if not n.startswith("image_encoder.")]
    for n, p in model.named_parameters():
        p.requires_grad_(not n.startswith("image_encoder."))
    opt = torch.optim.Adam(params, lr=1e-4)
    losses = []
    for _ in range(4):
        opt.zero_grad()
        value = ttt.loss(model, frames[[0, 3, 6]], first, "mcc")
        value.backward()
        opt.step()
        losses.append(float(value.detach()))
    assert losses[-1] < 0.9 * losses[0], losses


def test_adapt_leaves_the_original_untouched_and_is_seeded(vos, video):
    frames, first = video
    before = {k: v.clone() for k, v in vos.state_dict().items()}
    kw = dict(iterations=2, rounds=1, lr=1e-4, frozen="image_encoder")
    a = ttt.adapt(vos, frames, first, "ae", seed=3, **kw)
    b = ttt.adapt(vos, frames, first, "ae", seed=3, **kw)
    for k, v in vos.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert a.ttt_log["losses"] == b.ttt_log["losses"]
    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    changed = [k for k in sa if not torch.equal(sa[k], before[k])]
    assert changed and not any(k.startswith("image_encoder.") for k in changed)
    assert all(p.requires_grad for p in vos.parameters())


def test_mcc_adapt_samples_depend_on_the_seed(vos, video):
    frames, first = video
    frames = frames[:5]
    kw = dict(iterations=2, rounds=1, lr=1e-5, frozen="net,uln")
    a = ttt.adapt(vos, frames, first, "mcc", seed=1, **kw)
    b = ttt.adapt(vos, frames, first, "mcc", seed=1, **kw)
    assert a.ttt_log["samples"] == b.ttt_log["samples"] and a.ttt_log["losses"] == b.ttt_log["losses"]
    c = ttt.adapt(vos, frames, first, "mcc", seed=2, **kw)
    assert c.ttt_log["samples"] != a.ttt_log["samples"]
    assert a.ttt_log["pseudo_label_passes"] == 1
    probs = a.segment(frames, first)
    assert probs.shape == (3, 5, 120, 216)
