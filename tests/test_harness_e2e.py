"""End to end with the real pieces on a small synthetic DAVIS-C: davis_c.build -> harness.run (STCN and
STCN + tt-MCC with golden-init weights) -> harness.evaluate, including a killed-and-resumed run and a
sharded run that must reproduce the plain run exactly.

Frames stay at the sample's size (``--set resolution=null``) to keep the CPU time small.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from davis_c import build
from davis_c.sample import make_sample
from harness.evaluate import main as evaluate_main
from harness.results import masks_for_evaluation
from harness.cli import main

REPO = Path(__file__).resolve().parents[1]
FAST = ("--random-init", "--set", "resolution=null", "--no-progress")
CORRUPTIONS = ("gaussian_noise", "glass_blur")


@pytest.fixture(scope="module")
def small_c(tmp_path_factory) -> tuple[Path, Path]:
    """2 videos x 6 frames x 48x80 and its DAVIS-C with 2 corruptions x 1 strength."""
    tmp = tmp_path_factory.mktemp("harness_e2e")
    root = make_sample(tmp / "DAVIS", videos=2, frames=6, height=48, width=80, seed=3)
    h5 = tmp / "small_c.h5"
    build.build(root, h5, corruptions=list(CORRUPTIONS), strengths=["high"], progress=False, log=lambda m: None)
    return root, h5


def _scores(out: Path, method: str) -> dict:
    res = {}
    for path in sorted((out / method).rglob("seed*.json")):
        rec = json.loads(path.read_text())
        assert rec["status"] == "ok", (path, rec["error"])
        res[str(path.relative_to(out))] = (rec["J"], rec["F"], rec["JF"], rec["per_frame"], rec["objects"])
    return res


def _run(*argv) -> int:
    return main([*map(str, argv)])


def test_stcn_sharded_killed_resumed_and_rescored(small_c, tmp_path, capsys):
    root, h5 = small_c
    base = ("--method", "stcn", "--data", h5, *FAST)
    # reference: one plain run, masks saved
    assert _run(*base, "--out", tmp_path / "plain", "--save-masks") == 0
    ref = _scores(tmp_path / "plain", "stcn")
    assert len(ref) == 6
    assert {k.rsplit("/", 2)[0] for k in ref} == {"stcn/clean", "stcn/high/gaussian_noise", "stcn/high/glass_blur"}
    table = capsys.readouterr().out
    assert "high/glass_blur" in table and "NOT A REAL MODEL" in table
    # shards 0/2 + 1/2 into one folder == the plain run
    for shard in ("1/2", "0/2"):
        assert _run(*base, "--out", tmp_path / "sharded", "--shard", shard) == 0
    assert _scores(tmp_path / "sharded", "stcn") == ref

    # killed midway (SIGKILL as soon as the first unit is written), then resumed by the same command
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "harness.run", *map(str, base), "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while not list(out.rglob("seed*.json")) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate()
    assert proc.returncode == -signal.SIGKILL, f"run ended before it could be killed: {err.decode()[-2000:]}"
    done = list(out.rglob("seed*.json"))
    assert 1 <= len(done) < 6
    for path in done:  # whatever exists is complete
        assert json.loads(path.read_text())["status"] == "ok"
    capsys.readouterr()
    assert _run(*base, "--out", out) == 0
    assert f"{6 - len(done)} to run" in capsys.readouterr().err
    assert not [p for p in out.rglob("*") if ".tmp-" in p.name]
    assert _scores(out, "stcn") == ref

    # saved masks re-score identically with the evaluator (per-frame CSV at full precision)
    for variant in ("clean", "high/glass_blur"):
        view = masks_for_evaluation(tmp_path / "plain", "stcn", variant, 1, tmp_path / "eval" / variant)
        csv = tmp_path / "eval" / f"{variant.replace('/', '_')}.csv"
        assert evaluate_main(["--davis", str(root), "--results", str(view), "--out", str(tmp_path / "eval"),
                              "--per-frame", str(csv), "--quiet"]) == 0
        rows = [line.split(",") for line in csv.read_text().splitlines()[1:]]
        for video in ("synth-000", "synth-001"):
            rec = json.loads((tmp_path / "plain" / "stcn" / variant / video / "seed1.json").read_text())
            for oi, obj in enumerate(rec["objects"]):
                got = [(r[2], float(r[3]), float(r[4])) for r in rows if r[0] == video and int(r[1]) == obj["id"]]
                want = list(zip(rec["per_frame"]["frames"], rec["per_frame"]["J"][oi], rec["per_frame"]["F"][oi]))
                assert got == want


def test_stcn_mcc_random_init_is_seeded_end_to_end(small_c, tmp_path):
    _, h5 = small_c
    args = ("--method", "stcn+mcc", "--data", h5, *FAST, "--videos", "synth-001", "--variants", "high/glass_blur",
            "--set", "ttt_params.iterations=1", "--set", "ttt_params.rounds=1")
    assert _run(*args, "--out", tmp_path / "a", "--seeds", 5) == 0
    assert _run(*args, "--out", tmp_path / "b", "--seeds", 5) == 0
    rec = json.loads((tmp_path / "a" / "stcn+mcc" / "high" / "glass_blur" / "synth-001" / "seed5.json").read_text())
    assert rec["status"] == "ok" and rec["random_init"] is True and rec["timing"]["ttt_s"] > 0
    run = json.loads((tmp_path / "a" / "stcn+mcc" / "run.json").read_text())
    assert run["config"]["ttt"] == "stcn_mcc" and run["config"]["ttt_resolved"]["iterations"] == 1
    assert _scores(tmp_path / "a", "stcn+mcc") == _scores(tmp_path / "b", "stcn+mcc")
