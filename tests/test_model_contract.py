"""The model-family contract (models.base, docs/models.md), checked for every registered family: it loads
from the one registry with untrained (golden-init) weights, segments a 3-frame video whose second object
appears on frame 2, rejects unknown or ill-typed options by name (in the model and in the harness's check
before a run), restores the train/eval mode it found, and has its TTT hooks in its own ``ttt.py``."""
from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch

import models
from models.base import OptionError, OwnTTT, TTTHooks, VOSModel, declared_options, option_defaults

pytestmark = pytest.mark.usefixtures("one_torch_thread")

H, W = 32, 48
#: one registry name per family, with the smallest load options that build it (SAM 2 at a 64-pixel input,
#: Cutie on its ResNet-18 variant, label propagation on weight-free pixel features, e-OSVOS at a 32-pixel
#: network input)
FAMILIES = {
    "stcn": {},
    "xmem": {},
    "cutie": {"variant": "small"},
    "labelprop": {"encoder": "pixels"},
    "sam2.1_hiera_t": {"image_size": 64},
    "eosvos": {"min_size": 32, "max_size": 48},
}
#: per-call options that keep a family's segment cheap here (e-OSVOS: one fine-tuning step of one copy)
FAST_SEGMENT = {"e-OSVOS": {"num_epochs": 1, "batch_size": 1, "augment": False}}


def _segment(vos, frames, masks, **options):
    return vos.segment(frames, masks, **{**FAST_SEGMENT.get(vos.family, {}), **options})


def _builder_module(name: str) -> str:
    build = models.builder(name)
    return getattr(build, "func", build).__module__  # SAM 2's names are partials of one load


def _family_package(name: str) -> str:
    """``models.<family>`` of a registered name, from its builder's module."""
    return _builder_module(name).rsplit(".", 1)[0]


def test_every_registered_name_belongs_to_a_checked_family():
    checked = {_family_package(name) for name in FAMILIES}
    for name in models.available_models():
        assert _family_package(name) in checked, f"{name}: add its family to FAMILIES"


@pytest.mark.parametrize("name", models.available_models())
def test_layout_builder_in_model_py(name):
    # every builder is ``load`` (or a partial of it) in models/<family>/model.py
    assert _builder_module(name) == f"{_family_package(name)}.model"


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def vos(request):
    torch.manual_seed(0)
    return models.golden_init(models.load_model(request.param, device="cpu", **FAMILIES[request.param]))


@pytest.fixture(scope="module")
def video():
    """3 frames of a blocky random background; object 1 on frame 0, object 2 first given on frame 2."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (3, H // 4, W // 4, 3)).repeat(4, 1).repeat(4, 2).astype(np.uint8)
    first, later = np.zeros((H, W), np.uint8), np.zeros((H, W), np.uint8)
    first[4:14, 4:18] = 1
    later[18:28, 26:40] = 2
    return frames, {0: first, 2: later}


def test_load(vos):
    assert isinstance(vos, VOSModel) and isinstance(vos, torch.nn.Module)
    assert not vos.training
    assert vos.config == option_defaults(vos.Options)
    assert type(vos).__module__ == f"{type(vos).__module__.rsplit('.', 1)[0]}.model"


def test_segment_with_a_later_object(vos, video):
    frames, given = video
    if getattr(vos, "first_frame_only", False):  # e-OSVOS fine-tunes on frame 0: a later object is refused
        with pytest.raises(ValueError, match="frame 0"):
            _segment(vos, frames, given)
        given = {0: np.maximum(given[0], given[2])}
    probs = _segment(vos, frames, given)
    assert probs.dtype == np.float32 and probs.shape == (3, 3, H, W)
    assert np.isfinite(probs).all() and (probs >= 0).all()
    if getattr(vos, "sums_to_one", True):
        np.testing.assert_allclose(probs.sum(0), 1, atol=1e-5)
    if 2 in given:
        assert (probs[2, :2] == 0).all()                # object 2 does not exist before frame 2
    assert probs.argmax(0)[0][given[0] == 1].mean() > 0.5   # frame 0 keeps its given object
    again = _segment(vos, frames, given[0])               # a plain first-frame label map is the same as {0: map}
    assert again.shape == (len(probs) - (2 in given), 3, H, W) if 2 in given else again.shape == probs.shape


def test_options_rejected_by_name(vos, video):
    frames, given = video
    with pytest.raises(OptionError, match="no_such_option") as err:
        _segment(vos, frames, given, no_such_option=1)
    assert err.value.option == "no_such_option" and isinstance(err.value, TypeError)
    first = next(iter(declared_options(vos.Options)))
    with pytest.raises(OptionError, match=first) as err:
        _segment(vos, frames, given, **{first: "not-a-value"})
    assert err.value.option == first
    assert vos.options({first: vos.config[first]}) == vos.config


def test_harness_checks_options_through_the_model(vos):
    from harness.methods import MethodError
    from harness.options import check_options

    first = next(iter(declared_options(vos.Options)))
    config = {"model": "any", "load": {}, "segment": {first: vos.config[first]}, "ttt_params": {}}
    check_options(config, vos)
    config["segment"] = {"no_such_option": 1, first: "not-a-value"}
    with pytest.raises(MethodError) as err:
        check_options(config, vos)
    assert "segment.no_such_option" in str(err.value) and f"segment.{first}" in str(err.value)


def test_mode_restored(vos, video):
    frames, given = video
    try:
        for training in (True, False):
            vos.train(training)
            _segment(vos, frames, given[0])
            assert vos.training is training
            assert all(m.training is training for m in vos.modules())
    finally:
        vos.eval()


def test_ttt_hooks_in_the_family_ttt_module(vos, video):
    package = type(vos).__module__.rsplit(".", 1)[0]
    if package == "models.eosvos":  # its adaptation (first-frame fine-tuning) is part of segment
        assert not isinstance(vos, (TTTHooks, OwnTTT)) and not hasattr(vos, "ttt_module")
        assert vos.sums_to_one is False and vos.first_frame_only is True
        return
    assert vos.ttt_module is importlib.import_module(f"{package}.ttt")
    if isinstance(vos, OwnTTT):
        assert callable(vos.ttt_module.adapt) and callable(vos.test_time_adapt)
        return
    assert isinstance(vos, TTTHooks)
    for hook in ("prepare", "pseudo_labels", "cycle", "single"):
        assert callable(getattr(vos.ttt_module, hook)), hook
    assert hasattr(vos.ttt_module, "FREEZE_GROUPS") or callable(vos.ttt_module.freeze_groups)
    frames, given = video
    images = vos.prepare(frames)
    vos.train()
    try:
        labels = vos.ttt_pseudo_labels(images, torch.from_numpy(given[0].astype(np.int64)))
        assert vos.training
    finally:
        vos.eval()
    assert labels.dtype == torch.uint8 and tuple(labels.shape) == (3, H, W)
    assert set(vos.ttt_freeze_groups()) and isinstance(vos.ttt_pad, int)


def test_plugin_example_uses_the_contract(monkeypatch, video):
    from pathlib import Path

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1]))  # examples.plugin_model, as from the root
    plugin = models.builder("examples.plugin_model:load")(checkpoint=None, device="cpu")
    assert isinstance(plugin, VOSModel) and plugin.config == {"confidence": 1.0}
    frames, given = video
    plugin.train()
    probs = plugin.segment(frames, given[0], confidence=0.9)
    assert plugin.training
    np.testing.assert_allclose(probs.sum(0), 1, atol=1e-6)
    assert (probs.argmax(0) == given[0]).all() and probs.max() == np.float32(0.9)
    with pytest.raises(OptionError, match="confidence"):
        plugin.segment(frames, given[0], confidence="high")
