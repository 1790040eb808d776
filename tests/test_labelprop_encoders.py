"""Label propagation encoders (CRW ResNet-18 at stride 8, checkpoints) and the CRW test-time training."""
from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch

import models
from models.checkpoint import CheckpointError
from models.labelprop.encoders import PixelEncoder, ResNet18Encoder
from models.labelprop.ttt import adapt_crw, crw_cycle_loss
from models.resnet import resnet18


def _full_resnet18_state(seed: int) -> dict[str, torch.Tensor]:
    """A complete torchvision-named ResNet-18 state (with layer4 and fc), seeded values."""
    trunk = models.golden_init(resnet18(), seed=seed)
    state = dict(trunk.state_dict())
    gen = torch.Generator().manual_seed(seed)
    state["fc.weight"] = torch.randn(1000, 512, generator=gen)
    state["fc.bias"] = torch.randn(1000, generator=gen)
    return state


def test_resnet18_output_stride_8_and_layout():
    enc = ResNet18Encoder()
    frames = np.random.default_rng(0).integers(0, 256, (2, 61, 107, 3), dtype=np.uint8)
    feats = enc.eval().encode(frames)
    assert feats.shape == (2, 256, 8, 14)  # ceil(61/8), ceil(107/8)
    names = set(enc.trunk.state_dict())
    assert "layer3.0.downsample.0.weight" in names and not any(n.startswith("layer4") for n in names)
    strides = {name: m.stride for name, m in enc.trunk.named_modules() if isinstance(m, torch.nn.Conv2d)}
    assert strides["layer3.0.conv1"] == (1, 1) and strides["layer3.0.downsample.0"] == (1, 1)
    assert strides["layer2.0.conv1"] == (2, 2)


def test_crw_checkpoint(tmp_path):
    full = _full_resnet18_state(3)
    ckpt = {}
    for name, value in full.items():
        if name.endswith(("conv1.weight", "conv2.weight")) and name.startswith("layer"):
            name = name[: -len(".weight")] + ".1.weight"  # CRW's old padded-conv names
        ckpt[f"encoder.model.{name}"] = value
    ckpt["selfsim_fc.0.weight"] = torch.zeros(128, 512)
    ckpt["selfsim_fc.0.bias"] = torch.zeros(128)
    path = tmp_path / "crw.pth"
    torch.save({"model": ckpt, "epoch": 3, "args": argparse.Namespace(model_type="scratch")}, path)
    vos = models.load_model("labelprop", checkpoint=path, encoder="resnet18")
    trunk = vos.encoder.trunk
    assert vos.encoder.padding_mode == "reflect"
    assert trunk.layer1[0].conv1.padding_mode == "reflect" and trunk.conv1.padding_mode == "reflect"
    for name, value in trunk.state_dict().items():
        if not name.endswith("num_batches_tracked"):
            assert torch.equal(value, full[name]), name


def test_torchvision_checkpoint_and_errors(tmp_path):
    full = _full_resnet18_state(4)
    path = tmp_path / "resnet18.pth"
    torch.save(full, path)
    vos = models.load_model("labelprop", checkpoint=path, encoder="resnet18")
    assert vos.encoder.padding_mode == "zeros"
    assert torch.equal(vos.encoder.trunk.layer3[1].conv2.weight, full["layer3.1.conv2.weight"])
    reflect = models.load_model("labelprop", checkpoint=path, encoder="resnet18", padding_mode="reflect")
    assert reflect.encoder.trunk.layer1[0].conv1.padding_mode == "reflect"
    broken = dict(full)
    del broken["layer2.0.bn1.weight"]
    torch.save(broken, path)
    with pytest.raises(CheckpointError, match="layer2.0.bn1.weight"):
        models.load_model("labelprop", checkpoint=path, encoder="resnet18")


def test_pixel_encoder_kernel():
    """Unit-norm features whose dot product falls with colour distance."""
    enc = PixelEncoder()
    frames = np.zeros((1, 16, 48, 3), np.uint8)
    frames[0, :, 16:32] = (200, 30, 30)
    frames[0, :, 32:] = (205, 35, 30)
    feats = enc.encode(frames)[0]
    assert feats.shape == (128, 2, 6)
    torch.testing.assert_close(feats.norm(dim=0), torch.ones(2, 6))
    same, near, far = (feats[:, 0, 3] @ feats[:, 0, 2]), (feats[:, 0, 3] @ feats[:, 0, 4]), (feats[:, 0, 3] @ feats[:, 0, 0])
    assert same > near > far


def test_cycle_loss_extremes():
    gen = torch.Generator().manual_seed(0)
    distinct = torch.nn.functional.normalize(torch.randn(1, 1, 9, 32, generator=gen), dim=-1).expand(2, 4, 9, 32)
    low = crw_cycle_loss(torch.eye(9).expand(2, 4, 9, 9), temperature=0.05, edge_dropout=0.0)
    same = crw_cycle_loss(torch.ones(2, 4, 9, 8) / 8 ** 0.5, temperature=0.05, edge_dropout=0.0)
    assert low < 1e-3
    assert torch.isclose(same, torch.log(torch.tensor(9.0)), atol=1e-4)
    assert crw_cycle_loss(distinct, temperature=0.05, edge_dropout=0.0) < same


def test_ttt_adapts_a_copy(tiny_davis_sample):
    from davis_c.datasets import Davis2017

    ds = Davis2017(tiny_davis_sample)
    video = ds.load(ds.videos[0])
    frames, mask = video.frames[:6, :32, :48], video.masks[0, :32, :48]  # small: CPU CI budget
    vos = models.golden_init(models.load_model("labelprop", encoder="resnet18"), seed=0)
    before = {k: v.clone() for k, v in vos.state_dict().items()}
    params = dict(kind="crw", iterations=1, rounds=1, lr=1e-3, every=3, window=2, crop=32, patch=16,
                  patch_stride=8, batch_size=1, seed=0)
    adapted = vos.test_time_adapt(frames, mask, **params)
    assert all(torch.equal(before[k], v) for k, v in vos.state_dict().items())  # original untouched
    assert vos.ttt_schedule is None
    assert [p for p, _ in adapted.ttt_schedule] == [0, 3]
    assert not torch.equal(adapted.ttt_schedule[0][1]["trunk.conv1.weight"], before["encoder.trunk.conv1.weight"])
    probs = adapted.segment(frames, mask, context=2)
    assert probs.shape == (len(np.setdiff1d(mask, [0, 255])) + 1, *frames.shape[:3])
    np.testing.assert_allclose(probs.sum(0), 1, atol=1e-5)
    # models.ttt.adapt delegates to the hook with the bundled preset; seeded, so reproducible
    from models import ttt

    preset = {**ttt.load_preset("labelprop_ttt"), **{k: v for k, v in params.items() if k != "seed"}}
    again = ttt.adapt(vos, frames, mask, seed=0, **preset)
    assert torch.equal(again.ttt_schedule[1][1]["trunk.layer3.1.conv2.weight"],
                       adapted.ttt_schedule[1][1]["trunk.layer3.1.conv2.weight"])
    with pytest.raises(ValueError, match="no weights to adapt"):
        adapt_crw(models.load_model("labelprop", encoder="pixels"), frames, mask)
    with pytest.raises(ValueError, match="crw"):
        vos.test_time_adapt(frames, mask, kind="mcc")
