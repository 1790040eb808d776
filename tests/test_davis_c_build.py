"""davis_c.build: determinism across --workers, resume after kill, skip/force, bad input, styles plumbing."""
from __future__ import annotations

import hashlib
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


@pytest.fixture(scope="module")
def two_workers(tiny_davis_sample, tmp_path_factory):
    out = tmp_path_factory.mktemp("w2") / "davis_c.h5"
    B.build(tiny_davis_sample, out, corruptions=CORRS, workers=2, **QUIET)
    return out


def test_workers_1_and_2_byte_identical(reference, two_workers):
    assert _hashes(two_workers.parent) == _hashes(reference.parent)  # crf shards included
    assert len(_hashes(two_workers.parent)) == 1 + 1 + 3 * len(CORRS)  # index + clean + shards


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


class _CountingStyle:
    """Stands in for davis_c.stylize.StyleCorruption: counts network passes (one per all_strengths call)."""

    def __init__(self, i: int) -> None:
        self.i, self.passes = i, []

    def all_strengths(self, frames):
        self.passes.append(len(frames))
        return {3: frames // self.i, 4: frames // self.i, 5: 255 - frames}

    def __call__(self, frames, sev):
        self.passes.append(len(frames))
        return self.all_strengths(frames)[sev]


def _fake_setup(sha: str):
    return {"style_weights_sha256": sha, "style_weights_random_init": False,
            "style_images_md5": {f"{j}.png": "0" * 32 for j in range(1, 5)}, "style_images_official": False}


def test_styles_need_weights_and_plug_in(tiny_davis_sample, tmp_path, monkeypatch):
    with pytest.raises(B.BuildError, match="--style-weights"):
        B.build(tiny_davis_sample, tmp_path / "x.h5", corruptions=["style1"], **QUIET)
    import davis_c.stylize as stylize

    seen = {}
    styles = {f"style{i}": _CountingStyle(i) for i in range(1, 5)}
    plain_calls = []
    styles["style3"] = lambda frames, sev: plain_calls.append(sev) or ((255 - frames) if sev == 5 else frames // 3)

    def fake_loader(weights, styles_dir, device=None):  # stands in for the network (tested by its owner)
        seen["args"] = (str(weights), str(styles_dir), device)
        return dict(styles)

    def fake_describe(weights, styles_dir):
        seen["describe"] = (str(weights), str(styles_dir))
        return _fake_setup(seen.get("sha", "a" * 64))

    monkeypatch.setattr(stylize, "load_style_corruptions", fake_loader)
    monkeypatch.setattr(stylize, "describe_style_setup", fake_describe)
    monkeypatch.setattr(B.C, "_STYLES", {})
    kw = {"style_weights": tmp_path / "w.pth", "styles_dir": tmp_path, "codec": "png", **QUIET}
    s = B.build(tiny_davis_sample, tmp_path / "x.h5", corruptions=["style2", "style3"], **kw)
    assert seen["args"][0].endswith("w.pth") and seen["describe"][0].endswith("w.pth")
    assert s["corruptions"] == ["style2", "style3"] and len(s["built"]) == 1 + 6
    with davis_c.open(tmp_path / "x.h5") as store:
        v = store.videos[0]
        n_videos, n_frames = len(store.videos), len(store.clean(v).frames)
        np.testing.assert_array_equal(store["low", "style2", v].frames, store["med", "style2", v].frames)
        np.testing.assert_array_equal(store["high", "style2", v].frames, 255 - store.clean(v).frames)
        for st in ("low", "med", "high"):
            attrs = store.shard_attrs(st, "style2")
            assert attrs["corruption_kind"] == "neural"
            assert attrs["style_weights_sha256"] == "a" * 64 and attrs["style_weights_random_init"] is False
            assert attrs["style_images_md5"] == _fake_setup("")["style_images_md5"] and attrs["style_key"]
        assert store.attrs["style_weights_sha256"] == "a" * 64 and store.attrs["style_key"] == attrs["style_key"]
    # one network pass per (video, style) serves low, med and high; a plain callable: one call per strength
    assert styles["style2"].passes == [n_frames] * n_videos
    assert sorted(plain_calls) == [3] * n_videos + [4] * n_videos + [5] * n_videos

    # rerun: same weights -> reused; other weights -> the style shards (only) are rebuilt
    s = B.build(tiny_davis_sample, tmp_path / "x.h5", corruptions=["style2"], **kw)
    assert s["built"] == [] and len(styles["style2"].passes) == n_videos
    seen["sha"] = "b" * 64
    s = B.build(tiny_davis_sample, tmp_path / "x.h5", corruptions=["style2"], **kw)
    assert s["built"] == ["low/style2", "med/style2", "high/style2"]
    assert len(styles["style2"].passes) == 2 * n_videos
    with davis_c.open(tmp_path / "x.h5") as store:  # style3 (old weights) is not mixed into the index
        assert store.corruptions == ["style2"] and store.attrs["style_weights_sha256"] == "b" * 64
        assert store.shard_attrs("high", "style2")["style_weights_sha256"] == "b" * 64


def test_bad_style_setup_fails_before_any_work(tiny_davis_sample, tmp_path, shared):
    out = tmp_path / "x.h5"
    with pytest.raises(B.BuildError, match="style weights not found"):
        B.build(tiny_davis_sample, out, corruptions=["style1"], style_weights=tmp_path / "missing.pt",
                styles_dir=shared / "davis_c_styles", **QUIET)
    with pytest.raises(B.BuildError, match="style images missing"):
        B.build(tiny_davis_sample, out, corruptions=["style1"], style_weights=tmp_path / "missing.pt",
                styles_dir=tmp_path, **QUIET)
    assert _nothing_published(out) and not (tmp_path / "x_shards" / "clean.h5").exists()


def test_corrupt_strengths_one_pass_or_per_severity(monkeypatch):
    frames = np.random.default_rng(0).integers(0, 256, (3, 16, 20, 3), dtype=np.uint8)
    counting = _CountingStyle(2)
    monkeypatch.setattr(B.C, "_STYLES", {"style1": counting, "style2": lambda f, sev: f // sev})
    out = B.C.corrupt_strengths(frames, "style1", [3, 4, 5])
    assert counting.passes == [3] and sorted(out) == [3, 4, 5]
    np.testing.assert_array_equal(out[5], 255 - frames)
    out = B.C.corrupt_strengths(frames, "style2", [3, 5])
    np.testing.assert_array_equal(out[5], frames // 5)
    out = B.C.corrupt_strengths(frames, "glass_blur", [3, 5], seeds={3: 7, 5: 9})
    np.testing.assert_array_equal(out[5], davis_c.corrupt(frames, "glass_blur", 5, seed=9))


def test_workers_limit_torch_threads(monkeypatch):
    import torch

    before = torch.get_num_threads()
    monkeypatch.setattr(B, "_cpu_count", lambda: 8)
    try:
        assert B.limit_torch_threads(1) is None and torch.get_num_threads() == before
        B._init_worker(None, None, None, 3)  # a worker of --workers 3 on 8 cores
        assert torch.get_num_threads() == 2
        assert B.limit_torch_threads(16) == 1 and torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    monkeypatch.delitem(sys.modules, "torch")  # a weight-free worker never imports torch
    assert B.limit_torch_threads(2) is None and "torch" not in sys.modules


def test_style_worker_embeds_styles_before_limiting_threads(monkeypatch):
    """Style embeddings are computed at torch's default thread count in every worker, as in a --workers 1
    build (the predictor's last bits depend on the thread count; the stored frames must not)."""
    import torch

    before = torch.get_num_threads()
    seen = []

    class Transfer:
        def style_params(self, style):
            seen.append((style, torch.get_num_threads()))

    class Style:
        def __init__(self, i):
            self.transfer, self.style = Transfer(), i

    monkeypatch.setattr(B, "_cpu_count", lambda: 8)
    monkeypatch.setattr(B.C, "_STYLES", {})
    monkeypatch.setattr(B.C, "load_styles",
                        lambda w, d, dev=None: B.C.set_styles({f"style{i}": Style(i) for i in range(1, 5)}))
    try:
        B._init_worker("w.pt", "styles", None, 2)
        after = torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
    assert seen == [(i, before) for i in range(1, 5)] and after == 4


def test_sample_cli(tmp_path, monkeypatch):
    monkeypatch.setenv("DAVIS_C_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    assert B.main(["--sample", "--corruptions", "pixelate", "--strengths", "low", "--quiet"]) == 0
    with davis_c.open(tmp_path / "davis_c_sample.h5") as store:
        assert len(store.videos) == 3 and store.variants == ["clean", "low/pixelate"]
    assert (tmp_path / "cache" / "sample" / "DAVIS" / "ImageSets").is_dir()
