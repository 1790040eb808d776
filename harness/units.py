"""Units of work: (method, variant, video, seed), their deterministic order and sharding.

Everything resumable follows from one rule: a unit is done when its result file exists.  The unit
list depends only on the command line and the data (never on what is already finished), so every
shard of a SLURM array computes the same list and takes a disjoint slice of it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from harness.results import mask_dir, unit_path, unit_status

__all__ = ["Unit", "make_units", "parse_shard", "shard_units", "pending_units"]


@dataclass(frozen=True, order=False)
class Unit:
    method: str
    variant: str
    video: str
    seed: int

    def path(self, out: str | os.PathLike) -> Path:
        return unit_path(out, self.method, self.variant, self.video, self.seed)

    def mask_dir(self, out: str | os.PathLike) -> Path:
        return mask_dir(out, self.method, self.variant, self.video, self.seed)

    def __str__(self) -> str:
        return f"{self.method} {self.variant} {self.video} seed{self.seed}"


def make_units(method: str, variants: Sequence[str], videos: Sequence[str], seeds: Sequence[int]) -> list[Unit]:
    """The full unit list in a fixed order: variant, then video, then seed."""
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds lists a seed twice: {list(seeds)}")
    return [Unit(method, v, vid, int(s)) for v in variants for vid in videos for s in seeds]


def parse_shard(text: str | None) -> tuple[int, int]:
    """``"i/N"`` with 0 <= i < N -> (i, N); None -> (0, 1)."""
    if text is None:
        return 0, 1
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard expects i/N (e.g. 0/4), got {text!r}") from None
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"--shard {text}: need 0 <= i < N")
    return i, n


def shard_units(units: Sequence[Unit], index: int, count: int) -> list[Unit]:
    """Round-robin slice ``index`` of ``count``: disjoint, covering, and balanced across variants."""
    return list(units[index::count])


def pending_units(units: Iterable[Unit], out: str | os.PathLike) -> tuple[list[Unit], int, int]:
    """Units still to run (missing or failed) and the counts of (ok, failed) ones found."""
    todo, ok, failed = [], 0, 0
    for unit in units:
        status = unit_status(unit.path(out))
        if status == "ok":
            ok += 1
            continue
        failed += status == "failed"
        todo.append(unit)
    return todo, ok, failed
