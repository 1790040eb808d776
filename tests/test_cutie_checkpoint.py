"""Loading Cutie checkpoints: official layouts (plain state dicts of cutie-base / cutie-small), strict,
safe (weights_only), variant read from the tensors, clear errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models import load_model
from models.checkpoint import CheckpointError
from models.cutie import DEFAULT_CONFIG, Cutie, variant_from_state_dict


def _official_like(variant: str) -> dict[str, torch.Tensor]:
    """A state dict in the official layout (every entry the trainer's state_dict() holds)."""
    torch.manual_seed(0)
    model = Cutie(variant)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.01)
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def base_state():
    return _official_like("base")


def _same(a, b):
    assert list(a) == list(b)
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_load_base_file_strict_and_eval(tmp_path, base_state):
    path = tmp_path / "cutie-base-mega.pth"
    torch.save(base_state, path)
    model = load_model("cutie", checkpoint=path, device="cpu")
    assert isinstance(model, Cutie) and not model.training and model.variant == "base"
    _same(model.state_dict(), base_state)
    assert model.config == DEFAULT_CONFIG
    assert len(base_state) == 527 and "object_transformer.spatial_pe.inv_freq" in base_state
    assert not any(k.startswith(("pixel_mean", "pixel_std")) or ".layer4." in k for k in base_state)


def test_small_variant_is_read_from_the_checkpoint(tmp_path):
    state = _official_like("small")
    path = tmp_path / "cutie-small-mega.pth"
    torch.save(state, path)
    model = load_model("cutie", checkpoint=path, device="cpu")
    assert model.variant == "small" and len(state) == 359
    _same(model.state_dict(), state)
    with pytest.raises(CheckpointError, match="cutie-small checkpoint, but variant='base'"):
        load_model("cutie", checkpoint=path, device="cpu", variant="cutie-base")
    assert variant_from_state_dict(state) == "small"


def test_missing_unexpected_and_misshaped_keys_are_named(base_state):
    broken = dict(base_state)
    del broken["mask_decoder.pred.weight"]
    broken["aux_computer.extra.weight"] = torch.zeros(3)
    broken["key_proj.d_proj.bias"] = torch.zeros(2)
    with pytest.raises(CheckpointError) as info:
        load_model("cutie", checkpoint=broken, device="cpu")
    msg = str(info.value)
    assert "missing keys: mask_decoder.pred.weight" in msg
    assert "unexpected keys: aux_computer.extra.weight" in msg
    assert "key_proj.d_proj.bias: checkpoint (2,) vs network (1,)" in msg


def test_not_a_cutie_checkpoint_and_single_object(base_state, tmp_path):
    with pytest.raises(CheckpointError, match="not a Cutie checkpoint"):
        load_model("cutie", checkpoint={"conv.weight": torch.zeros(1, 1, 1, 1)}, device="cpu")
    single = dict(base_state)
    single["mask_encoder.conv1.weight"] = single["mask_encoder.conv1.weight"][:, :4]
    with pytest.raises(CheckpointError, match="single-object"):
        load_model("cutie", checkpoint=single, device="cpu")
    bad = tmp_path / "broken.pth"
    bad.write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_model("cutie", checkpoint=bad, device="cpu")


def test_pickled_code_is_refused(tmp_path, base_state):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pth"
    torch.save({"weights": Evil()}, path)
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_model("cutie", checkpoint=path, device="cpu")


def test_config_overrides_and_unknown_option(base_state):
    model = load_model("cutie", checkpoint=base_state, device="cpu", top_k=20, long_term={"num_prototypes": 64})
    assert model.config["top_k"] == 20 and model.config["long_term_num_prototypes"] == 64
    assert model.config["mem_every"] == 5 and model.config["use_long_term"] is False
    with pytest.raises(TypeError, match="not an option of Cutie"):
        load_model("cutie", checkpoint=base_state, device="cpu", topk=20)
    with pytest.raises(TypeError, match="not an option of Cutie"):
        model.segment(np.zeros((1, 32, 32, 3), np.uint8), np.ones((32, 32), np.uint8), memevery=3)
    with pytest.raises(ValueError, match="flip_aug"):
        load_model("cutie", checkpoint=base_state, device="cpu", flip_aug=True)
    with pytest.raises(ValueError, match="unknown Cutie variant"):
        load_model("cutie", device="cpu", variant="large")
