"""Test helper: a results tree's unit records in a form two runs can be compared by (shared by the SLURM,
cluster and scale tests)."""
from __future__ import annotations

import json
from pathlib import Path


def comparable_units(out: Path, method: str = "labelprop") -> dict:
    """Unit file -> its record without the timings and memory (which differ between runs); every unit ok."""
    res = {}
    for path in sorted((out / method).rglob("seed*.json")):
        rec = json.loads(path.read_text())
        assert rec["status"] == "ok", (path, rec.get("error"))
        rec.pop("timing"), rec.pop("peak_memory_mb")
        res[str(path.relative_to(out / method))] = rec
    return res
