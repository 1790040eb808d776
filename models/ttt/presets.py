"""TTT presets: YAML files named like the official configs (``stcn_mcc``, ``stcn_s01_ent`` ...).

A preset is a flat mapping of :func:`models.ttt.adapt` keyword arguments plus the metadata keys
``description``, ``model`` and ``checkpoint``.  Users copy a file and edit it; ``load_preset``
also accepts a path to such a copy.  Files are read by the toolkit's one YAML preset loader
(:mod:`common.presets`: ``base: <preset>`` inherits another preset of this folder).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from common import presets

__all__ = ["PRESET_DIR", "available_presets", "load_preset"]

PRESET_DIR = Path(__file__).with_name("presets")
_REQUIRED = ("kind", "rounds", "iterations", "lr")


def available_presets() -> list[str]:
    return presets.available(PRESET_DIR)


def load_preset(name: str | Path) -> dict[str, Any]:
    """Return the preset ``name`` (a bundled preset name or a path to a YAML file) as a dict."""
    data, files = presets.load_preset(name, PRESET_DIR, what="TTT preset", error=ValueError)
    path = files[-1]
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise ValueError(f"{path}: missing required keys {', '.join(missing)}")
    for key in ("lr", "weight_decay"):
        if key in data:
            data[key] = float(data[key])
    return data
