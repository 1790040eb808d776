"""e-OSVOS through the real pipeline: davis_c.build -> harness.run (``eosvos-0`` and ``eosvos-10`` with the
goldens' initialisation, ``--random-init``, at a small network input size) -> leaderboard, where eosvos-10's
fine-tuning gain is paired with eosvos-0 and its fine-tuning cost is in the unit records."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from davis_c import build
from davis_c.sample import make_sample
from harness.cli import main as run_main
from leaderboard.build import main as build_main

# small network input (64 / 107 instead of 800 / 1333) and one step of batch 1: a pipeline test, not the method
FAST = ("--random-init", "--set", "resolution=null", "--no-progress", "--seeds", "1", "--set", "load.min_size=64",
        "--set", "load.max_size=107", "--set", "segment.batch_size=1", "--set", "segment.augment=false")

pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.slow]


@pytest.fixture(scope="module")
def tiny_c(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("eosvos_e2e")
    root = make_sample(tmp / "DAVIS", videos=1, frames=3, height=48, width=80, seed=3)
    h5 = tmp / "tiny_c.h5"
    build.build(root, h5, corruptions=["gaussian_noise"], strengths=["high"], progress=False, log=lambda m: None)
    return h5


def test_eosvos_random_init_reaches_the_leaderboard(tiny_c, tmp_path):
    out = tmp_path / "results"
    assert run_main(["--method", "eosvos-0", "--data", str(tiny_c), "--out", str(out), *FAST]) == 0
    assert run_main(["--method", "eosvos-10", "--data", str(tiny_c), "--out", str(out), *FAST,
                     "--set", "segment.num_epochs=1"]) == 0
    for method in ("eosvos-0", "eosvos-10"):
        recs = [json.loads(p.read_text()) for p in (out / method).rglob("seed*.json")]
        assert {r["variant"] for r in recs} == {"clean", "high/gaussian_noise"}
        assert all(r["status"] == "ok" and r["random_init"] and 0 <= r["JF"] <= 1 for r in recs), recs
        for r in recs:
            per_object = r["timing"]["ttt_s_per_object"]
            assert (per_object > 0) == (method == "eosvos-10")
            assert r["timing"]["ttt_s"] == pytest.approx(per_object * len(r["objects"]))
    assert build_main(["--results", str(out), "--out", str(tmp_path / "lb")]) == 0
    lb = pd.read_csv(tmp_path / "lb" / "leaderboard.csv")
    assert set(lb["method"]) == {"eosvos-0", "eosvos-10"}
    gain = pd.read_csv(tmp_path / "lb" / "ttt_gain.csv")
    assert set(gain["method"]) == {"eosvos-10"}
