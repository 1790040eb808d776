"""The ground floor: plumbing every package of the toolkit shares, and nothing about VOS.

Module map: ``cli`` (the one top-level handler every console script runs in: signals, I/O errors, program
names), ``atomic`` (the one atomic writer), ``locks`` (output locks), ``workers`` (worker processes that die
with their parent), ``progress`` (progress bars across processes), ``slurm`` (submitit job arrays),
``errors`` (the toolkit's input-error type), ``ffmpeg`` (the one ffmpeg locator: builder and overlay videos).

Layering (checked by ``tests/test_layers.py``): ``common`` imports no other package of the toolkit;
``davis_c`` and ``models`` build on it, ``harness`` on those, ``leaderboard`` on ``harness`` and ``common``.
"""
from __future__ import annotations

__all__: list[str] = []
