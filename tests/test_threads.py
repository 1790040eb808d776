"""The thread policy (common.threads) and harness.run --threads: the count follows the stated rule, is
applied to torch, numba and OpenCV, is recorded, and never changes a number."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from common import threads as T
from davis_c import build as B
from davis_c.sample import make_sample
from harness.cli import main


def test_the_rule():
    env = {}
    assert T.choose_threads(3, workers=4, environ=env, cores=16) == T.ThreadChoice(3, "--threads")
    assert T.choose_threads(None, workers=4, environ={"OMP_NUM_THREADS": "2"}, cores=16).threads == 2
    assert T.choose_threads(None, workers=4, environ=env, cores=16).threads == 4
    assert T.choose_threads(None, workers=3, environ=env, cores=2).threads == 1        # never 0
    assert T.choose_threads(None, workers=1, environ={"OMP_NUM_THREADS": "x"}, cores=6).threads == 6  # not a count
    with pytest.raises(ValueError, match="at least 1"):
        T.choose_threads(0)


def test_usable_cores_honour_slurm(monkeypatch):
    import os

    mask = len(os.sched_getaffinity(0))
    assert T.usable_cores({}) == mask
    # SLURM's allocation caps the mask (under TaskPlugin=task/none the mask is the whole node)
    assert T.usable_cores({"SLURM_CPUS_PER_TASK": "1"}) == 1
    assert T.usable_cores({"SLURM_CPUS_PER_TASK": str(mask + 8)}) == mask
    choice = T.choose_threads(None, workers=1, environ={"SLURM_CPUS_PER_TASK": "1"})
    assert choice.threads == 1 and "SLURM_CPUS_PER_TASK" in choice.source


def test_apply_sets_torch_numba_and_opencv():
    import cv2
    import numba
    import torch

    before = torch.get_num_threads(), numba.get_num_threads(), cv2.getNumThreads()
    try:
        assert T.apply_threads(2) == 2
        assert torch.get_num_threads() == 2 and cv2.getNumThreads() == 2
        assert numba.get_num_threads() == min(2, numba.config.NUMBA_NUM_THREADS)
        T.apply_threads(1)
        assert torch.get_num_threads() == 1 and cv2.getNumThreads() == 1 and numba.get_num_threads() == 1
    finally:
        torch.set_num_threads(before[0])
        numba.set_num_threads(before[1])
        cv2.setNumThreads(before[2])


def test_help_states_the_rule(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--threads N" in text and "OMP_NUM_THREADS" in text and "SLURM_CPUS_PER_TASK" in text
    assert "../shared" not in text and "tests/data/real_davis16" in text


# ------------------------------------------------------------------------------------- harness.run --threads
@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("threads")
    root = make_sample(tmp / "DAVIS", videos=2, frames=5, height=40, width=64, seed=6)
    h5 = tmp / "c.h5"
    B.build(root, h5, corruptions=["gaussian_noise"], strengths=["high"], progress=False, log=lambda m: None)
    return h5


def _units(out: Path, method: str) -> tuple[dict, set]:
    res, threads = {}, set()
    for path in sorted((out / method).rglob("seed*.json")):
        rec = json.loads(path.read_text())
        assert rec["status"] == "ok", rec.get("error")
        threads.add(rec.pop("timing")["threads"])
        rec.pop("peak_memory_mb")
        res[str(path.relative_to(out / method))] = rec
    return res, threads


@pytest.mark.parametrize("method", ["labelprop", pytest.param("stcn", marks=[pytest.mark.slow, pytest.mark.xfail(
    strict=True, reason="measured: STCN --random-init scores differ between 1 and 2 torch threads on CPU (torch's "
                        "reductions split by thread); open problem, so the thread count is recorded per unit")])])
def test_threads_change_no_number(tiny, tmp_path, method, monkeypatch):
    import torch

    before = torch.get_num_threads()
    args = ["--method", method, "--data", str(tiny), "--no-progress", "--videos", "synth-000"]
    if method == "stcn":
        args += ["--random-init"]
    try:
        assert main([*args, "--out", str(tmp_path / "t1"), "--threads", "1"]) == 0
        assert main([*args, "--out", str(tmp_path / "t2"), "--threads", "2"]) == 0
    finally:
        torch.set_num_threads(before)
    one, used1 = _units(tmp_path / "t1", method)
    two, used2 = _units(tmp_path / "t2", method)
    assert len(one) == 2 and one == two                       # identical scores, per frame included
    assert used1 == {1} and used2 == {2}                      # what each unit ran with
    for out, n in (("t1", 1), ("t2", 2)):
        assert json.loads((tmp_path / out / method / "run.json").read_text())["threads"] == n


def test_default_threads_without_omp(tiny, tmp_path, monkeypatch):
    import torch

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    before = torch.get_num_threads()
    try:
        assert main(["--method", "labelprop", "--data", str(tiny), "--no-progress", "--videos", "synth-000",
                     "--variants", "clean", "--out", str(tmp_path)]) == 0
    finally:
        torch.set_num_threads(before)
    assert json.loads((tmp_path / "labelprop" / "run.json").read_text())["threads"] == T.usable_cores()


# ------------------------------------------------------------------------------------- validate first
def test_arguments_are_checked_before_the_default_sample_is_built(tmp_path, monkeypatch, capsys):
    """--videos nothing with no data here: refused at once, no sample build (about a minute)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DAVIS_C_CACHE", str(tmp_path / "cache"))

    def no_build(*a, **k):
        raise AssertionError("the default sample was built before the arguments were checked")

    monkeypatch.setattr(B, "build", no_build)
    assert main(["--method", "labelprop", "--videos", "nothing"]) == 2
    err = capsys.readouterr().err
    assert "video 'nothing' is not in davis_c_sample.h5 (the default sample, not built yet)" in err
    assert main(["--method", "labelprop", "--variants", "huge/*"]) == 2
    assert "variant 'huge/*' is not in davis_c_sample.h5" in capsys.readouterr().err
    assert main(["--method", "nomethod", "--videos", "nothing"]) == 2
    assert main(["--method", "labelprop", "--set", "nonsense_option=1", "--videos", "synth-000"]) == 2
    assert not (tmp_path / "davis_c_sample.h5").exists()
