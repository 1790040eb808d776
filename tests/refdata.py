"""Where the test suite and the benchmarks find their reference data: one lookup for both.

Reference data are files this repository did not compute: the golden vectors produced by running the
official code (``tests/golden/<set>/``, each with its README and PROVENANCE note), four real DAVIS-2016
videos (``tests/data/real_davis16/``), the four official DAVIS-C style images
(``tests/data/davis_c_styles/``) and the specifications of the official systems that some tests
parse (``tests/data/spec/``).  A clone of the repository holds all of them, so the suite needs
nothing beside it.

Set ``DAVIS_C_SHARED`` to a folder laid out like the project's shared reference folder
(``golden/``, ``real_davis16/``, ``davis_c_styles/``, ``spec/``) to test against that copy instead, e.g. a newer
golden set; it then replaces the in-repository copies for every name (no mixing of two copies).

    from refdata import reference_path
    reference_path("golden/xmem/meta.json")      # tests/golden/xmem/meta.json
    reference_path("davis_c_styles") / "1.png"    # tests/data/davis_c_styles/1.png

Tests get the same paths from the ``golden`` and ``shared`` fixtures of ``tests/conftest.py``;
benchmarks put ``tests/`` on ``sys.path`` and import this module (it has no dependencies).
See ``docs/testing.md``.
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ENV_VAR", "REPO", "ReferenceData", "TOP_LEVEL", "reference_path", "shared_override"]

ENV_VAR = "DAVIS_C_SHARED"
REPO = Path(__file__).resolve().parents[1]
_TESTS = REPO / "tests"

#: top-level reference names and their copies inside the repository
TOP_LEVEL = {
    "golden": _TESTS / "golden",
    "real_davis16": _TESTS / "data" / "real_davis16",
    "davis_c_styles": _TESTS / "data" / "davis_c_styles",
    "spec": _TESTS / "data" / "spec",
}


def shared_override() -> Path | None:
    """The folder named by ``DAVIS_C_SHARED``, or None when it is unset or empty."""
    value = os.environ.get(ENV_VAR, "").strip()
    return Path(value).expanduser() if value else None


def reference_path(name: str | os.PathLike) -> Path:
    """Path of a reference item, e.g. ``"golden"``, ``"golden/stcn/inference.npz"``, ``"real_davis16"``.

    The first component must be one of ``TOP_LEVEL``.  The path is returned whether or not it exists
    (callers give the error, naming the path); with ``DAVIS_C_SHARED`` set it lies under that folder.
    """
    parts = Path(name).parts
    if not parts or parts[0] not in TOP_LEVEL:
        raise KeyError(f"unknown reference data {str(name)!r}: the first component must be one of {sorted(TOP_LEVEL)}")
    root = shared_override()
    if root is not None:
        return root.joinpath(*parts)
    return TOP_LEVEL[parts[0]].joinpath(*parts[1:])


class ReferenceData:
    """``ReferenceData() / "davis_c_styles" / "1.png"``: the ``/`` form of ``reference_path``."""

    def __truediv__(self, name: str | os.PathLike) -> Path:
        return reference_path(name)

    def __repr__(self) -> str:
        root = shared_override()
        return f"ReferenceData({ENV_VAR}={root})" if root else f"ReferenceData(in repository: {_TESTS})"
