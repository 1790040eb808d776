"""Weight conversion TF -> PyTorch without TensorFlow: a synthetic variable dict with the TF names
and shapes of the official checkpoint goes through the pure mapping and the CLI (.npz input)."""
from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from davis_c import convert_style_weights
from davis_c.stylize import StyleNet, tf_to_torch_state_dict, torch_to_tf_variables
from davis_c.stylize.tf_names import TF_TO_TORCH, ConversionError
from models.checkpoint import load_strict, read_state_dict


def synthetic_tf_variables(seed: int = 0, suffix: str = ":0") -> dict[str, np.ndarray]:
    """What ``tf.saved_model.load(...).variables`` gives: graph names with ``:0``, TF layouts."""
    rng = np.random.default_rng(seed)
    out = {f"{name}{suffix}": rng.standard_normal(row.tf_shape).astype(np.float32) for name, row in TF_TO_TORCH.items()}
    for name in [n for n in out if "moving_variance" in n]:
        out[name] = np.abs(out[name]) + 0.5
    return out


def test_round_trip_and_strict_load():
    tf_vars = synthetic_tf_variables()
    extras = {"global_step:0": np.array(7), "beta1_power:0": np.array(0.9, np.float32),
              "transformer/contract/conv1/weights/Adam:0": np.zeros((9, 9, 3, 32), np.float32)}
    state = tf_to_torch_state_dict({**tf_vars, **extras})
    assert len(state) == 359 and sum(t.numel() for t in state.values()) == 11_005_826
    net = load_strict(StyleNet(seed=None), state)
    back = torch_to_tf_variables(net.state_dict())
    assert set(back) == {k[:-2] for k in tf_vars}
    for name, value in tf_vars.items():
        assert np.array_equal(back[name[:-2]], value), name


def test_layouts_compute_what_tf_computes():
    """HWIO -> OIHW for a 1x7 SAME conv, and 1x1 conv on the pooled vector -> Linear."""
    tf_vars = synthetic_tf_variables(seed=1, suffix="")
    net = load_strict(StyleNet(seed=None), tf_to_torch_state_dict(tf_vars))
    w = tf_vars["InceptionV3/Mixed_6b/Branch_1/Conv2d_0b_1x7/weights"]          # [1, 7, 128, 128]
    x = np.random.default_rng(2).standard_normal((5, 9, 128)).astype(np.float32)  # HWC
    xp = np.pad(x, ((0, 0), (3, 3), (0, 0)))
    ref = np.stack([np.stack([np.einsum("ijc,ijco->o", xp[r:r + 1, c:c + 7], w) for c in range(9)]) for r in range(5)])
    conv = net.InceptionV3["Mixed_6b"]["Branch_1"]["Conv2d_0b_1x7"]
    got = F.conv2d(torch.from_numpy(x).permute(2, 0, 1)[None], conv.weight, padding=conv.padding)[0].permute(1, 2, 0)
    assert np.abs(got.detach().numpy() - ref).max() < 1e-3
    e = np.random.default_rng(3).standard_normal(100).astype(np.float32)
    layer = "style_params/transformer/expand/conv2/conv/StyleNorm"
    for tf_head, ours in (("Conv", net.style_params["expand_conv2"].beta), ("Conv_1", net.style_params["expand_conv2"].gamma)):
        ref = e @ tf_vars[f"{layer}/{tf_head}/weights"][0, 0] + tf_vars[f"{layer}/{tf_head}/biases"]
        assert np.abs(ours(torch.from_numpy(e)).detach().numpy() - ref).max() < 1e-4


def test_missing_and_misshaped_variables_are_named():
    tf_vars = synthetic_tf_variables(suffix="")
    del tf_vars["Conv/biases"]
    with pytest.raises(ConversionError, match="Conv/biases"):
        tf_to_torch_state_dict(tf_vars)
    tf_vars = synthetic_tf_variables(suffix="")
    tf_vars["transformer/expand/conv3/conv/weights"] = np.zeros((3, 9, 9, 32), np.float32)
    with pytest.raises(ConversionError, match=r"transformer/expand/conv3/conv/weights: \(3, 9, 9, 32\)"):
        tf_to_torch_state_dict(tf_vars)


def test_cli_writes_plain_state_dict(tmp_path, capsys):
    src = tmp_path / "vars.npz"
    tf_vars = synthetic_tf_variables(suffix="")
    np.savez(src, **tf_vars, global_step=np.array(3))
    out = tmp_path / "style_net.pt"
    assert convert_style_weights.main(["--src", str(src), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "359 tensors, 11,005,826 floats" in printed and "ignored 1" in printed
    raw = torch.load(out, weights_only=True)
    assert isinstance(raw, dict) and len(raw) == 359 and all(isinstance(v, torch.Tensor) for v in raw.values())
    assert torch.equal(read_state_dict(out)["transformer.contract.conv1.weight"],
                       torch.from_numpy(tf_vars["transformer/contract/conv1/weights"].transpose(3, 2, 0, 1)))
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_cli_errors_are_clear(tmp_path, capsys, monkeypatch):
    assert convert_style_weights.main(["--src", str(tmp_path / "nothing"), "--out", str(tmp_path / "o.pt")]) == 2
    assert "not a TF checkpoint prefix" in capsys.readouterr().err
    (tmp_path / "sm").mkdir()
    (tmp_path / "sm" / "saved_model.pb").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "tensorflow", None)           # simulate: TensorFlow not installed
    assert convert_style_weights.main(["--src", str(tmp_path / "sm"), "--out", str(tmp_path / "o.pt")]) == 2
    assert '.[convert]' in capsys.readouterr().err
    assert not (tmp_path / "o.pt").exists()


def test_download_official_styles_checks_md5(tmp_path, shared, monkeypatch):
    """Served from the shared copies (no network in CI); a corrupted file is refused, not written."""
    import io

    from davis_c.stylize import download

    served = {}

    def fake_urlopen(url, timeout):
        served[url] = True
        name = url.rsplit("/", 1)[1]
        data = (shared / "davis_c_styles" / name).read_bytes()
        return io.BytesIO(data[:-1] + b"x" if name == "3.png" and corrupt else data)

    monkeypatch.setattr(download.urllib.request, "urlopen", fake_urlopen)
    corrupt = True
    with pytest.raises(ValueError, match="3.png: md5"):
        download.download_official_styles(tmp_path / "styles")
    assert sorted(p.name for p in (tmp_path / "styles").iterdir()) == ["1.png", "2.png"]
    corrupt = False
    served.clear()
    assert download.main(["--out", str(tmp_path / "styles")]) == 0
    assert sorted(u.rsplit("/", 1)[1] for u in served) == ["3.png", "4.png"]     # verified files are kept
    assert all(u.startswith(download.STYLES_URL) for u in served)
