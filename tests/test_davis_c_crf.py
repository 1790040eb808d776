"""crf_compression: the official ffmpeg pipeline, compared by PSNR with the golden table (codec-dependent)."""
from __future__ import annotations

import json
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
