"""Which ffmpeg binary the toolkit runs: one locator for the builder (crf_compression) and the overlay videos.

``$DAVIS_C_FFMPEG`` if set, else ``ffmpeg`` on the PATH, else the static build shipped in the
``imageio-ffmpeg`` wheel (a dependency, so a plain ``pip install`` always has one).
"""
from __future__ import annotations

import functools
import os
import shutil

__all__ = ["FfmpegUnavailable", "find_ffmpeg"]


class FfmpegUnavailable(RuntimeError):
    """No usable ffmpeg binary (crf_compression cannot be built; the other corruptions can)."""


@functools.lru_cache(maxsize=None)
def find_ffmpeg() -> str:
    """Path of the ffmpeg binary to use (see module docstring); raises FfmpegUnavailable with a fix."""
    env = os.environ.get("DAVIS_C_FFMPEG")
    if env is not None:
        path = shutil.which(env) or (env if os.path.isfile(env) and os.access(env, os.X_OK) else None)
        if not path:
            raise FfmpegUnavailable(f"DAVIS_C_FFMPEG={env!r} is not an executable ffmpeg binary")
        return path
    path = shutil.which("ffmpeg")
    if path:
        return path
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as exc:  # not installed, or no binary for this platform
        raise FfmpegUnavailable(
            "ffmpeg not found: install ffmpeg (with libx264 and libx265) on the PATH, "
            f"or `pip install imageio-ffmpeg`, or set DAVIS_C_FFMPEG ({exc})") from exc
