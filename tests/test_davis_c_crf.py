"""crf_compression: the official ffmpeg pipeline, compared by PSNR with the golden table (codec-dependent)."""
from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from davis_c.codec import decode_image
from davis_c.corruptions import FfmpegUnavailable, corrupt
from davis_c.corruptions import crf


def _psnr(a, b):
    mse = np.mean((a.astype(float) - b.astype(float)) ** 2)
    return 10 * np.log10(255.0 ** 2 / mse)


@pytest.fixture(scope="module")
def small(golden):
    d = golden / "davis_c"
    inputs = np.load(d / "inputs.npz")
    data, off = inputs["small_jpg_bytes"], inputs["small_jpg_offsets"]
    jpegs = [data[off[i]:off[i + 1]].tobytes() for i in range(len(off) - 1)]
    info = json.loads((d / "crf_info.json").read_text())["results"]
    return inputs["small"], jpegs, info


def test_psnr_table_frame_count_and_monotonic(small):
    frames, jpegs, info = small
    means = []
    for sev in (3, 4, 5):
        out_jpegs = crf.crf_jpegs(jpegs, sev)
        assert len(out_jpegs) == len(jpegs) == 8  # names 00000..00007 (checked inside crf_jpegs by sort)
        assert all(b[:2] == b"\xff\xd8" for b in out_jpegs)
        out = np.stack([decode_image(b) for b in out_jpegs])
        mean = float(np.mean([_psnr(o, f) for o, f in zip(out, frames)]))
        want = float(np.mean(info[f"small_s{sev}"]["psnr_final_vs_input"]))
        assert abs(mean - want) <= 1.5, (sev, mean, want)
        means.append(mean)
    assert means[0] > means[1] > means[2]


def test_frames_api_and_parallel_calls_do_not_collide(small):
    frames, jpegs, _ = small
    with ThreadPoolExecutor(2) as pool:
        a, b = pool.map(lambda _: corrupt(frames[:3], "crf_compression", 5, source_jpegs=jpegs[:3]), range(2))
    np.testing.assert_array_equal(a, b)  # deterministic, and no shared out.mp4
    c = corrupt(frames[:3], "crf_compression", 5)  # frames only: encoded like cv2.imwrite first
    assert c.shape == frames[:3].shape and c.dtype == np.uint8
    assert _psnr(c, frames[:3]) > 15


def test_missing_ffmpeg_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("DAVIS_C_FFMPEG", "/nonexistent/ffmpeg")
    crf.find_ffmpeg.cache_clear()
    try:
        with pytest.raises(FfmpegUnavailable, match="DAVIS_C_FFMPEG"):
            corrupt(np.zeros((2, 16, 16, 3), np.uint8), "crf_compression", 3)
    finally:
        crf.find_ffmpeg.cache_clear()


def test_every_step_fixes_its_thread_settings():
    """x264/x265 pick thread counts from the core count and their bits depend on them: every decoder and
    encoder of the pipeline gets explicit settings."""
    import ffmpeg

    steps = crf.pipeline(5)
    assert len(steps) == 3
    for name, stream in steps:
        args = ffmpeg.compile(stream, cmd="ffmpeg")
        i = args.index("-i")
        assert args[i - 2:i] == ["-threads", "1"], (name, args)           # decoder
        assert args[i + 2:].count("-threads") == 1 and args[args.index("-threads", i) + 1] == "1", (name, args)
    x265 = ffmpeg.compile(steps[1][1], cmd="ffmpeg")
    assert x265[x265.index("-x265-params") + 1] == "pools=none:frame-threads=1:repeat-headers=1"
    assert "libx264" in ffmpeg.compile(steps[0][1], cmd="ffmpeg")


def _crf_on_one_core(jpegs, queue):
    import os

    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    queue.put(crf.crf_jpegs(jpegs, 4))


def test_bytes_do_not_depend_on_the_cores(small):
    """The same bytes on one core as on all of them (ffmpeg's automatic thread counts follow the CPU
    affinity, so without explicit settings the encoders would run with other thread counts)."""
    import multiprocessing
    import os

    if not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs Linux CPU affinity and >= 2 cores")
    _, jpegs, _ = small
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    p = ctx.Process(target=_crf_on_one_core, args=(jpegs, queue))
    p.start()
    one_core = queue.get(timeout=120)
    p.join(30)
    assert one_core == crf.crf_jpegs(jpegs, 4)


def _busy(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_bytes_do_not_depend_on_thread_timing(tiny_davis_sample):
    """Under CPU load, with several encodes at a time, every encode gives the bytes of a lone encode.  With
    mp4's global headers x265 4.3 runs with repeat-headers=0 and then, depending on thread timing, encoded
    this sample's second video at CRF 45 with other frame QPs in about 1 run of 4 (7 of 30 measured, and
    never with repeat-headers=1; see the crf module docstring).  12 loaded encodes of that video miss the
    old behaviour with probability about 0.77**12 = 4 %."""
    import multiprocessing

    video = sorted((tiny_davis_sample / "JPEGImages" / "480p").iterdir())[1]
    jpegs = [p.read_bytes() for p in sorted(video.glob("*.jpg"))]
    want = crf.crf_jpegs(jpegs, 4)
    ctx = multiprocessing.get_context("spawn")
    hogs = [ctx.Process(target=_busy, args=(60.0,), daemon=True) for _ in range(2)]
    for h in hogs:
        h.start()
    try:
        with ThreadPoolExecutor(3) as pool:  # each call runs its own ffmpeg processes
            got = list(pool.map(lambda _: crf.crf_jpegs(jpegs, 4), range(12)))
    finally:
        for h in hogs:
            h.terminate()
            h.join(5)
    assert sum(g != want for g in got) == 0


def test_pipeline_digest_covers_every_argument(monkeypatch):
    before = crf.pipeline_digest()
    assert before == crf.pipeline_digest() and len(before) == 64
    monkeypatch.setitem(crf.THREAD_SETTINGS, "x265", {"threads": 1, "x265-params": "pools=none:frame-threads=1"})
    assert crf.pipeline_digest() != before


def test_step_ticks_add_up_to_the_frames_whatever_ffmpeg_reports():
    ticks = []
    t = crf._StepTicks(10, ticks.append)
    for step, reports in enumerate([[0, 4, 4, 10], [3, 12], [1]]):  # repeated, overshooting and missing reports
        for frames in reports:
            t.at(step, frames)
    assert sum(ticks) == 7 and all(n > 0 for n in ticks)  # (2 * 10 + 1) // 3: the last step reported 1 frame
    t.finish()
    assert sum(ticks) == 10


def test_progress_moves_during_each_ffmpeg_step_on_a_real_video(shared):
    """A real 480p video: the build's bar moves while ffmpeg runs (at least once per step, and about every
    half second as ffmpeg reports), the ticks add up to the frames, and the bytes are those of a run without
    progress reporting."""
    video = shared / "real_davis16" / "JPEGImages" / "480p" / "car-shadow"
    jpegs = [p.read_bytes() for p in sorted(video.glob("*.jpg"))[:24]]
    ticks: list[int] = []
    got = crf.crf_jpegs(jpegs, 3, progress=ticks.append)
    assert sum(ticks) == len(jpegs) and len(ticks) >= 3 and min(ticks) > 0
    assert got == crf.crf_jpegs(jpegs, 3)
