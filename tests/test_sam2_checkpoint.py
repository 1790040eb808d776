"""SAM 2 / 2.1 checkpoints: official key set and order, golden init v2 checksums, strict and safe
loading of synthetic files in the official layout (``{"model": state_dict}``), clear errors."""
from __future__ import annotations

import json

import pytest
import torch

import models
from models import load_model
from models.checkpoint import CheckpointError
from models.sam2 import SAM2, MODEL_NAMES, golden_state_dict_v2, load_config
from models.sam2.golden import golden_rule
from models.sam2.hiera import block_layout


def _meta(name: str) -> SAM2:
    with torch.device("meta"):
        return SAM2(name)


@pytest.fixture(scope="module")
def keys(golden):
    return json.loads((golden / "sam2" / "state_dict_keys.json").read_text())


@pytest.fixture(scope="module")
def tiny_golden_state():
    return golden_state_dict_v2(SAM2("sam2.1_hiera_t").state_dict())


@pytest.mark.parametrize("name", ["sam2.1_hiera_t", "sam2.1_hiera_b+"])
def test_state_dict_names_shapes_and_order_are_official(keys, name):
    ref = keys["keys"][name]
    sd = _meta(name).state_dict()
    assert list(sd) == [e["name"] for e in ref]
    assert [list(v.shape) for v in sd.values()] == [e["shape"] for e in ref]
    buffers = {n for n, _ in _meta(name).named_buffers()}
    assert buffers == {e["name"] for e in ref if e["kind"] == "buffer"}
    assert [golden_rule(e["name"], tuple(e["shape"])) for e in ref] == [
        e["golden_init_v2_rule"].replace("bias_plus_b_obj", "bias") for e in ref]


@pytest.mark.parametrize("name, entries, values, trunk", [
    ("sam2.1_hiera_t", 471, 38_962_754, 26_849_472), ("sam2.1_hiera_s", 519, 46_060_610, 33_947_328),
    ("sam2.1_hiera_b+", 615, 80_850_434, 68_675_712), ("sam2.1_hiera_l", 903, 224_446_898, 212_149_296)])
def test_sizes_of_every_21_config(name, entries, values, trunk):
    sd = _meta(name).state_dict()
    assert len(sd) == entries
    assert sum(v.numel() for v in sd.values()) == values
    assert sum(v.numel() for k, v in sd.items() if k.startswith("image_encoder.trunk.")) == trunk


def test_20_configs_lack_the_21_tensors():
    for size in ("t", "s", "b+", "l"):
        new, old = _meta(f"sam2.1_hiera_{size}").state_dict(), _meta(f"sam2_hiera_{size}").state_dict()
        assert set(new) - set(old) == {"no_obj_embed_spatial", "obj_ptr_tpos_proj.weight", "obj_ptr_tpos_proj.bias"}
        assert set(old) <= set(new)
    assert load_config("sam2_hiera_t")["version"] == "2.0"


def test_block_layout_of_tiny_and_base_plus():
    t = load_config("sam2.1_hiera_t")["trunk"]
    lay = block_layout(t["embed_dim"], t["num_heads"], t["stages"], t["global_att_blocks"], t["window_spec"])
    got = [(b["dim"], b["dim_out"], b["heads"], b["window"], b["pool_q"]) for b in lay]
    assert got == [(96, 96, 1, 8, False), (96, 192, 2, 8, True), (192, 192, 2, 4, False), (192, 384, 4, 4, True),
                   (384, 384, 4, 14, False), (384, 384, 4, 0, False), (384, 384, 4, 14, False),
                   (384, 384, 4, 0, False), (384, 384, 4, 14, False), (384, 384, 4, 0, False),
                   (384, 768, 8, 14, True), (768, 768, 8, 7, False)]
    b = load_config("sam2.1_hiera_b+")["trunk"]
    lay = block_layout(b["embed_dim"], b["num_heads"], b["stages"], b["global_att_blocks"], b["window_spec"])
    assert [i for i, x in enumerate(lay) if x["window"] == 0] == [12, 16, 20]
    assert [i for i, x in enumerate(lay) if x["pool_q"]] == [2, 5, 21]
    assert [x["window"] for x in lay[21:]] == [14, 7, 7] and lay[23]["heads"] == 16


def test_golden_init_v2_checksums(keys, tiny_golden_state):
    """Every tensor of the recipe (seed 0, s = e = g = 1, b_obj 2) against the README's checksums."""
    for e in keys["keys"]["sam2.1_hiera_t"]:
        v = tiny_golden_state[e["name"]].double()
        c = e["golden_init_v2_seed0"]
        assert v.flatten()[:3].tolist() == pytest.approx(c["first"], rel=0, abs=0), e["name"]
        assert v.sum().item() == pytest.approx(c["sum"], rel=1e-9, abs=1e-9), e["name"]
        assert v.abs().sum().item() == pytest.approx(c["abs_sum"], rel=1e-9), e["name"]


def test_golden_init_b_obj_shifts_one_bias_only(tiny_golden_state):
    shifted = golden_state_dict_v2(SAM2("sam2.1_hiera_t").state_dict(), b_obj=0.0)
    diff = [k for k in shifted if not torch.equal(shifted[k], tiny_golden_state[k])]
    assert diff == ["sam_mask_decoder.pred_obj_score_head.layers.2.bias"]
    key = diff[0]
    assert torch.allclose(tiny_golden_state[key] - shifted[key], torch.tensor([2.0]))


def test_models_golden_init_uses_the_sam2_recipe(tiny_golden_state):
    model = models.golden_init(load_model("sam2.1_hiera_t", device="cpu"))
    for k, v in model.state_dict().items():
        assert torch.equal(v, tiny_golden_state[k]), k


def test_official_layout_file_loads_strictly(tmp_path, tiny_golden_state):
    path = tmp_path / "sam2.1_hiera_tiny.pt"
    torch.save({"model": tiny_golden_state}, path)
    model = load_model("sam2.1_hiera_t", checkpoint=path, device="cpu")
    assert isinstance(model, SAM2) and not model.training and model.version == "2.1"
    for k, v in model.state_dict().items():
        assert torch.equal(v, tiny_golden_state[k]), k


def test_all_model_names_are_registered():
    for name in MODEL_NAMES:
        assert name in models.available_models()
    assert {"sam2.1_hiera_t", "sam2.1_hiera_s", "sam2.1_hiera_b+", "sam2.1_hiera_l"} <= set(models.available_models())


def test_missing_unexpected_and_misshaped_keys_are_named(tmp_path, tiny_golden_state):
    bad = dict(tiny_golden_state)
    del bad["memory_attention.norm.weight"]
    bad["extra.weight"] = torch.zeros(1)
    bad["no_obj_ptr"] = torch.zeros(1, 128)
    path = tmp_path / "bad.pt"
    torch.save({"model": bad}, path)
    with pytest.raises(CheckpointError) as err:
        load_model("sam2.1_hiera_t", checkpoint=path, device="cpu")
    msg = str(err.value)
    assert "missing keys: memory_attention.norm.weight" in msg
    assert "unexpected keys: extra.weight" in msg
    assert "no_obj_ptr: checkpoint (1, 128) vs network (1, 256)" in msg and str(path) in msg


def test_version_mismatch_is_explained(tiny_golden_state):
    old = {k: v for k, v in tiny_golden_state.items()
           if k not in ("no_obj_embed_spatial", "obj_ptr_tpos_proj.weight", "obj_ptr_tpos_proj.bias")}
    with pytest.raises(CheckpointError, match="SAM 2.0 checkpoint"):
        load_model("sam2.1_hiera_t", checkpoint={"model": old}, device="cpu")
    assert load_model("sam2_hiera_t", checkpoint={"model": old}, device="cpu").version == "2.0"
    with pytest.raises(CheckpointError, match="SAM 2.1 checkpoint"):
        load_model("sam2_hiera_t", checkpoint={"model": tiny_golden_state}, device="cpu")


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model": {"w": torch.zeros(1)}, "hook": _Unsafe()}, path)
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_model("sam2.1_hiera_t", checkpoint=path, device="cpu")


class _Unsafe:
    pass


def test_unknown_option_and_bad_image_size():
    with pytest.raises(TypeError, match="not an option of SAM 2"):
        load_model("sam2.1_hiera_t", device="cpu", amp_mode=True)
    with pytest.raises(ValueError, match="multiple of 64"):
        SAM2("sam2.1_hiera_t", image_size=100)
    with pytest.raises(ValueError, match="unknown SAM 2 config"):
        load_config("sam2.1_hiera_xl")
