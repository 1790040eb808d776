"""DAVIS-C: the corrupted DAVIS-2017 benchmark (reader, synthetic sample, corruptions, HDF5 store).

``davis_c.corrupt(frames, name, severity, seed=0)``, ``davis_c.CORRUPTIONS``, ``davis_c.STRENGTHS`` and
``davis_c.open(path)`` are imported lazily (the corruptions pull in numba/OpenCV).
"""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "corrupt", "CORRUPTIONS", "STRENGTHS"]  # not "open": a star import would shadow the builtin


def __getattr__(name: str) -> Any:
    if name in ("corrupt", "CORRUPTIONS", "STRENGTHS"):
        from davis_c import corruptions

        return getattr(corruptions, name)
    if name == "open":
        from davis_c.store import open_store

        return open_store
    raise AttributeError(f"module 'davis_c' has no attribute {name!r}")
