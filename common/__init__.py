"""The ground floor: plumbing every package of the toolkit shares, and nothing about VOS.

Module map: ``cli`` (the one top-level handler every console script runs in: signals, I/O errors, program
names), ``atomic`` (the one atomic writer), ``locks`` (output locks), ``workers`` (worker processes that die
with their parent), ``progress`` (progress bars across processes), ``slurm`` (submitit job arrays),
``errors`` (the toolkit's input-error type), ``vocabulary`` (the benchmark's words: strengths, corruption
names and kinds, variant strings), ``presets`` (the one YAML preset loader, ``base:`` inheritance),
``checkpoint`` (safe, strict ``torch.load(weights_only=True)`` loading of weights), ``ffmpeg`` (the one ffmpeg locator: builder and
overlay videos).

Layering (``[tool.importlinter]`` in pyproject.toml, checked by ``tests/test_layers.py``; docs/architecture.md):
``common`` imports no other package of the toolkit; ``davis_c`` and ``models`` build on it and not on each
other, ``harness`` on those, ``leaderboard`` on ``harness`` and ``common``; no package has an import cycle.
"""
from __future__ import annotations

__all__: list[str] = []
