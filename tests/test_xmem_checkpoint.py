"""Loading XMem checkpoints: strict, safe, dims inferred from the tensors, clear errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models import load_model
from models.checkpoint import CheckpointError
from models.xmem import DEFAULT_CONFIG, XMem, dims_from_state_dict


@pytest.fixture(scope="module")
def reference_state():
    torch.manual_seed(0)
    model = XMem()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.01)
    return {k: v.clone() for k, v in model.state_dict().items()}


def _same(a, b):
    assert list(a) == list(b)
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_load_file_strict_and_eval(tmp_path, reference_state):
    path = tmp_path / "XMem.pth"
    torch.save(reference_state, path)
    model = load_model("xmem", checkpoint=path, device="cpu")
    assert isinstance(model, XMem) and not model.training
    _same(model.state_dict(), reference_state)
    assert (model.key_dim, model.value_dim, model.hidden_dim) == (64, 512, 64)
    assert model.config == DEFAULT_CONFIG


def test_wrapped_and_prefixed_state_dicts_load(reference_state):
    wrapped = {"network": {"module." + k: v for k, v in reference_state.items()}}
    _same(load_model("xmem", checkpoint=wrapped).state_dict(), reference_state)


def test_config_overrides_and_unknown_option(reference_state):
    model = load_model("xmem", checkpoint=reference_state, top_k=20, enable_long_term=False)
    assert model.config["top_k"] == 20 and model.config["enable_long_term"] is False
    assert model.config["mem_every"] == 5
    with pytest.raises(TypeError, match="not an option of XMem"):
        load_model("xmem", checkpoint=reference_state, topk=20)
    with pytest.raises(TypeError, match="not an option of XMem"):
        model.segment(np.zeros((1, 32, 32, 3), np.uint8), np.ones((32, 32), np.uint8), memevery=3)


def test_dims_inferred_from_checkpoint_no_sensory_variant():
    small = XMem(key_dim=32, value_dim=256, hidden_dim=0)
    state = small.state_dict()
    assert not any(k.startswith("decoder.hidden_update") or k.startswith("value_encoder.hidden_reinforce")
                   for k in state)
    assert dims_from_state_dict(state) == {"key_dim": 32, "value_dim": 256, "hidden_dim": 0}
    model = load_model("xmem", checkpoint=state)
    assert (model.key_dim, model.value_dim, model.hidden_dim) == (32, 256, 0)
    assert model.decoder.fuser.block1.conv1.in_channels == 1024 + 256
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (3, 96, 96, 3), dtype=np.uint8)
    mask = np.zeros((96, 96), np.uint8)
    mask[20:50, 20:60] = 1
    probs = model.segment(frames, mask)
    assert probs.shape == (2, 3, 96, 96) and np.isfinite(probs).all()


def test_single_object_checkpoint_gets_zero_others_channel(reference_state):
    state = dict(reference_state)
    state["value_encoder.conv1.weight"] = reference_state["value_encoder.conv1.weight"][:, :4].clone()
    model = load_model("xmem", checkpoint=state)
    w = model.value_encoder.conv1.weight
    assert w.shape[1] == 5 and torch.equal(w[:, 4], torch.zeros_like(w[:, 4]))
    assert torch.equal(w[:, :4], state["value_encoder.conv1.weight"])


def test_explicit_dims_must_agree_with_checkpoint(reference_state):
    with pytest.raises(CheckpointError, match="value_dim=256 vs 512"):
        load_model("xmem", checkpoint=reference_state, value_dim=256)


@pytest.mark.parametrize("breakage, message", [
    ("missing", "missing keys: decoder.pred.bias"),
    ("unexpected", "unexpected keys: extra.weight"),
    ("shape", "wrong shapes: decoder.pred.weight"),
    ("not_xmem", "not an XMem checkpoint"),
])
def test_bad_state_dicts(reference_state, breakage, message):
    state = dict(reference_state)
    if breakage == "missing":
        del state["decoder.pred.bias"]
    elif breakage == "unexpected":
        state["extra.weight"] = torch.zeros(1)
    elif breakage == "shape":
        state["decoder.pred.weight"] = torch.zeros(1, 256, 1, 1)
    else:  # e.g. an STCN checkpoint: no selection/shrinkage projections, other value dims
        state = {"key_proj.key_proj.weight": torch.zeros(64, 1024, 3, 3), "key_comp.weight": torch.zeros(1)}
    with pytest.raises(CheckpointError, match=message):
        load_model("xmem", checkpoint=state)


def test_bad_files(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_model("xmem", checkpoint=tmp_path / "absent.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"this is not a torch file")
    with pytest.raises(CheckpointError, match="cannot read checkpoint .*junk.pth"):
        load_model("xmem", checkpoint=junk)
    pickled = tmp_path / "object.pth"
    torch.save({"a": object()}, pickled)  # weights_only refuses arbitrary objects
    with pytest.raises(CheckpointError, match="object.pth"):
        load_model("xmem", checkpoint=pickled)
