"""The temporal suite's formulas on small inputs (davis_c.corruptions.temporal_suite) and its registry."""
from __future__ import annotations

import numpy as np
import pytest

from common.vocabulary import CORRUPTION_NAMES, TEMPORAL_CORRUPTIONS, suite_of, variant_sort_key
from davis_c import corruptions as C
from davis_c.corruptions import temporal_suite as ts


def _video(t=12, h=16, w=20, seed=0):
    rng = np.random.RandomState(seed)
    frames = rng.randint(0, 256, (t, h, w, 3)).astype(np.uint8)
    masks = np.zeros((t, h, w), np.uint8)
    masks[:, 4:10, 5:12] = 1
    masks[:, 11:14, 2:6] = 2
    return frames, masks


def test_registry_is_separate_from_the_paper():
    assert tuple(C.TEMPORAL) == TEMPORAL_CORRUPTIONS
    assert not set(C.TEMPORAL) & set(C.CORRUPTIONS)
    assert tuple(C.CORRUPTIONS) == CORRUPTION_NAMES and len(CORRUPTION_NAMES) == 14
    assert all(suite_of(n) == "temporal" for n in TEMPORAL_CORRUPTIONS)
    assert all(suite_of(n) == "davis-c" for n in CORRUPTION_NAMES)
    assert suite_of("nope") is None
    for n, c in C.TEMPORAL.items():
        assert c.severities == (3, 4, 5), n
    # temporal variants sort after every DAVIS-C corruption of the same strength
    assert variant_sort_key("low/freeze") > variant_sort_key("low/style4")
    assert variant_sort_key("low/freeze") < variant_sort_key("low/stride") < variant_sort_key("med/gaussian_noise")


@pytest.mark.parametrize("t,fraction,length", [(12, 0.4, 4), (30, 0.25, 3), (5, 0.9, 3), (2, 0.5, 1), (60, 0.5, 8)])
def test_freeze_runs_placement(t, fraction, length):
    for seed in range(20):
        runs = ts.freeze_runs(t, fraction, length, np.random.default_rng(seed))
        assert runs, (t, seed)
        n_expected = max(1, round(fraction * (t - 1) / min(length, t - 1)))
        assert len(runs) <= n_expected
        prev_end = 1
        for i, (s, e) in enumerate(runs):
            assert e - s == min(length, t - 1)
            assert s >= (prev_end + 1 if i else 1)  # frame 0 is never frozen; a good frame before each run
            assert e <= t
            prev_end = e


def test_freeze_runs_count_and_seed():
    runs = ts.freeze_runs(41, 0.25, 2, np.random.default_rng(3))
    assert len(runs) == 5  # round(0.25 * 40 / 2)
    assert runs == ts.freeze_runs(41, 0.25, 2, np.random.default_rng(3))
    assert any(ts.freeze_runs(41, 0.25, 2, np.random.default_rng(s)) != runs for s in range(4, 10))


def test_freeze_formula():
    frames, masks = _video()
    res = C.corrupt_temporal(frames, "freeze", 5, seed=7)
    fraction, length = ts.FREEZE[5]
    runs = ts.freeze_runs(12, fraction, length, np.random.default_rng(7))
    assert res.events == tuple(runs) and res.kept is None and res.masks is None
    frozen = np.zeros(12, bool)
    for s, e in runs:
        frozen[s:e] = True
        for t in range(s, e):
            assert np.array_equal(res.frames[t], frames[s - 1])
    assert np.array_equal(res.frames[~frozen], frames[~frozen])
    assert res.schedule["frozen"] == frozen.astype(int).tolist()


@pytest.mark.parametrize("severity,t,kept", [(3, 12, (0, 2, 4, 6, 8, 10)), (4, 12, (0, 4, 8)), (5, 12, (0, 5, 10)),
                                              (5, 40, (0, 8, 16, 24, 32)), (4, 3, (0, 1, 2))])
def test_stride_kept_frames(severity, t, kept):
    frames, masks = _video(t)
    res = C.corrupt_temporal(frames, "stride", severity, seed=123)
    assert res.kept == kept
    assert np.array_equal(res.frames, frames[list(kept)])
    assert res.masks is None and res.events == ()
    assert res.schedule == {"k": kept[1] - kept[0]}


def test_bursts_formula():
    frames, _ = _video(20)
    res = C.corrupt_temporal(frames, "bursts_gaussian_noise", 4, seed=11)
    full = C.corrupt(frames, "gaussian_noise", 4, seed=11)
    on = np.array(res.schedule["on"], bool)
    assert res.schedule["base"] == "gaussian_noise"
    assert on.sum() > 0 and not on[0]
    assert np.array_equal(res.frames[on], full[on])
    assert np.array_equal(res.frames[~on], frames[~on])
    fraction, length = ts.BURSTS[4]
    assert res.events == tuple(ts.freeze_runs(20, fraction, length, np.random.default_rng(11)))
    assert [i for s, e in res.events for i in range(s, e)] == np.flatnonzero(on).tolist()


def test_flicker_formula():
    frames, _ = _video(10)
    res = C.corrupt_temporal(frames, "flicker", 5, seed=2)
    stops, gains = ts.flicker_gains(10, 5, 2)
    a, period, p, step = ts.FLICKER[5]
    level = stops - a * np.sin(2 * np.pi * np.arange(10) / period + np.random.default_rng(2).uniform(0, 2 * np.pi))
    assert level[0] == pytest.approx(0.0, abs=1e-12)
    dl = np.diff(level)
    assert np.all(np.isclose(np.abs(dl), 0.0, atol=1e-9) | np.isclose(np.abs(dl), step) |
                  (np.abs(level[1:]) >= ts.FLICKER_LIMIT - 1e-9))
    assert np.all(np.abs(level) <= ts.FLICKER_LIMIT + 1e-12)
    # one pixel by hand: sRGB -> linear, gain, clip, -> sRGB, round half to even
    for t in (0, 3, 9):
        v = frames[t, 5, 7].astype(float) / 255
        lin = np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)
        x = np.clip(gains[t] * lin, 0, 1)
        want = np.rint(255 * np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055)).astype(np.uint8)
        assert np.array_equal(res.frames[t, 5, 7], want)
    # gain 1 leaves every value unchanged (the two transfer functions invert each other on 8 bits)
    lut = np.arange(256) / 255.0
    back = np.rint(255 * ts._linear_to_srgb(ts._srgb_to_linear(lut)))
    assert np.array_equal(back, np.arange(256))
    # a bright frame saturates at 255 when the gain is above 1
    white = np.full((3, 4, 4, 3), 250, np.uint8)
    out = C.corrupt_temporal(white, "flicker", 5, seed=2).frames
    g = ts.flicker_gains(3, 5, 2)[1]
    assert all((out[t] == 255).all() for t in range(3) if g[t] > 1.05)


def test_shift_image():
    img = np.arange(12, dtype=np.uint8).reshape(3, 4)
    out = ts.shift_image(img, 1, -2, 99)
    want = np.array([[99, 99, 99, 99], [2, 3, 99, 99], [6, 7, 99, 99]], np.uint8)
    assert np.array_equal(out, want)
    assert np.array_equal(ts.shift_image(img, 0, 0, 99), img)
    assert (ts.shift_image(img, 3, 0, 7) == 7).all()


def test_shake_transforms_frames_and_ground_truth():
    frames, masks = _video(8, 50, 60)
    res = C.corrupt_temporal(frames, "shake", 5, seed=4, masks=masks)
    m = max(1, round(ts.SHAKE[5][0] * 50))
    shifts = np.random.default_rng(4).integers(-m, m + 1, size=(8, 2))
    shifts[0] = 0
    assert res.schedule == {"shift_yx": shifts.tolist(), "max_shift": m}
    assert np.array_equal(res.frames[0], frames[0]) and np.array_equal(res.masks[0], masks[0])
    for t, (dy, dx) in enumerate(shifts):
        assert np.array_equal(res.frames[t], ts.shift_image(frames[t], dy, dx, 0))
        gt = res.masks[t]
        assert np.array_equal(gt, ts.shift_image(masks[t], dy, dx, 255))
        # the object moves with the picture: its pixels sit where the picture's moved pixels are
        ys, xs = np.nonzero(masks[t] == 1)
        assert (gt[ys + dy, xs + dx] == 1).all()
        padded = (gt == 255)
        assert padded.sum() == 50 * 60 - (50 - abs(dy)) * (60 - abs(dx))
        assert (res.frames[t][padded] == 0).all()
    with pytest.raises(ValueError, match="annotations"):
        C.corrupt_temporal(frames, "shake", 3, seed=4)


@pytest.mark.parametrize("name", TEMPORAL_CORRUPTIONS)
def test_seed_determinism(name):
    frames, masks = _video()
    a = C.corrupt_temporal(frames, name, 4, seed=5, masks=masks)
    b = C.corrupt_temporal(frames.copy(), name, 4, seed=5, masks=masks.copy())
    assert a.frames.tobytes() == b.frames.tobytes() and a.events == b.events and a.schedule == b.schedule
    if C.TEMPORAL[name].random:
        others = [C.corrupt_temporal(frames, name, 4, seed=s, masks=masks) for s in (6, 7, 8)]
        assert any(o.frames.tobytes() != a.frames.tobytes() for o in others)


def test_bad_severity():
    frames, _ = _video()
    with pytest.raises(ValueError, match="severity"):
        C.corrupt_temporal(frames, "freeze", 2)
    with pytest.raises(KeyError, match="unknown temporal corruption"):
        C.corrupt_temporal(frames, "glass_blur", 3)
