"""packet_loss (temporal suite): a video streamed as H.264, slices damaged at a seeded rate, decoded with error
concealment, so the damage smears on until the next keyframe.

1. encode: the frames (rgb24, piped) -> libx264 raw H.264 Annex B, with every setting fixed (:data:`ENCODE`:
   CRF 23, a keyframe (IDR) every :data:`GOP` frames, no B-frames, so decode order = display order, one
   thread: x264's bits depend on its thread count, see :mod:`davis_c.corruptions.crf`);
2. damage, in Python, with ``np.random.default_rng(seed)``: for every coded slice of a non-IDR picture (NAL
   type 1), in stream order, one draw ``u = rng.random()``; when ``u < p`` (``p = PACKET_LOSS[severity]``)
   the slice is hit and its bytes from offset ``o`` on are replaced, ``o = PROTECT + rng.integers(0,
   max(1, n - PROTECT))`` for a slice of ``n`` bytes (the NAL header and the first bytes of the slice header
   are kept, so the decoder still sees one picture per frame), by ``rng.integers(1, 256, n - o)`` (never
   0, so no start code can appear).  IDR pictures (frame 0 and every keyframe) are never hit;
3. decode: ffmpeg's H.264 decoder, one thread, ``-err_detect ignore_err`` with its default error
   concealment (motion-vector guessing and deblocking), -> rgb24.

The hit frames are the events (a run from the hit to the next keyframe).  The bytes depend on the ffmpeg
build (libx264, libavcodec, libswscale), so its identity is recorded with every packet_loss shard, like
crf's; the encoder and decoder arguments are in :func:`pipeline_digest`.
"""
from __future__ import annotations

import hashlib
import subprocess

import numpy as np

from common.ffmpeg import find_ffmpeg
from davis_c.corruptions._common import check_frames

__all__ = ["PACKET_LOSS", "GOP", "PROTECT", "ENCODE", "DECODE", "encode_h264", "damage", "decode_h264",
           "packet_loss", "nal_units", "pipeline_digest"]

#: severity -> probability that a non-IDR slice is hit
PACKET_LOSS = {3: (0.1,), 4: (0.2,), 5: (0.35,)}
#: keyframe interval (frames)
GOP = 12
#: bytes of every NAL unit never damaged (its header and the start of the slice header)
PROTECT = 8
ENCODE = ["-c:v", "libx264", "-preset", "medium", "-crf", "23", "-g", str(GOP), "-keyint_min", str(GOP),
          "-sc_threshold", "0", "-bf", "0", "-threads", "1", "-pix_fmt", "yuv420p", "-f", "h264"]
DECODE = ["-threads", "1", "-err_detect", "ignore_err", "-c:v", "h264"]


def pipeline_digest() -> str:
    """SHA-256 of the encoder and decoder arguments and the damage constants (with the ffmpeg identity, what
    decides the bytes)."""
    return hashlib.sha256(repr((ENCODE, DECODE, GOP, PROTECT, sorted(PACKET_LOSS.items()))).encode()).hexdigest()


def _run(args: list[str], data: bytes, what: str) -> bytes:
    proc = subprocess.run([find_ffmpeg(), "-hide_banner", "-loglevel", "error", "-nostdin", *args], input=data,
                          capture_output=True, timeout=3600)
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.decode("utf-8", "replace").strip().splitlines()[-3:])
        raise RuntimeError(f"packet_loss: ffmpeg failed to {what}: {tail}")
    return proc.stdout


def _even(n: int) -> int:
    return n + (n % 2)


def encode_h264(frames: np.ndarray) -> bytes:
    """The video as a raw H.264 Annex B stream (frames padded to even sizes by repeating the last row /
    column, as yuv420p needs)."""
    t, h, w, _ = frames.shape
    he, we = _even(h), _even(w)
    if (he, we) != (h, w):
        frames = np.pad(frames, ((0, 0), (0, he - h), (0, we - w), (0, 0)), mode="edge")
    return _run(["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{we}x{he}", "-r", "24", "-threads", "1", "-i",
                 "pipe:0", *ENCODE, "pipe:1"], np.ascontiguousarray(frames).tobytes(), "encode")


def nal_units(stream: bytes) -> list[tuple[int, int]]:
    """``(start, end)`` of every NAL unit's bytes (after its start code) in an Annex B stream."""
    starts = []
    i, n = 0, len(stream)
    while True:
        j = stream.find(b"\x00\x00\x01", i)
        if j < 0:
            break
        starts.append(j + 3)
        i = j + 3
    out = []
    for k, s in enumerate(starts):
        e = starts[k + 1] - 3 if k + 1 < len(starts) else n
        while e > s and stream[e - 1] == 0 and k + 1 < len(starts):  # the zero_byte of a 4-byte start code
            e -= 1
        out.append((s, e))
    return out


def damage(stream: bytes, probability: float, seed: int) -> tuple[bytes, list[int]]:
    """Step 2 of the module doc; returns the damaged stream and the index (picture number, 0 = the first
    frame) of every hit picture."""
    rng = np.random.default_rng(seed)
    buf = bytearray(stream)
    hits = []
    picture = -1
    for s, e in nal_units(stream):
        kind = stream[s] & 0x1F
        if kind in (1, 5) and e - s > 1 and stream[s + 1] & 0x80:  # first_mb_in_slice == 0: a new picture
            picture += 1
        if kind != 1:
            continue
        if rng.random() >= probability:
            continue
        n = e - s
        o = PROTECT + int(rng.integers(0, max(1, n - PROTECT)))
        if o >= n:
            continue
        buf[s + o:e] = rng.integers(1, 256, n - o).astype(np.uint8).tobytes()
        if not hits or hits[-1] != picture:
            hits.append(picture)
    return bytes(buf), hits


def decode_h264(stream: bytes, n_frames: int, height: int, width: int) -> np.ndarray:
    """Step 3: decode with error concealment; (T, H, W, 3) uint8 (the even padding cropped)."""
    he, we = _even(height), _even(width)
    raw = _run([*DECODE, "-f", "h264", "-i", "pipe:0", "-fps_mode", "passthrough", "-f", "rawvideo",
                "-pix_fmt", "rgb24", "pipe:1"], stream, "decode")
    size = he * we * 3
    if len(raw) != n_frames * size:
        raise RuntimeError(f"packet_loss: the decoder returned {len(raw) / size:.2f} frames for {n_frames}")
    return np.frombuffer(raw, np.uint8).reshape(n_frames, he, we, 3)[:, :height, :width].copy()


def packet_loss(frames: np.ndarray, masks: np.ndarray | None, severity: int, seed: int):
    """The whole corruption (module doc); a :class:`~davis_c.corruptions.temporal_suite.TemporalResult`
    whose events run from each hit picture to the next keyframe (or the end)."""
    from davis_c.corruptions.temporal_suite import TemporalResult

    video = check_frames(frames, "packet_loss")
    t, h, w, _ = video.shape
    (p,) = PACKET_LOSS[severity]
    damaged, hits = damage(encode_h264(video), p, seed)
    out = decode_h264(damaged, t, h, w)
    events, covered = [], -1
    for f in hits:
        if f <= covered:
            continue
        end = min(t, (f // GOP + 1) * GOP)
        events.append((f, end))
        covered = end - 1
    return TemporalResult(out, events=tuple(events), schedule={"hit_pictures": hits, "gop": GOP})
