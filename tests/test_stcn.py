"""STCN against the golden vectors produced by the official code (golden init v1 weights)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import models
from models import golden_init
from models.stcn import STCN, load
from models.padding import pad_divide_by, unpad
from models.stcn.inference import labels_to_onehot, memory_bytes_per_frame


@pytest.fixture(scope="module")
def net() -> STCN:
    return golden_init(load(device="cpu"), seed=0, s=1.0)


@pytest.fixture(scope="module")
def keys_json(golden):
    return json.loads((golden / "stcn" / "state_dict_keys.json").read_text())


def _check_probs(p: np.ndarray, ref: np.ndarray) -> None:
    """The golden README's float32 tolerances."""
    diff = np.abs(p.astype(np.float64) - ref)
    assert (diff <= 1e-4).mean() >= 0.99, f"only {(diff <= 1e-4).mean():.4%} of values within 1e-4"
    assert diff.max() <= 5e-3, f"max |p - p_ref| = {diff.max():.3g}"


def _check_labels(p: np.ndarray, labels: np.ndarray) -> None:
    agree = (p.argmax(0) == labels).mean(axis=(1, 2))
    assert agree.min() >= 0.999, f"per-frame label agreement {agree.min():.5f}"


def test_state_dict_has_exactly_the_official_names_order_and_shapes(keys_json):
    sd = STCN().state_dict()
    official = keys_json["keys"]
    assert list(sd) == [k["name"] for k in official]
    for k in official:
        assert list(sd[k["name"]].shape) == k["shape"], k["name"]
    n_params = sum(p.numel() for p in STCN().parameters())
    assert n_params == keys_json["num_parameter_elements"] == 54_434_180


def test_golden_init_reproduces_checksums(net, keys_json):
    sd = net.state_dict()
    for k in keys_json["keys"]:
        value = sd[k["name"]]
        if "golden_init_v1_seed0_s1" not in k:  # integer counters
            assert not value.is_floating_point() and value.item() == 0
            continue
        ref = k["golden_init_v1_seed0_s1"]
        v = value.double()
        assert v.flatten()[:3].tolist() == ref["first3"], k["name"]
        assert v.sum().item() == pytest.approx(ref["sum"], rel=1e-12, abs=1e-12), k["name"]
        assert v.pow(2).sum().item() == pytest.approx(ref["sum_sq"], rel=1e-12), k["name"]


def test_inference_matches_official(net, golden):
    z = np.load(golden / "stcn" / "inference.npz")
    p = net.segment(z["frames"], z["first_mask"], top_k=20, mem_every=5, include_last=False)
    assert p.shape == (3, 12, 240, 432) and p.dtype == np.float32
    _check_probs(p[:, :, ::4, ::4], z["prob_sub4"])
    _check_probs(p[:, z["prob_full_frame_idx"]], z["prob_full"])
    _check_labels(p, z["labels"])
    # frame 0 is the aggregation of the given one-hot mask: exactly 1 for the given class
    onehot = np.eye(3, dtype=bool)[z["first_mask"]].transpose(2, 0, 1)
    assert np.all(p[:, 0][onehot] == 1.0)


@pytest.mark.parametrize("run", ["A", "B"])
def test_small_padded_runs(net, golden, run):
    z = np.load(golden / "stcn" / "inference_small_padded.npz")
    if run == "A":
        kw, prob, labels = json.loads(str(z["params"])), z["prob"], z["labels"]
    else:
        kw, prob, labels = json.loads(str(z["runB_params"])), z["runB_prob"], z["runB_labels"]
    p = net.segment(z["frames"], z["first_mask"], top_k=kw["top_k"], mem_every=kw["mem_every"],
                    include_last=kw["include_last"])
    assert p.shape == prob.shape
    _check_probs(p, prob)
    _check_labels(p, labels)


def _float64_run(net, z, n_frames):
    net64 = golden_init(STCN(), seed=0, s=1.0).double().eval()
    onehot, _ = labels_to_onehot(z["first_mask"])
    images = net64.prepare(z["frames"][:n_frames])
    out = np.zeros((3, n_frames, 240, 432))
    for t, prob in net64.iter_probabilities(images, onehot):
        out[:, t] = prob.numpy()
    return out


def test_float64_matches_official_float64(net, golden):
    # Inference is causal, so the first 7 frames (memory {0}, then {0, 5}) equal a full run's.
    z = np.load(golden / "stcn" / "inference.npz")
    out = _float64_run(net, z, 7)
    np.testing.assert_allclose(out[:, :, ::8, ::8], z["prob64_sub8"][:, :7], rtol=0, atol=1e-8)


@pytest.mark.slow
def test_float64_full_video(net, golden):
    z = np.load(golden / "stcn" / "inference.npz")
    out = _float64_run(net, z, 12)
    np.testing.assert_allclose(out[:, :, ::8, ::8], z["prob64_sub8"], rtol=0, atol=1e-8)


def test_padding_split_matches_official_rule():
    x = torch.ones(1, 1, 75, 133)
    padded, pad = pad_divide_by(x, 16)
    assert padded.shape[-2:] == (80, 144) and pad == (5, 6, 2, 3)
    assert torch.equal(unpad(padded, pad), x)
    assert pad_divide_by(torch.ones(1, 240, 432), 16)[1] == (0, 0, 0, 0)


def test_segment_rejects_bad_input(net):
    frames = np.zeros((2, 32, 32, 3), np.uint8)
    with pytest.raises(ValueError, match="no object"):
        net.segment(frames, np.zeros((32, 32), np.uint8))
    with pytest.raises(ValueError, match="first mask"):
        net.segment(frames, np.ones((16, 32), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        net.segment(frames.astype(np.float32), np.ones((32, 32), np.uint8))


def test_objects_follow_sorted_labels_and_void_is_ignored(net):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (2, 32, 48, 3), dtype=np.uint8)
    mask = np.zeros((32, 48), np.uint8)
    mask[2:10, 2:10], mask[20:30, 30:40], mask[0, :] = 7, 3, 255
    p = net.segment(frames, mask)
    assert p.shape == (3, 2, 32, 48)
    assert p[1, 0][mask == 3].min() == 1.0 and p[2, 0][mask == 7].min() == 1.0
    np.testing.assert_allclose(p.sum(0), 1.0, atol=1e-5)


def test_segment_reads_frames_one_at_a_time_with_the_same_bytes(net, monkeypatch):
    """segment keeps the video uint8 and normalises one frame per read (FrameSource); the probabilities
    equal those of the whole video normalised first, bit for bit, for first-frame and later-frame masks."""
    import models.stcn.inference as inf

    rng = np.random.default_rng(1)
    frames = rng.integers(0, 255, (7, 40, 56, 3), dtype=np.uint8)  # 40x56 pads to 48x64
    mask = np.zeros((40, 56), np.uint8)
    mask[5:20, 5:25], mask[25:38, 30:50] = 1, 2
    later = {0: np.where(mask == 2, 0, mask).astype(np.uint8), 3: mask}
    onehot, _ = labels_to_onehot(mask)
    whole = torch.stack([p for _, p in net.iter_probabilities(net.prepare(frames), onehot, mem_every=2)], 1)
    reads = []
    real = inf.normalise
    monkeypatch.setattr(inf, "normalise", lambda f, *a, **k: reads.append(len(f)) or real(f, *a, **k))
    np.testing.assert_array_equal(net.segment(frames, mask, mem_every=2), whole.numpy())
    assert reads and set(reads) == {1}
    reads.clear()
    given = net.segment(frames, later, mem_every=2)
    assert set(reads) == {1} and given.shape == (3, 7, 40, 56)


def test_load_model_registry_and_memory_note():
    vos = models.load_model("stcn", device="cpu")
    assert isinstance(vos, STCN) and not vos.training and vos.device.type == "cpu"
    assert memory_bytes_per_frame(480, 854, 2) == (64 + 1024) * 30 * 54 * 4
