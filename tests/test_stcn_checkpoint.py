"""Loading STCN checkpoints: official layouts load strictly, broken ones fail with clear errors."""
from __future__ import annotations

import pytest
import torch

import models
from models import golden_init
from models.checkpoint import CheckpointError
from models.stcn import STCN, stcn_state_dict


@pytest.fixture(scope="module")
def state() -> dict[str, torch.Tensor]:
    return golden_init(STCN(), seed=3, s=1.0).state_dict()


@pytest.fixture(scope="module")
def saved(tmp_path_factory, state):
    path = tmp_path_factory.mktemp("ckpt") / "stcn_random.pth"
    torch.save(state, path)
    return path


def _same(a: dict, b: dict) -> bool:
    return list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)


def test_plain_file_loads_strictly(saved, state):
    vos = models.load_model("stcn", checkpoint=saved, device="cpu")
    assert not vos.training
    assert _same(vos.state_dict(), state)


def test_resume_file_with_network_key(tmp_path, state):
    path = tmp_path / "stcn_checkpoint.pth"
    torch.save({"it": 1000, "network": state, "optimizer": {"state": {}, "param_groups": [{"lr": 1e-5}]},
                "scheduler": {"last_epoch": 3}}, path)
    assert _same(models.load_model("stcn", checkpoint=path, device="cpu").state_dict(), state)


def test_in_memory_state_dict_and_dataparallel_prefix(state):
    prefixed = {"module." + k: v for k, v in state.items()}
    assert _same(models.load_model("stcn", checkpoint=prefixed, device="cpu").state_dict(), state)


def test_stage0_four_channel_stem_gets_a_zero_others_channel(state):
    s0 = dict(state)
    s0["value_encoder.conv1.weight"] = state["value_encoder.conv1.weight"][:, :4].clone()
    fixed = stcn_state_dict(s0)
    w = fixed["value_encoder.conv1.weight"]
    assert w.shape == (64, 5, 7, 7)
    assert torch.equal(w[:, :4], s0["value_encoder.conv1.weight"]) and not w[:, 4].any()
    vos = models.load_model("stcn", checkpoint=s0, device="cpu")
    assert torch.equal(vos.state_dict()["value_encoder.conv1.weight"], w)


def test_missing_key_is_named(state):
    broken = dict(state)
    del broken["decoder.pred.bias"]
    with pytest.raises(CheckpointError, match=r"missing keys: decoder\.pred\.bias"):
        models.load_model("stcn", checkpoint=broken, device="cpu")


def test_unexpected_key_is_named(state):
    broken = dict(state, **{"key_encoder.fc.weight": torch.zeros(10, 2048)})
    with pytest.raises(CheckpointError, match=r"unexpected keys: key_encoder\.fc\.weight"):
        models.load_model("stcn", checkpoint=broken, device="cpu")


def test_wrong_shape_is_named(state):
    broken = dict(state, **{"key_proj.key_proj.weight": torch.zeros(32, 1024, 3, 3)})
    with pytest.raises(CheckpointError, match=r"wrong shapes: key_proj\.key_proj\.weight: checkpoint \(32, 1024, 3, 3\)"):
        models.load_model("stcn", checkpoint=broken, device="cpu")


def test_truncated_and_missing_files(tmp_path, saved):
    cut = tmp_path / "truncated.pth"
    cut.write_bytes(saved.read_bytes()[: 1 << 20])
    with pytest.raises(CheckpointError, match="cannot read checkpoint .*truncated.pth"):
        models.load_model("stcn", checkpoint=cut, device="cpu")
    with pytest.raises(CheckpointError, match="not found"):
        models.load_model("stcn", checkpoint=tmp_path / "absent.pth", device="cpu")


def test_non_finite_weights_are_refused(state):
    broken = dict(state, **{"decoder.pred.bias": torch.tensor([float("nan")])})
    with pytest.raises(CheckpointError, match="non-finite"):
        models.load_model("stcn", checkpoint=broken, device="cpu")
