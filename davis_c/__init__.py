"""DAVIS-C: the corrupted DAVIS-2017 benchmark (reader, synthetic sample, corruptions, HDF5 store).

``davis_c.corrupt(frames, name, severity, seed=0)``, ``davis_c.CORRUPTIONS``, ``davis_c.STRENGTHS`` and
``davis_c.open(path)`` are imported lazily (the corruptions pull in numba/OpenCV).

Module map: ``corruptions`` (the 14 corruptions: pure functions frames -> frames with an explicit seed, and
their registry), ``stylize`` (the neural styles' network, weights, converter), ``davis`` (the
``Video`` record every reader returns, frame decoding, name checks), ``datasets`` (the readers: DAVIS-2017,
DAVIS-2016, YouTube-VOS, MOSE, LVOS, SA-V behind one interface, ``VOSDataset``), ``masks`` (palette PNG masks),
``sample`` (synthetic datasets in each official layout), ``codec`` (JPEG/PNG bytes), ``store`` (the HDF5
store, verified on read), ``build`` (the builder and its CLI), ``export`` / ``show`` / ``verify`` (CLIs over
a store).  The plumbing every package shares (CLI handler, atomic writes, locks, workers, progress, SLURM,
errors) and the benchmark's vocabulary (strengths, corruption names, variant strings) live on the ground
floor, :mod:`common`; ``davis_c.STRENGTHS`` is :data:`common.vocabulary.STRENGTHS`.
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
