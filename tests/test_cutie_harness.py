"""Cutie through the real pipeline: davis_c.build -> harness.run (``cutie`` and ``cutie+mcc`` with
golden-init weights, ``--random-init``) -> leaderboard; and the method presets' report metadata."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from davis_c import build
from davis_c.sample import make_sample
from harness.methods import load_method
from harness.cli import main as run_main
from leaderboard.build import main as build_main

FAST = ("--random-init", "--set", "resolution=null", "--no-progress", "--seeds", "1")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny_c(tmp_path_factory) -> Path:
    """1 video x 4 frames x 48x80 and its DAVIS-C with one corruption at one strength."""
    tmp = tmp_path_factory.mktemp("cutie_e2e")
    root = make_sample(tmp / "DAVIS", videos=1, frames=4, height=48, width=80, seed=3)
    h5 = tmp / "tiny_c.h5"
    build.build(root, h5, corruptions=["gaussian_noise"], strengths=["high"], progress=False, log=lambda m: None)
    return h5


def test_cutie_and_cutie_mcc_random_init_reach_the_leaderboard(tiny_c, tmp_path):
    out = tmp_path / "results"
    assert run_main(["--method", "cutie", "--data", str(tiny_c), "--out", str(out), *FAST]) == 0
    assert run_main(["--method", "cutie+mcc", "--data", str(tiny_c), "--out", str(out), *FAST,
                     "--set", "ttt_params.iterations=1", "--set", "ttt_params.rounds=1",
                     "--set", "ttt_params.num_frames=3", "--set", "ttt_params.resolution=null"]) == 0
    for method in ("cutie", "cutie+mcc"):
        recs = [json.loads(p.read_text()) for p in (out / method).rglob("seed*.json")]
        assert {r["variant"] for r in recs} == {"clean", "high/gaussian_noise"}
        assert all(r["status"] == "ok" and r["random_init"] and 0 <= r["JF"] <= 1 for r in recs), recs
    run = json.loads((out / "cutie+mcc" / "run.json").read_text())
    assert run["config"]["ttt"] == "cutie_mcc" and run["config"]["ttt_resolved"]["num_frames"] == 3
    assert build_main(["--results", str(out), "--out", str(tmp_path / "lb")]) == 0
    lb = pd.read_csv(tmp_path / "lb" / "leaderboard.csv")
    assert set(lb["method"]) == {"cutie", "cutie+mcc"} and (lb["status"] == "ok").all()


def test_published_numbers_metadata():
    _, config = load_method("cutie")
    assert config["paper_name"] is None
    published = config["published"]
    assert {p["benchmark"] for p in published} == {"DAVIS-2017 val", "MOSE val"}
    for entry in published:
        assert set(entry) <= {"benchmark", "JF", "source", "note"} and 0 < entry["JF"] < 100 and "CVPR 2024" in entry["source"]
    assert next(p["JF"] for p in published if p["benchmark"] == "DAVIS-2017 val") == 87.9
    for method in ("cutie+mcc", "cutie+ent", "cutie+ae"):
        assert load_method(method)[1]["published"] == []   # a TTT variant is not the published model
