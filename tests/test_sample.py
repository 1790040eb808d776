"""Synthetic DAVIS sample: exact layout, determinism, and the properties every later test relies on."""
from __future__ import annotations

import filecmp
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from davis_c.datasets import Davis2017
from davis_c.masks import DAVIS_PALETTE
from davis_c.sample import main, make_sample


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_layout_of_default_sample(davis_sample):
    root = davis_sample
    names = (root / "ImageSets/2017/val.txt").read_text().split()
    assert names == ["synth-000", "synth-001", "synth-002"]
    for name in names:
        jpgs = sorted((root / "JPEGImages/480p" / name).iterdir())
        pngs = sorted((root / "Annotations/480p" / name).iterdir())
        assert [p.name for p in jpgs] == [f"{t:05d}.jpg" for t in range(12)]
        assert [p.name for p in pngs] == [f"{t:05d}.png" for t in range(12)]
        with Image.open(jpgs[0]) as img:
            assert img.format == "JPEG" and img.mode == "RGB" and img.size == (432, 240)
        with Image.open(pngs[0]) as img:
            assert img.format == "PNG" and img.mode == "P" and img.size == (432, 240)
            assert bytes(img.getpalette()) == DAVIS_PALETTE


def test_deterministic_per_seed(tmp_path, tiny_davis_sample):
    a = make_sample(tmp_path / "a", videos=2, frames=8, height=64, width=112, seed=0)
    assert _tree(a) == _tree(tiny_davis_sample)
    for rel in _tree(a):
        assert filecmp.cmp(a / rel, tiny_davis_sample / rel, shallow=False), rel
    b = make_sample(tmp_path / "b", videos=2, frames=8, height=64, width=112, seed=1)
    va, vb = Davis2017(a).load("synth-000"), Davis2017(b).load("synth-000")
    assert not np.array_equal(va.frames, vb.frames)


def _touches_border(m: np.ndarray) -> bool:
    return bool(m[0].any() or m[-1].any() or m[:, 0].any() or m[:, -1].any())


def test_objects_move_deform_occlude_and_leave_the_frame(davis_sample):
    occluded = False
    counts = []
    for v in Davis2017(davis_sample):
        k = len(v.object_ids)
        counts.append(k)
        assert 1 <= k <= 3 and v.object_ids == tuple(range(1, k + 1))  # contiguous, as DAVIS
        assert set(np.unique(v.masks).tolist()) <= set(range(k + 1))
        assert any(_touches_border(v.masks[-1] == i) for i in v.object_ids)  # partly leaves the frame
        for i in v.object_ids:
            m = v.masks == i
            areas = m.sum((1, 2))
            assert areas[0] > 0.01 * m[0].size  # clearly visible in the first frame
            ys, xs = np.nonzero(m[0])
            yl, xl = np.nonzero(m[-1]) if m[-1].any() else (ys, xs)
            moved = np.hypot(yl.mean() - ys.mean(), xl.mean() - xs.mean())
            assert moved > 5, (v.name, i)
            for t in range(1, len(v)):
                if areas[t] and not _touches_border(m[t]) and areas[t] < 0.6 * areas.max():
                    occluded = True  # area lost inside the frame: another object covers it
        # deformation: the outline is not just translated (normalised second moments change)
        m = v.masks == v.object_ids[0]
        shapes = []
        for t in range(len(v)):
            if m[t].sum() > 50 and not _touches_border(m[t]):
                ys, xs = np.nonzero(m[t])
                c = np.cov(np.stack([ys, xs]).astype(float))
                shapes.append(c / np.trace(c))
        if len(shapes) >= 2:
            assert max(np.abs(s - shapes[0]).max() for s in shapes) > 0.01
        # textured: the JPEG frames are not flat colours
        assert v.frames.reshape(-1, 3).std(0).min() > 10
    assert occluded
    assert len(set(counts)) >= 2  # the default sample mixes object counts


def test_rerun_reuses_and_refuses(tmp_path):
    out = make_sample(tmp_path / "s", videos=1, frames=4, height=32, width=48)
    stamp = (out / "JPEGImages/480p/synth-000/00000.jpg").stat().st_mtime_ns
    assert make_sample(out, videos=1, frames=4, height=32, width=48) == out  # same parameters: reused
    assert (out / "JPEGImages/480p/synth-000/00000.jpg").stat().st_mtime_ns == stamp
    with pytest.raises(FileExistsError, match="not empty"):
        make_sample(out, videos=1, frames=5, height=32, width=48)
    make_sample(out, videos=1, frames=5, height=32, width=48, overwrite=True)
    assert len(list((out / "Annotations/480p/synth-000").iterdir())) == 5
    assert [p.name for p in tmp_path.iterdir()] == ["s"]  # no temporary folder left behind
    with pytest.raises(ValueError, match="frames >= 3"):
        make_sample(tmp_path / "t", frames=2)


def test_cli(tmp_path, capsys):
    assert main(["--out", str(tmp_path / "D"), "--videos", "2", "--frames", "5", "--height", "40",
                 "--width", "64", "--seed", "3"]) == 0
    assert "wrote synthetic DAVIS sample" in capsys.readouterr().out
    ds = Davis2017(tmp_path / "D")
    assert len(ds) == 2 and ds.load("synth-001").frames.shape == (5, 40, 64, 3)
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "D"), "--frames", "7"])
    assert "not empty" in capsys.readouterr().err


def _colour_propagation(frames: np.ndarray, first: np.ndarray, ids: tuple[int, ...], bins: int = 8) -> np.ndarray:
    """A weight-free tracker: label each pixel by the first frame's per-object colour histograms."""
    q = frames.astype(np.int64) * bins // 256
    code = (q[..., 0] * bins + q[..., 1]) * bins + q[..., 2]
    labels = (0,) + ids
    hist = np.stack([np.bincount(code[0][first == k], minlength=bins ** 3) + 1e-3 for k in labels])
    hist /= hist.sum(1, keepdims=True)
    out = np.asarray(labels, np.uint8)[np.argmax(hist[:, code], axis=0)]
    out[0] = first
    return out


def test_objects_are_trackable_by_colour_and_noise_makes_it_harder(davis_sample):
    from harness.metrics import evaluate_video

    clean, noisy = [], []
    rng = np.random.default_rng(0)
    for v in Davis2017(davis_sample):
        pred = _colour_propagation(v.frames, v.masks[0], v.object_ids)
        clean.append(evaluate_video(v.masks, pred, v.object_ids, name=v.name).jf_mean)
        frames = np.clip(v.frames + rng.normal(0, 40, v.frames.shape), 0, 255).astype(np.uint8)
        pred = _colour_propagation(frames, v.masks[0], v.object_ids)
        noisy.append(evaluate_video(v.masks, pred, v.object_ids, name=v.name).jf_mean)
    assert min(clean) > 0.7, clean  # measured 0.85-0.86 per video
    assert np.mean(noisy) < np.mean(clean) - 0.3, (clean, noisy)
