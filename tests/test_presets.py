"""common.presets: the one YAML preset loader (method presets, TTT presets, SAM 2 configs)."""
from __future__ import annotations

import pytest

from common.presets import PresetError, available, load_preset, read_yaml


def _write(folder, **files):
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / f"{name}.yaml").write_text(text)
    return folder


def test_base_chain_merges_mappings_and_replaces_the_rest(tmp_path):
    d = _write(tmp_path / "p", a="x: 1\nseg: {k: 1, m: 2}\nlst: [1, 2]\n", b="base: a\nseg: {k: 5}\nlst: [3]\n",
               c="base: b\ny: hello\n")
    config, files = load_preset("c", d)
    assert config == {"x": 1, "seg": {"k": 5, "m": 2}, "lst": [3], "y": "hello"}
    assert [f.rsplit("/", 1)[1] for f in files] == ["a.yaml", "b.yaml", "c.yaml"]
    assert available(d) == ["a", "b", "c"]
    assert load_preset("a", d) == ({"x": 1, "seg": {"k": 1, "m": 2}, "lst": [1, 2]}, [str(d / "a.yaml")])


def test_errors_name_the_file_in_the_callers_type(tmp_path):
    class MyError(ValueError):
        pass

    d = _write(tmp_path / "p", x="base: y\n", y="base: x\n", z="base: nope\n", bad="a: [1\n", lst="- 1\n",
               num="base: 3\n")
    with pytest.raises(MyError, match="cycle: x -> y -> x"):
        load_preset("x", d, error=MyError)
    with pytest.raises(PresetError, match="unknown base of 'z' 'nope'; available: bad, lst, num, x, y, z!"):
        load_preset("z", d, hint="!")
    with pytest.raises(PresetError, match="unknown thing 'q'"):
        load_preset("q", d, what="thing")
    with pytest.raises(PresetError, match="bad.yaml is not valid YAML"):
        load_preset("bad", d)
    with pytest.raises(PresetError, match="lst.yaml: expected a mapping of settings, got list"):
        load_preset("lst", d)
    with pytest.raises(PresetError, match="'base' must name another preset, got 3"):
        load_preset("num", d)
    with pytest.raises(PresetError, match="preset file not found"):
        load_preset(tmp_path / "missing.yaml", d)
    with pytest.raises(PresetError, match="unknown preset"):  # paths=False: a path is only a name
        load_preset(str(tmp_path / "missing.yaml"), d, paths=False)
    assert read_yaml(_write(tmp_path / "e", empty="") / "empty.yaml") == {}


def test_a_users_ttt_preset_inherits_a_bundled_one(tmp_path):
    from models.ttt import load_preset as ttt_preset

    mine = tmp_path / "mine.yaml"
    mine.write_text("base: stcn_mcc\niterations: 2\n")
    bundled = ttt_preset("stcn_mcc")
    assert ttt_preset(mine) == {**bundled, "iterations": 2}
    assert isinstance(bundled["lr"], float)
