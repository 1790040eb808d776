"""glass_blur: deterministic part and seeded output bit-exact to the official algorithm; statistics."""
from __future__ import annotations

import json

import numpy as np
import pytest
from skimage.filters import gaussian

from davis_c.corruptions import corrupt
from davis_c.corruptions.glass import _gaussian_u8, glass_blur_noshuffle, glass_blur_reference

SEVERITIES = (3, 4, 5)


@pytest.fixture(scope="module")
def data(golden):
    d = golden / "davis_c"
    return np.load(d / "inputs.npz"), np.load(d / "small_goldens.npz"), \
        json.loads((d / "random_stats.json").read_text())["results"]


_reference_loop = glass_blur_reference  # the official loop, as the spec states it


@pytest.mark.parametrize("severity", SEVERITIES)
def test_noshuffle_golden(data, severity):
    inputs, sg, _ = data
    frames = inputs["small"][sg["per_frame_index"]]
    out = np.stack([glass_blur_noshuffle(f, severity) for f in frames])
    diff = np.abs(out.astype(int) - sg[f"glass_noshuffle_s{severity}_u8"])
    assert diff.max() <= 1 and (diff > 0).mean() <= 1e-5  # README tolerance


@pytest.mark.parametrize("severity", SEVERITIES)
def test_seed0_bit_exact(data, severity):
    inputs, sg, _ = data
    out = corrupt(inputs["small"][0], "glass_blur", severity, seed=0)
    np.testing.assert_array_equal(out, sg[f"glass_seed0_s{severity}_u8"])


@pytest.mark.parametrize("severity", SEVERITIES)
def test_equals_reference_loop_over_two_frames(severity):
    """Two frames in a row with one seed: the RNG stream continues exactly as in the official run."""
    rng = np.random.default_rng(severity)
    frames = rng.integers(0, 256, (2, 23, 31, 3), dtype=np.uint8)
    np.random.seed(11)
    want = np.stack([np.clip(np.rint(_reference_loop(f, severity)), 0, 255).astype(np.uint8) for f in frames])
    np.testing.assert_array_equal(corrupt(frames, "glass_blur", severity, seed=11), want)


@pytest.mark.parametrize("sigma", [0.7, 0.9, 1.0, 1.1, 1.5])
def test_compiled_blur_equals_skimage(sigma):
    img = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    want = np.uint8(gaussian(img / 255.0, sigma=sigma, channel_axis=-1) * 255)
    np.testing.assert_array_equal(_gaussian_u8(img, sigma, final=False), want)
    want = np.clip(np.rint(np.clip(gaussian(img / 255.0, sigma=sigma, channel_axis=-1), 0, 1) * 255), 0, 255)
    np.testing.assert_array_equal(_gaussian_u8(img, sigma, final=True), want.astype(np.uint8))


@pytest.mark.parametrize("severity", SEVERITIES)
def test_statistics_against_official(data, severity):
    """Mean |out - noshuffle| separates the official copy semantics from wrong variants (README: +-0.1)."""
    inputs, _, stats = data
    large = inputs["large"]
    ref = stats[f"glass_blur_s{severity}"]
    for seed in (0, 1):
        out = corrupt(large, "glass_blur", severity, seed=seed).astype(float)
        ns = np.stack([glass_blur_noshuffle(f, severity) for f in large]).astype(float)
        want = ref["per_seed"][seed]
        assert abs(np.abs(out - ns).mean() - want["u8_vs_noshuffle_u8"]["mean_absdiff"]) < 0.1
        assert abs((out - large).mean() - want["u8"]["mean_diff"]) < 0.1
        assert abs(np.abs(out - large).mean() - want["u8"]["mean_absdiff"]) < 0.1



@pytest.mark.slow
@pytest.mark.parametrize("severity", SEVERITIES)
def test_equals_reference_loop_at_davis_size(data, severity):
    """The official loop on a whole 480x854 frame (about 5-10 s each): bit-exact for seed 0."""
    frame = data[0]["large"][0]
    np.random.seed(0)
    want = np.clip(np.rint(_reference_loop(frame, severity)), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(corrupt(frame, "glass_blur", severity, seed=0), want)
