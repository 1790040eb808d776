"""davis_c.build: determinism across --workers, resume after kill, skip/force, bad input, styles plumbing."""
from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import davis_c
from davis_c import build as B
from davis_c.corruptions import crf
from davis_c.davis import DavisError

QUIET = {"progress": False, "log": lambda m: None}
CORRS = ["gaussian_noise", "glass_blur", "cartoon", "motion_blur", "crf_compression"]


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def reference(tiny_davis_sample, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "davis_c.h5"
    B.build(tiny_davis_sample, out, corruptions=CORRS, workers=1, **QUIET)
    return out


def test_workers_1_and_2_byte_identical(reference, tiny_davis_sample, tmp_path):
    out = tmp_path / "davis_c.h5"
    B.build(tiny_davis_sample, out, corruptions=CORRS, workers=2, **QUIET)
    assert _hashes(tmp_path) == _hashes(reference.parent)
    assert len(_hashes(tmp_path)) == 1 + 1 + 3 * len(CORRS)  # index + clean + shards


def test_rerun_skips_complete_shards_and_force_rebuilds(reference, tiny_davis_sample):
    before = _hashes(reference.parent)
    s = B.build(tiny_davis_sample, reference, corruptions=CORRS, **QUIET)
    assert s["built"] == [] and len(s["reused"]) == 3 * len(CORRS)
    s = B.build(tiny_davis_sample, reference, corruptions=["motion_blur"], strengths=["low"], force=True, **QUIET)
    assert s["built"] == ["clean", "low/motion_blur"]
    assert _hashes(reference.parent) == before  # a build with a subset keeps the other shards in the index


def test_kill_and_resume_is_byte_identical(reference, tiny_davis_sample, tmp_path):
    out = tmp_path / "davis_c.h5"
    cmd = [sys.executable, "-m", "davis_c.build", "--root", str(tiny_davis_sample), "--out", str(out),
           "--corruptions", *CORRS, "--quiet"]
    shards = tmp_path / "davis_c_shards"
    # kill 1: while the first shards are being written (a .partial exists); kill 2: after a shard is complete
    for ready in (lambda: any(shards.glob("low__*.partial")), lambda: any(shards.glob("low__*.h5"))):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 120
        while not ready() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL, "the build finished before it could be killed"
        assert not out.exists()
    assert subprocess.run(cmd, stdout=subprocess.DEVNULL).returncode == 0
    assert not list(shards.glob("*.partial"))
    assert _hashes(tmp_path) == _hashes(reference.parent)


def test_seed_changes_random_shards_only(tiny_davis_sample, tmp_path):
    B.build(tiny_davis_sample, tmp_path / "a" / "x.h5", corruptions=["glass_blur", "cartoon"], strengths=["low"],
            seed=1, **QUIET)
    B.build(tiny_davis_sample, tmp_path / "b" / "x.h5", corruptions=["glass_blur", "cartoon"], strengths=["low"],
            seed=2, **QUIET)
    with davis_c.open(tmp_path / "a" / "x.h5") as a, davis_c.open(tmp_path / "b" / "x.h5") as b:
        v = a.videos[0]
        assert not np.array_equal(a["low", "glass_blur", v].frames, b["low", "glass_blur", v].frames)
        np.testing.assert_array_equal(a["low", "cartoon", v].frames, b["low", "cartoon", v].frames)
    with pytest.raises(B.BuildError, match="--force"):  # existing shards of another seed are not mixed in
        B.build(tiny_davis_sample, tmp_path / "a" / "x.h5", corruptions=["cartoon"], strengths=["low"], seed=3,
                **QUIET)


def _copy(sample: Path, tmp_path: Path) -> Path:
    root = tmp_path / "DAVIS"
    shutil.copytree(sample, root)
    return root


def _first_video(root: Path) -> tuple[Path, Path]:
    name = (root / "ImageSets" / "2017" / "val.txt").read_text().split()[0]
    return root / "JPEGImages" / "480p" / name, root / "Annotations" / "480p" / name


def _nothing_published(out: Path) -> bool:
    sdir = out.with_name(f"{out.stem}_shards")
    return not out.exists() and not list(sdir.glob("*.h5")) and not list(sdir.glob("*.partial"))


@pytest.mark.parametrize("damage", ["missing_mask", "unreadable_frame", "size_mismatch"])
def test_bad_input_names_the_file_and_publishes_nothing(tiny_davis_sample, tmp_path, damage):
    root = _copy(tiny_davis_sample, tmp_path)
    fdir, mdir = _first_video(root)
    if damage == "missing_mask":
        target = mdir / "00003.png"
        target.unlink()
        pattern = "Annotations"
    elif damage == "unreadable_frame":
        target = fdir / "00002.jpg"
        target.write_bytes(b"this is not a JPEG")
        pattern = "00002.jpg"
    else:
        import cv2
        target = fdir / "00004.jpg"
        cv2.imwrite(str(target), np.zeros((30, 40, 3), np.uint8))
        pattern = "00004.jpg"
    out = tmp_path / "davis_c.h5"
    with pytest.raises(DavisError, match=pattern):
        B.build(root, out, corruptions=["contrast"], **QUIET)
    assert _nothing_published(out)
    assert B.main(["--root", str(root), "--out", str(out), "--corruptions", "contrast", "--quiet"]) == 2


def test_failure_during_a_shard_publishes_nothing(tiny_davis_sample, tmp_path, monkeypatch):
    real = B.C.corrupt
    calls = []

    def flaky(frames, name, severity, **kw):
        calls.append(name)
        if len(calls) == 3:
            raise RuntimeError("simulated crash in a corruption")
        return real(frames, name, severity, **kw)

    monkeypatch.setattr(B.C, "corrupt", flaky)
    out = tmp_path / "davis_c.h5"
    with pytest.raises(RuntimeError, match="simulated"):
        B.build(tiny_davis_sample, out, corruptions=["contrast", "pixelate"], strengths=["low"], **QUIET)
    sdir = tmp_path / "davis_c_shards"
    assert [p.name for p in sdir.glob("*.h5")] == ["clean.h5"] and not list(sdir.glob("*.partial"))
    assert not out.exists()


def test_missing_root_mentions_download_and_sample(tmp_path, capsys):
    with pytest.raises(B.BuildError, match="--sample") as err:
        B.build(tmp_path / "nope", tmp_path / "x.h5", **QUIET)
    assert "davischallenge.org" in str(err.value)
    with pytest.raises(SystemExit):
        B.main([])
    assert "--sample" in capsys.readouterr().err
    assert B.main(["--root", str(tmp_path / "nope"), "--out", str(tmp_path / "x.h5")]) == 2


def test_no_ffmpeg_skips_crf_and_builds_the_rest(tiny_davis_sample, tmp_path, monkeypatch):
    monkeypatch.setenv("DAVIS_C_FFMPEG", str(tmp_path / "no-ffmpeg"))
    crf.find_ffmpeg.cache_clear()
    crf.ffmpeg_version.cache_clear()
    msgs = []
    try:
        s = B.build(tiny_davis_sample, tmp_path / "x.h5", strengths=["high"], progress=False, log=msgs.append)
    finally:
        crf.find_ffmpeg.cache_clear()
        crf.ffmpeg_version.cache_clear()
    assert "crf_compression" in s["skipped"] and "DAVIS_C_FFMPEG" in s["skipped"]["crf_compression"]
    assert any("skipping crf_compression" in m for m in msgs)
    assert any("style1" in m and "--style-weights" in m for m in msgs)
    assert s["corruptions"] == ["gaussian_noise", "contrast", "brightness", "saturate", "glass_blur",
                                "defocus_blur", "pixelate", "cartoon", "motion_blur"]


def test_styles_need_weights_and_plug_in(tiny_davis_sample, tmp_path, monkeypatch):
    with pytest.raises(B.BuildError, match="--style-weights"):
        B.build(tiny_davis_sample, tmp_path / "x.h5", corruptions=["style1"], **QUIET)
    import davis_c.stylize as stylize

    seen = {}

    def fake_loader(weights, styles_dir, device=None):  # stands in for the network (tested by its owner)
        seen["args"] = (str(weights), str(styles_dir), device)
        return {f"style{i}": (lambda frames, sev, i=i: (255 - frames) if sev == 5 else frames // i)
                for i in range(1, 5)}

    monkeypatch.setattr(stylize, "load_style_corruptions", fake_loader)
    monkeypatch.setattr(B.C, "_STYLES", {})
    s = B.build(tiny_davis_sample, tmp_path / "x.h5", corruptions=["style2"], style_weights=tmp_path / "w.pth",
                styles_dir=tmp_path, **QUIET)
    assert seen["args"][0].endswith("w.pth") and s["corruptions"] == ["style2"]
    with davis_c.open(tmp_path / "x.h5") as store:
        v = store.videos[0]
        np.testing.assert_array_equal(store["low", "style2", v].frames, store["med", "style2", v].frames)
        assert store.shard_attrs("high", "style2")["corruption_kind"] == "neural"


def test_sample_cli(tmp_path, monkeypatch):
    monkeypatch.setenv("DAVIS_C_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    assert B.main(["--sample", "--corruptions", "pixelate", "--strengths", "low", "--quiet"]) == 0
    with davis_c.open(tmp_path / "davis_c_sample.h5") as store:
        assert len(store.videos) == 3 and store.variants == ["clean", "low/pixelate"]
    assert (tmp_path / "cache" / "sample" / "DAVIS" / "ImageSets").is_dir()
