"""The SAM 2 configurations as data: one YAML file per official config in ``models/sam2/configs``
(no hydra, no ``sam2`` package).  Only the values that differ between configs are stored; the
rest of the official VOS settings are fixed in the code (spec/sam2.md 4, 7).  Files are read by the
toolkit's one YAML preset loader (:mod:`common.presets`)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from common import presets

__all__ = ["CONFIG_DIR", "available_configs", "load_config", "MODEL_NAMES"]

CONFIG_DIR = Path(__file__).with_name("configs")

#: toolkit model name -> config file stem (the official config names)
MODEL_NAMES: dict[str, str] = {
    "sam2.1_hiera_t": "sam2.1_hiera_t", "sam2.1_hiera_s": "sam2.1_hiera_s",
    "sam2.1_hiera_b+": "sam2.1_hiera_b+", "sam2.1_hiera_l": "sam2.1_hiera_l",
    "sam2_hiera_t": "sam2_hiera_t", "sam2_hiera_s": "sam2_hiera_s",
    "sam2_hiera_b+": "sam2_hiera_b+", "sam2_hiera_l": "sam2_hiera_l",
}


def available_configs() -> list[str]:
    return presets.available(CONFIG_DIR)


def load_config(name: str | Path) -> dict[str, Any]:
    """A bundled config by name (``sam2.1_hiera_t`` ...) or a YAML file of the same layout."""
    if Path(name).suffix not in (".yaml", ".yml"):
        name = MODEL_NAMES.get(str(name), str(name))
    data, files = presets.load_preset(name, CONFIG_DIR, what="SAM 2 config", error=ValueError)
    path = files[-1]
    missing = [k for k in ("version", "trunk", "neck") if k not in data]
    if missing:
        raise ValueError(f"{path}: SAM 2 config lacks {', '.join(missing)}")
    data["version"] = str(data["version"])
    return data
