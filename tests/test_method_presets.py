"""Method presets inherit (``base:``) and resolve through OmegaConf to exactly the settings they had
before inheritance existed (``tests/data/method_presets_resolved.json`` is the resolved dict of every
preset as shipped before the change, written by the previous hand-written merger)."""
import json
from pathlib import Path

import pytest

from harness.methods import REFERENCE_KEYS, MethodError, available_methods, load_method

SNAPSHOT = json.loads((Path(__file__).parent / "data" / "method_presets_resolved.json").read_text())


@pytest.mark.parametrize("name", sorted(SNAPSHOT))
def test_preset_resolves_to_the_settings_it_had(name):
    """Every run setting is as before; only the report metadata (paper_name, published) is new."""
    resolved = load_method(name)[1]
    assert {k: v for k, v in resolved.items() if k not in REFERENCE_KEYS} == SNAPSHOT[name]


def test_children_name_their_own_paper_row():
    """A TTT preset inherits its base's settings but never its paper row (STCN+tt-MCC is not STCN)."""
    assert load_method("stcn")[1]["paper_name"] == "STCN"
    assert load_method("stcn+mcc")[1]["paper_name"] == "STCN+tt-MCC"
    assert load_method("stcn+ent")[1]["paper_name"] is None
    for name in available_methods():
        cfg = load_method(name)[1]
        if cfg["ttt"] is not None:
            assert cfg["paper_name"] in (None,) or "tt-" in cfg["paper_name"], name


def test_every_shipped_preset_resolves():
    for name in available_methods():
        _, cfg = load_method(name)
        assert cfg["model"]


def test_ttt_presets_inherit_their_base():
    assert (Path(__file__).parents[1] / "harness" / "methods" / "stcn+mcc.yaml").read_text().startswith("base: stcn")
    base, mcc = load_method("stcn")[1], load_method("stcn+mcc")[1]
    assert {k for k in base if base[k] != mcc[k]} == {"description", "ttt", "paper_name"}


def _write(folder, name, text):
    (folder / f"{name}.yaml").write_text(text)


def test_base_chain_cycle_and_unknown_base(tmp_path):
    _write(tmp_path, "a", "model: stcn\nsegment: {top_k: 5, mem_every: 3}\nresolution: 240\n")
    _write(tmp_path, "b", "base: a\nsegment: {top_k: 7}\n")
    _write(tmp_path, "c", "base: b\nttt: stcn_mcc\n")
    cfg = load_method("c", methods_dir=tmp_path)[1]
    assert cfg["segment"] == {"top_k": 7, "mem_every": 3} and cfg["resolution"] == 240 and cfg["ttt"] == "stcn_mcc"
    _write(tmp_path, "x", "base: y\nmodel: stcn\n")
    _write(tmp_path, "y", "base: x\n")
    with pytest.raises(MethodError, match="cycle: x -> y -> x"):
        load_method("x", methods_dir=tmp_path)
    _write(tmp_path, "z", "base: nope\n")
    with pytest.raises(MethodError, match="unknown base of 'z' 'nope'"):
        load_method("z", methods_dir=tmp_path)


def test_user_config_may_inherit_a_shipped_preset(tmp_path):
    cfg_file = tmp_path / "mine.yaml"
    cfg_file.write_text("base: stcn+mcc\nsegment: {top_k: 30}\n")
    name, cfg = load_method(config_file=cfg_file)
    assert name == "mine" and cfg["ttt"] == "stcn_mcc"
    assert cfg["segment"] == {"top_k": 30, "mem_every": 5, "include_last": False}


@pytest.mark.parametrize("item, key", [("random_init_scale=abc", "random_init_scale"),
                                       ("ttt=[1, 2]", "ttt"), ("description={a: 1}", "description")])
def test_wrong_types_are_refused_with_the_key_named(item, key):
    with pytest.raises(MethodError, match=key):
        load_method("stcn", overrides=[item])


def test_dotted_overrides_create_and_replace():
    cfg = load_method("stcn", overrides=["segment.top_k=30", "ttt_params.iterations=2", "resolution=null",
                                         "load.extra.depth=1e-5"])[1]
    assert cfg["segment"]["top_k"] == 30 and cfg["ttt_params"] == {"iterations": 2}
    assert cfg["resolution"] is None and cfg["load"] == {"extra": {"depth": 1e-5}}
