"""J, F and per-object statistics against the official goldens and a straightforward reference."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from harness.metrics import (EvaluationError, boundary_map, bound_radius, evaluate_video, f_measure, j_measure,
                             score_frame, sequence_stats)

ATOL = 1e-9  # golden README: J and F are ratios of integer counts; use atol=1e-9


def _load_reference():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_jf.py"
    spec = importlib.util.spec_from_file_location("bench_jf_reference", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


ref = _load_reference()


@pytest.fixture(scope="module")
def cases(golden):
    z = np.load(golden / "jf" / "cases.npz")
    meta = json.loads(str(z["meta_json"]))
    return z, meta


def test_per_frame_j_and_f_match_the_official_goldens(cases):
    z, meta = cases
    assert len(meta) == 36
    worst = 0.0
    for m in meta:
        c, k_max = m["id"], m["num_objects"]
        gt, pred = z[f"{c}_gt"], z[f"{c}_pred"]
        assert bound_radius(gt.shape[1:]) == m["bound_pix"]
        for k in range(1, k_max + 1):
            g, p = gt == k, pred == k
            for void, suffix in ((None, ""), (gt == 255, "_void")):
                j, f = j_measure(g, p, void), f_measure(g, p, void)  # (T, H, W) stacks
                assert j.dtype == np.float64 and j.shape == (m["T"],)
                np.testing.assert_allclose(j, z[f"{c}_J{suffix}"][k - 1], rtol=0, atol=ATOL, err_msg=c)
                np.testing.assert_allclose(f, z[f"{c}_F{suffix}"][k - 1], rtol=0, atol=ATOL, err_msg=c)
                worst = max(worst, np.abs(j - z[f"{c}_J{suffix}"][k - 1]).max(),
                            np.abs(f - z[f"{c}_F{suffix}"][k - 1]).max())
                # single 2-D frames give the same numbers
                j0 = j_measure(g[0], p[0], None if void is None else void[0])
                f0 = f_measure(g[0], p[0], None if void is None else void[0])
                assert np.ndim(j0) == 0 and j0 == j[0] and f0 == f[0]
        # all objects at once from the label maps (the evaluator's path; no void, as semi-supervised)
        for t in range(m["T"]):
            j, f = score_frame(gt[t], pred[t], range(1, k_max + 1), bound_radius(gt.shape[1:]))
            np.testing.assert_allclose(j, z[f"{c}_J"][:, t], rtol=0, atol=ATOL, err_msg=c)
            np.testing.assert_allclose(f, z[f"{c}_F"][:, t], rtol=0, atol=ATOL, err_msg=c)
    assert worst == 0.0  # in fact bit-identical


def test_sequence_statistics_match_the_official_goldens(cases):
    z, meta = cases
    for m in meta:
        if m["kind"] != "sequence":
            continue
        c = m["id"]
        scores = evaluate_video(z[f"{c}_gt"], z[f"{c}_pred"], name=m["seq_name"])
        assert scores.object_ids == (1, 2)
        np.testing.assert_array_equal(scores.frames, np.arange(1, m["T"] - 1))
        np.testing.assert_allclose(scores.J, z[f"{c}_J"][:, 1:-1], rtol=0, atol=ATOL)
        np.testing.assert_allclose(scores.F, z[f"{c}_F"][:, 1:-1], rtol=0, atol=ATOL)
        np.testing.assert_allclose(scores.stats, z[f"{c}_stats"], rtol=0, atol=ATOL, err_msg=c)
        assert scores.object_names == [f"{m['seq_name']}_1", f"{m['seq_name']}_2"]
    lengths, values, results = z["dbstat_lengths"], z["dbstat_values"], z["dbstat_results"]
    start = 0
    for n, expected in zip(lengths, results):
        got = sequence_stats(values[start:start + n])
        start += n
        np.testing.assert_allclose(got, expected, rtol=0, atol=ATOL, err_msg=f"N={n}")


def test_recall_is_strict_and_decay_uses_overlapping_bins():
    # N = 4: bins are indices 0..1 and 2..3; 0.5 itself is not recalled
    assert sequence_stats([0.5, 0.5, 0.51, 0.2]) == pytest.approx((0.4275, 0.25, 0.5 - 0.355))
    # N = 8: bins are indices 0..2 and 5..7
    v = np.array([1, 1, 1, 0, 0, 0.5, 0.5, 0.5])
    assert sequence_stats(v)[2] == pytest.approx(0.5)
    assert sequence_stats([0.7]) == (0.7, 1.0, 0.0)
    # no uint8 wrap-around for long sequences (the official code would break for N >= 257)
    long = np.linspace(1, 0, 300)
    ids = np.round(np.linspace(1, 300, 5) + 1e-10).astype(int) - 1
    expected = long[ids[0]:ids[1] + 1].mean() - long[ids[3]:ids[4] + 1].mean()
    assert sequence_stats(long)[2] == pytest.approx(expected, abs=1e-12)
    with pytest.raises(ValueError):
        sequence_stats([])


def _random_masks(rng, h, w, kind):
    if kind == "blob":
        yy, xx = np.mgrid[0:h, 0:w]
        cy, cx = rng.uniform(-0.2, 1.2) * h, rng.uniform(-0.2, 1.2) * w
        ry, rx = rng.uniform(0.05, 0.8) * h + 1, rng.uniform(0.05, 0.8) * w + 1
        g = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1
        p = np.roll(g, tuple(rng.integers(-3, 4, 2)), (0, 1)) ^ (rng.random((h, w)) < rng.choice([0, 0.01, 0.2]))
        return g, p
    return rng.random((h, w)) < rng.uniform(0, 1), rng.random((h, w)) < rng.uniform(0, 1)


@pytest.mark.parametrize("bound_th", [0.008, 0.03, 0.1, 1, 2, 3.0, 2.5])
def test_identical_to_the_reference_implementation(bound_th):
    rng = np.random.default_rng(int(bound_th * 1000))
    shapes = [(1, 1), (1, 7), (7, 1), (2, 2), (5, 9), (37, 53), (64, 96), (100, 100), (130, 300)]
    for trial in range(40):
        h, w = shapes[trial % len(shapes)]
        g, p = _random_masks(rng, h, w, "blob" if trial % 3 else "noise")
        void = rng.random((h, w)) < 0.05 if trial % 4 == 0 else None
        if trial % 7 == 0:
            p = np.zeros_like(g)
        if trial % 11 == 0:
            g = np.ones_like(g)
        assert j_measure(g, p, void) == ref.ref_j(g, p, void), (h, w, trial)
        assert f_measure(g, p, void, bound_th) == ref.ref_f(g, p, void, bound_th), (h, w, trial)
        np.testing.assert_array_equal(boundary_map(g), ref.ref_seg2bmap(g))


def test_label_maps_match_per_object_reference():
    rng = np.random.default_rng(5)
    for trial in range(12):
        h, w = (96, 160) if trial % 2 else (120, 90)
        gt = np.zeros((h, w), np.uint8)
        pred = np.zeros((h, w), np.uint8)
        for k in range(1, 4):
            g, p = _random_masks(rng, h, w, "blob")
            gt[g] = k
            pred[p] = k
        if trial % 4 == 3:  # noise-like prediction: the dense (dilation) path
            pred = rng.integers(0, 4, (h, w)).astype(np.uint8)
        gt[rng.random((h, w)) < 0.02] = 255  # void is plain background in semi-supervised J and F
        gt[:3, :3] = 7  # a label that is not an evaluated object is background too
        j, f = score_frame(gt, pred, (1, 2, 3), bound_radius((h, w)))
        rj, rf = ref.ref_score_frame(np.where(gt > 3, 0, gt), pred, 3)
        np.testing.assert_array_equal(j, rj)
        np.testing.assert_array_equal(f, rf)


def test_evaluate_video_rules():
    gt = np.zeros((6, 20, 30), np.uint8)
    gt[:, 5:12, 5:12] = 1
    gt[:, 2:8, 18:26] = 2
    pred = gt.copy()
    pred[0] = 2  # frames 0 and T-1 are never looked at
    pred[-1] = 9
    s = evaluate_video(gt, pred, name="toy")
    assert s.object_ids == (1, 2) and s.J.shape == (2, 4)
    assert (s.J == 1).all() and (s.F == 1).all()
    assert s.jf_mean == 1.0
    # an object missing from the prediction is scored as an empty mask
    s = evaluate_video(gt, np.where(pred == 2, 0, pred), name="toy")
    assert (s.J[1] == 0).all() and (s.F[1] == 0).all()
    bad = pred.copy()
    bad[3, 0, 0] = 3
    with pytest.raises(EvaluationError, match=r"toy: predicted frame 00003 contains label 3"):
        evaluate_video(gt, bad, name="toy")
    with pytest.raises(EvaluationError, match="at least 3"):
        evaluate_video(gt[:2], pred[:2], name="toy")
    with pytest.raises(EvaluationError, match="shape"):
        evaluate_video(gt, pred[:, :10], name="toy")
    # explicit frames and ids (e.g. for the harness scoring every frame)
    s = evaluate_video(gt, pred, (1, 2), frames=[1, 2], name="toy")
    assert s.J.shape == (2, 2)
