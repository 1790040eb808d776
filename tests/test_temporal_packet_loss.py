"""packet_loss (temporal suite): NAL parsing, the seeded damage rule, damage confined from the hit to the next
keyframe, and byte determinism (seed, parallel calls under CPU load)."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from davis_c import corruptions as C
from davis_c.corruptions import packet_loss as P

def _has_ffmpeg() -> bool:
    try:
        from common.ffmpeg import find_ffmpeg

        find_ffmpeg()
        return True
    except Exception:
        return False

needs_ffmpeg = pytest.mark.skipif(not _has_ffmpeg(), reason="no ffmpeg (PATH, imageio-ffmpeg or DAVIS_C_FFMPEG)")

def _nal(kind: int, body: bytes, first_slice: bool = True) -> bytes:
    head = bytes([0x60 | kind]) + (bytes([0x80]) if first_slice else bytes([0x00]))
    return b"\x00\x00\x00\x01" + head + body

def test_nal_units_and_damage_rule():
    body = bytes(range(10, 40))  # 30 bytes, no zeros
    stream = _nal(7, b"\x11" * 5) + _nal(8, b"\x22" * 3) + _nal(5, body) + _nal(1, body) + _nal(1, body) \
        + _nal(1, body, first_slice=False)
    units = P.nal_units(stream)
    assert [stream[s] & 0x1F for s, _ in units] == [7, 8, 5, 1, 1, 1]
    assert [e - s for s, e in units] == [7, 5, 32, 32, 32, 32]
    damaged, hits = P.damage(stream, 1.0, seed=3)
    assert len(damaged) == len(stream)
    rng = np.random.default_rng(3)  # the rule, replayed: one draw per non-IDR slice, then offset and bytes
    want = bytearray(stream)
    for s, e in units[3:]:
        assert rng.random() < 1.0
        o = P.PROTECT + int(rng.integers(0, max(1, e - s - P.PROTECT)))
        want[s + o:e] = rng.integers(1, 256, e - s - o).astype(np.uint8).tobytes()
    assert damaged == bytes(want)
    assert hits == [1, 2]  # pictures 1 and 2 (the third slice belongs to picture 2)
    for s, e in units[:3]:  # parameter sets and the IDR picture are never touched
        assert damaged[s:e] == stream[s:e]
    for s, e in units[3:]:
        assert damaged[s:s + P.PROTECT] == stream[s:s + P.PROTECT] and 0 not in damaged[s + P.PROTECT:e]
    assert P.damage(stream, 0.0, seed=3) == (stream, [])

@pytest.fixture(scope="module")
def video():

    from davis_c.sample import make_sample
    from davis_c.datasets import Davis2017
    import tempfile
    from pathlib import Path

    root = make_sample(Path(tempfile.mkdtemp()) / "DAVIS", videos=1, frames=26, height=64, width=96, seed=1)
    ds = Davis2017(root, "val", "480p")
    return ds.load(ds.videos[0]).frames

@needs_ffmpeg
def test_damage_lasts_from_the_hit_to_the_next_keyframe(video):
    t, h, w, _ = video.shape
    clean_stream = P.encode_h264(video)
    undamaged = P.decode_h264(clean_stream, t, h, w)
    res = C.corrupt_temporal(video, "packet_loss", 5, seed=4)
    hits = res.schedule["hit_pictures"]
    assert hits and 0 not in hits and all(f % P.GOP for f in hits)  # keyframes never hit
    differs = [not np.array_equal(a, b) for a, b in zip(res.frames, undamaged)]
    first = hits[0]
    assert not any(differs[:first])  # before the first hit: the plain H.264 round trip
    assert differs[first]
    for f in range(t):  # a keyframe with no hit after it in its GOP decodes exactly as without damage
        gop = f // P.GOP
        if not any(gop * P.GOP <= x <= f for x in hits):
            assert not differs[f], f
    for s, e in res.events:
        assert s in hits and e == min(t, (s // P.GOP + 1) * P.GOP)
    # the round trip itself is a mild compression: close to the source
    assert np.abs(undamaged.astype(int) - video.astype(int)).mean() < 8

@needs_ffmpeg
def test_seeded_and_deterministic_under_load(video):
    import multiprocessing

    want = C.corrupt_temporal(video, "packet_loss", 4, seed=9).frames.tobytes()
    other = [C.corrupt_temporal(video, "packet_loss", 4, seed=s).frames.tobytes() for s in (10, 11, 12)]
    assert any(o != want for o in other)
    ctx = multiprocessing.get_context("spawn")
    hogs = [ctx.Process(target=_busy, args=(30.0,), daemon=True) for _ in range(2)]
    for hog in hogs:
        hog.start()
    try:
        with ThreadPoolExecutor(3) as pool:  # each call runs its own ffmpeg processes
            got = list(pool.map(lambda _: C.corrupt_temporal(video, "packet_loss", 4, seed=9).frames.tobytes(),
                                range(6)))
    finally:
        for hog in hogs:
            hog.terminate()
            hog.join(5)
    assert all(g == want for g in got)

def _busy(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass

def test_pipeline_digest_covers_the_settings(monkeypatch):
    before = P.pipeline_digest()
    monkeypatch.setattr(P, "GOP", 24)
    assert P.pipeline_digest() != before
    monkeypatch.undo()
    monkeypatch.setattr(P, "ENCODE", [*P.ENCODE[:-2], "-crf", "30"])
    assert P.pipeline_digest() != before

@needs_ffmpeg
def test_odd_sizes_round_trip():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (5, 17, 23, 3), dtype=np.uint8)
    out = C.corrupt_temporal(frames, "packet_loss", 3, seed=0)
    assert out.frames.shape == frames.shape and out.frames.dtype == np.uint8
