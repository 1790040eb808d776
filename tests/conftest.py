"""Shared fixtures: where the golden vectors live, and a small synthetic DAVIS sample."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("DAVIS_C_SHARED", REPO.parent / "shared"))
GOLDEN = SHARED / "golden"


@pytest.fixture(scope="session")
def golden() -> Path:
    if not GOLDEN.is_dir():
        pytest.fail(f"golden vectors not found at {GOLDEN} (set DAVIS_C_SHARED to the shared/ folder)")
    return GOLDEN


@pytest.fixture(scope="session")
def shared() -> Path:
    return SHARED


@pytest.fixture(scope="session")
def davis_sample(tmp_path_factory) -> Path:
    """Root of a default synthetic DAVIS sample (3 videos x 12 frames x 240x432, seed 0), built once."""
    from davis_c.sample import make_sample

    return make_sample(tmp_path_factory.mktemp("davis_sample") / "DAVIS")


@pytest.fixture(scope="session")
def tiny_davis_sample(tmp_path_factory) -> Path:
    """Root of a tiny synthetic DAVIS sample (2 videos x 8 frames x 64x112, seed 0) for model/harness tests."""
    from davis_c.sample import make_sample

    return make_sample(tmp_path_factory.mktemp("tiny_davis_sample") / "DAVIS", videos=2, frames=8,
                       height=64, width=112, seed=0)
