"""crf_compression: the official three-step ffmpeg pipeline on a whole video, via ffmpeg-python.

1. the clean JPEG frames (image2 glob, 24 fps) -> ``out.mp4`` with ffmpeg's default mp4 settings (libx264,
   CRF 23: a hidden first lossy pass);
2. ``out.mp4`` -> ``out2.mp4`` with libx265 at CRF 40/45/50 (severity 3/4/5);
3. ``out2.mp4`` -> ``%05d.jpg`` at 24 fps with the MJPEG encoder at ``-qscale:v 2``, numbered from 0.

Unlike the official script (fixed ``out.mp4`` names in the working directory), every call works in its own
temporary folder, so parallel builds cannot collide.  The temporary folders live where the caller says (the
builder: the output's own ``.tmp`` folder, emptied by the next build), not in the system temp folder, so a
killed build leaves nothing outside its output.

**Deterministic by construction.**  Left to themselves, x264 and x265 pick their thread counts (x264:
frame threads and lookahead threads, x265: the worker pool and the frame threads) from the machine's core
count, and a thread count changes the encoded bits (x264's frame threading limits motion vectors, x265's
frame parallelism changes rate control).  Every step here therefore passes them explicitly
(:data:`THREAD_SETTINGS`): ``-threads 1`` on each decoder and encoder, x265 ``pools=none:frame-threads=1``
(no worker-thread pool: everything but the one frame-encoder thread runs in the calling thread), so a
machine's core count, its load or ``--workers`` cannot change a byte.  One more x265 setting is needed:
``repeat-headers=1``.  ffmpeg gives the mp4 muxer global headers, and for that it opens x265 with
``repeat-headers=0``; x265 4.3 (the version in the imageio-ffmpeg build) then encodes the same input in
one of two ways depending on thread timing.  Measured on the 2-video test sample plus the four real
DAVIS-2016 videos, 3 encodes at a time next to two busy loops: 7 of 216 crf videos came out with
other bytes (always one sample video at CRF 45, with other frame QPs), and a raw ``-f hevc`` output,
which keeps ``repeat-headers=1``, never did.  With ``repeat-headers=1`` passed explicitly the same
load test gives 0 of 216 (0 of 660 in a longer run), and the output frames are byte-identical to those of the old settings on an
idle machine (all 18 video/severity pairs), so no correct crf shard changes.  (x265 then also writes
the parameter sets in-band before each keyframe; the mp4 keeps its global copy, and decoding is the same.)
What the bytes still depend on: the ffmpeg build (libavcodec/libavformat, the libx264 and libx265
versions and their build options) and the CRF/quality/frame-rate settings above.  So
``ffmpeg_identity()`` (the version line and the SHA-256 of the binary) and :func:`pipeline_digest`
(every ffmpeg argument of the three steps) are part of the crf shards' build key: a resumed build never
mixes ffmpeg builds or encoder settings, and an ffmpeg whose version cannot be read is an error
(:class:`FfmpegIdentityError`), never "unknown".
The ffmpeg binary is ``$DAVIS_C_FFMPEG`` if set, else ``ffmpeg`` on the PATH, else the static build shipped
in the ``imageio-ffmpeg`` wheel.
"""
from __future__ import annotations

import errno
import functools
import hashlib
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Callable, Sequence

import ffmpeg
import numpy as np

from common.ffmpeg import FfmpegUnavailable, find_ffmpeg  # the one locator (also used by leaderboard videos)
from davis_c.codec import decode_image, encode_image
from davis_c.corruptions._common import check_frames

__all__ = ["CRF", "FPS", "THREAD_SETTINGS", "FfmpegUnavailable", "FfmpegIdentityError", "find_ffmpeg",
           "ffmpeg_version", "ffmpeg_identity", "pipeline_digest", "crf_jpegs", "crf_compression", "pipeline",
           "TEMP_PREFIX"]

#: prefix of the per-call temporary folders
TEMP_PREFIX = "davis_c_crf_"

#: libx265 CRF (severity 1..5; the official 0 at severity 1-2 is unused and not lossless, so refused)
CRF = (0, 0, 40, 45, 50)
FPS = 24
#: explicit thread settings of each step (inputs: decoder threads; outputs: encoder threads); the encoded
#: bits of x264/x265 depend on their thread counts, which ffmpeg would otherwise take from the core count,
#: and x265 output for mp4 depends on thread timing unless ``repeat-headers=1`` (module docstring)
THREAD_SETTINGS = {"input": {"threads": 1},
                   "x264": {"threads": 1},
                   "x265": {"threads": 1, "x265-params": "pools=none:frame-threads=1:repeat-headers=1"},
                   "mjpeg": {"threads": 1}}


class FfmpegIdentityError(RuntimeError):
    """An ffmpeg binary was found but its version cannot be determined: crf data of an unknown build
    would not be reproducible, so it is not made."""


@functools.lru_cache(maxsize=None)
def ffmpeg_version() -> str:
    """First line of ``ffmpeg -version`` (recorded in the store: crf output depends on it).  Raises
    :class:`FfmpegIdentityError` when ffmpeg fails or prints no version line."""
    exe = find_ffmpeg()
    try:
        res = subprocess.run([exe, "-version"], capture_output=True, text=True, timeout=60)
    except OSError as exc:
        raise FfmpegUnavailable(f"cannot run ffmpeg at {exe}: {exc}") from exc
    except subprocess.TimeoutExpired as exc:
        raise FfmpegIdentityError(f"{exe} -version did not answer in 60 s") from exc
    lines = [ln.strip() for ln in res.stdout.splitlines() if ln.strip()]
    if res.returncode != 0 or not lines or not lines[0].lower().startswith("ffmpeg version"):
        tail = " | ".join((res.stderr or "").strip().splitlines()[-3:])
        raise FfmpegIdentityError(f"{exe} -version exited {res.returncode} without a version line "
                                  f"({tail or 'no output'}); crf_compression needs a working ffmpeg whose "
                                  "version is known (set DAVIS_C_FFMPEG to one)")
    return lines[0]


def ffmpeg_identity() -> dict[str, str]:
    """``{"version": first line of ffmpeg -version, "sha256": SHA-256 of the binary, "path": its path}``;
    version and hash are what the crf shards' key records."""
    exe = find_ffmpeg()
    return dict(_identity_of(exe, ffmpeg_version()))


@functools.lru_cache(maxsize=None)
def _identity_of(exe: str, version: str) -> dict[str, str]:
    h = hashlib.sha256()
    try:
        with open(os.path.realpath(exe), "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    except OSError as exc:
        raise FfmpegIdentityError(f"cannot read the ffmpeg binary {exe} to hash it: {exc}") from exc
    return {"version": version, "sha256": h.hexdigest(), "path": exe}


def _run(stream, exe: str, cwd: str, step: str, on_frames: Callable[[int], None] | None = None) -> None:
    """Run one step in ``cwd``.  ``on_frames(n)`` is called with the number of frames the step has
    written so far, as ffmpeg reports it (``-progress``, about every half second, and at the end); the
    reporting options do not change the encoded bytes."""
    args = ffmpeg.compile(stream, cmd=exe, overwrite_output=True)
    if on_frames is not None:
        args = [args[0], "-nostats", "-progress", "pipe:1", *args[1:]]
    log_path = Path(cwd, "ffmpeg.log")
    with open(log_path, "wb") as log:  # stderr to a file: a full pipe could block ffmpeg
        proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE if on_frames else subprocess.DEVNULL,
                                stderr=log)
        if on_frames is not None:
            for line in proc.stdout:
                key, _, value = line.decode("ascii", "replace").strip().partition("=")
                if key == "frame" and value.isdigit():
                    on_frames(int(value))
            proc.stdout.close()
        returncode = proc.wait()
    if returncode != 0:
        text = log_path.read_bytes().decode("utf-8", "replace")
        for code in (errno.ENOSPC, errno.EROFS, errno.EDQUOT):  # the disk, not ffmpeg: an OSError like any write
            if os.strerror(code) in text:
                raise OSError(code, os.strerror(code), cwd)
        tail = text.strip().splitlines()[-5:]
        raise RuntimeError(f"ffmpeg failed in crf_compression step '{step}': {' | '.join(tail)}")


class _StepTicks:
    """Turns the three steps' frame counts into ticks that add up to the video's frame count (each step
    is a third of the work), so a build's frame-variant bar moves while ffmpeg runs."""

    def __init__(self, n_frames: int, tick: Callable[[int], None]) -> None:
        self.n, self.tick, self.done = n_frames, tick, 0

    def at(self, step: int, frames: int) -> None:
        target = (step * self.n + min(max(frames, 0), self.n)) // 3
        if target > self.done:
            self.tick(target - self.done)
            self.done = target

    def finish(self) -> None:
        """Count the frames not reported yet (ffmpeg's last report can come before its last frame)."""
        if self.done < self.n:
            self.tick(self.n - self.done)
            self.done = self.n


def pipeline(severity: int) -> list[tuple[str, object]]:
    """The three ffmpeg steps as (name, ffmpeg-python stream), paths relative to the work folder (the glob
    pattern then never contains characters of the temporary path)."""
    t = THREAD_SETTINGS
    first = (ffmpeg.input("src/*.jpg", framerate=FPS, pattern_type="glob", **t["input"])
             .output("out.mp4", vcodec="libx264", **t["x264"]))  # libx264 is mp4's default encoder
    second = ffmpeg.input("out.mp4", **t["input"]).output("out2.mp4", vcodec="libx265", crf=CRF[severity - 1],
                                                          **t["x265"])
    third = ffmpeg.input("out2.mp4", **t["input"]).output("out/%05d.jpg", r=FPS, start_number=0,
                                                          **{"qscale:v": 2}, **t["mjpeg"])
    return [("jpeg -> mp4 (libx264, mp4's default encoder)", first), ("mp4 -> libx265", second),
            ("libx265 -> jpeg", third)]


def pipeline_digest() -> str:
    """SHA-256 of every ffmpeg argument of the three steps at severities 3, 4 and 5 (the binary's path left
    out): what, besides the ffmpeg build, decides the crf bytes.  Part of the crf shards' key."""
    args = [ffmpeg.compile(stream, cmd="ffmpeg", overwrite_output=True)
            for severity in (3, 4, 5) for _, stream in pipeline(severity)]
    return hashlib.sha256(repr(args).encode()).hexdigest()


def crf_jpegs(jpegs: Sequence[bytes], severity: int, tmp_dir: str | os.PathLike | None = None,
              progress: Callable[[int], None] | None = None) -> list[bytes]:
    """Run the pipeline on the clean JPEG files of one video (in frame order); returns the output JPEG
    files' bytes (one per input frame, named 00000.jpg ... by ffmpeg).  The work folder is made in
    ``tmp_dir`` (default: the system's temporary folder) and removed afterwards.  ``progress(n)`` is called
    while ffmpeg runs with increments that add up to the number of frames."""
    if severity not in (3, 4, 5):
        raise ValueError(f"crf_compression is defined for severities 3, 4, 5 (got {severity})")
    if not jpegs:
        raise ValueError("crf_compression: empty video")
    exe = find_ffmpeg()
    if tmp_dir is not None:
        os.makedirs(tmp_dir, exist_ok=True)
    ticks = _StepTicks(len(jpegs), progress) if progress is not None else None
    with tempfile.TemporaryDirectory(prefix=f"{TEMP_PREFIX}{os.getpid()}_", dir=tmp_dir) as tmp:
        src = Path(tmp, "src")
        dst = Path(tmp, "out")
        src.mkdir()
        dst.mkdir()
        for i, data in enumerate(jpegs):
            (src / f"{i:05d}.jpg").write_bytes(data)
        for k, (step, stream) in enumerate(pipeline(severity)):
            _run(stream, exe, tmp, step, None if ticks is None else functools.partial(ticks.at, k))
        outs = sorted(dst.glob("*.jpg"))
        if len(outs) != len(jpegs):
            raise RuntimeError(f"crf_compression: ffmpeg produced {len(outs)} frames for {len(jpegs)} inputs")
        result = [p.read_bytes() for p in outs]
    if ticks is not None:
        ticks.finish()
    return result


def crf_compression(frames: np.ndarray, severity: int, jpegs: Sequence[bytes] | None = None) -> np.ndarray:
    """crf on a decoded video.  The official input is the DAVIS JPEG files: pass their bytes as ``jpegs``
    when you have them; otherwise the frames are first encoded like ``cv2.imwrite`` (quality 95)."""
    frames = check_frames(frames)
    if jpegs is None:
        jpegs = [encode_image(f, "jpeg") for f in frames]
    elif len(jpegs) != len(frames):
        raise ValueError(f"crf_compression: {len(jpegs)} JPEG files for {len(frames)} frames")
    return np.stack([decode_image(b, f"crf frame {i:05d}") for i, b in enumerate(crf_jpegs(jpegs, severity))])
