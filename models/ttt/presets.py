"""TTT presets: YAML files named like the official configs (``stcn_mcc``, ``stcn_s01_ent`` ...).

A preset is a flat mapping of :func:`models.ttt.adapt` keyword arguments plus the metadata keys
``description``, ``model`` and ``checkpoint``.  Users copy a file and edit it; ``load_preset``
also accepts a path to such a copy.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = ["PRESET_DIR", "available_presets", "load_preset"]

PRESET_DIR = Path(__file__).with_name("presets")
_REQUIRED = ("kind", "rounds", "iterations", "lr")


def available_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load_preset(name: str | Path) -> dict[str, Any]:
    """Return the preset ``name`` (a bundled preset name or a path to a YAML file) as a dict."""
    path = Path(name)
    if path.suffix not in (".yaml", ".yml"):
        path = PRESET_DIR / f"{name}.yaml"
        if not path.is_file():
            raise ValueError(f"unknown TTT preset {str(name)!r}; available: {', '.join(available_presets())}")
    elif not path.is_file():
        raise ValueError(f"TTT preset file not found: {path}")
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a TTT preset must be a mapping of adapt() arguments")
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise ValueError(f"{path}: missing required keys {', '.join(missing)}")
    for key in ("lr", "weight_decay"):
        if key in data:
            data[key] = float(data[key])
    return data
