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
