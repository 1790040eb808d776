"""Shared fixtures: where the reference data live (goldens, real videos, style images), and small
synthetic DAVIS samples.  The lookup itself is ``tests/refdata.py`` (also used by the benchmarks)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # refdata, whatever pytest's import mode
from refdata import ENV_VAR, ReferenceData, reference_path  # noqa: E402


@pytest.fixture(scope="session")
def golden() -> Path:
    """``tests/golden`` (or ``$DAVIS_C_SHARED/golden``): one folder per golden set, each with its README."""
    path = reference_path("golden")
    if not path.is_dir():
        pytest.fail(f"golden vectors not found at {path} (unset {ENV_VAR} to use the copy in tests/golden, "
                    f"or point it at a folder holding golden/)")
    return path


@pytest.fixture(scope="session")
def shared() -> ReferenceData:
    """``shared / "real_davis16"``, ``shared / "davis_c_styles" / "1.png"``: reference data by name
    (in the repository, or under ``$DAVIS_C_SHARED``)."""
    return ReferenceData()


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


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a test module (``pytestmark = pytest.mark.usefixtures("one_torch_thread")``):
    as the Cutie goldens were made; on a loaded shared CPU this is also many times faster for small tensors,
    which otherwise wait for a second thread on every op."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
