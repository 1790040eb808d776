"""Running at scale: worker-to-device assignment, SLURM job arrays through submitit (its in-process
and local executors run the real submission code path), and the GPU-hour estimate."""
from __future__ import annotations

import hashlib
import importlib.util
import multiprocessing as mp
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from unit_records import comparable_units

from davis_c import build as B
from common import slurm as S
from davis_c.sample import make_sample
from harness import devices as D
from harness import estimate as E
from harness.cli import main

FAST = ("--method", "labelprop", "--no-progress")  # weight-free, real model: cheap on a CPU
# submitit is the optional extra [slurm]; the tests that submit need it
needs_submitit = pytest.mark.skipif(importlib.util.find_spec("submitit") is None,
                                    reason="submitit not installed (pip install -e '.[slurm]')")


def _run(*argv) -> int:
    return main([*map(str, argv)])




@pytest.fixture(scope="module")
def small_c(tmp_path_factory) -> tuple[Path, Path]:
    """2 videos x 6 frames x 48x80 and its DAVIS-C with 1 corruption at 2 strengths (6 units a seed)."""
    tmp = tmp_path_factory.mktemp("scale")
    root = make_sample(tmp / "DAVIS", videos=2, frames=6, height=48, width=80, seed=3)
    h5 = tmp / "small_c.h5"
    B.build(root, h5, corruptions=["gaussian_noise"], strengths=["low", "high"], progress=False, log=lambda m: None)
    return root, h5


# ------------------------------------------------------------------------------------- devices
def test_parse_devices():
    assert D.parse_devices(None) is None and D.parse_devices(" ") is None
    assert D.parse_devices("0,1,3") == [0, 1, 3] and D.parse_devices("all") == "all"
    for bad in ("0,x", "-1", "1,1"):
        with pytest.raises(D.DeviceError):
            D.parse_devices(bad)


def test_devices_resolve_round_robin_and_threads():
    assert D.resolve_devices("cpu", None, 0) == ["cpu"]
    assert D.resolve_devices("cuda", None, 1) == ["cuda:0"]                  # one GPU: every worker on it
    assert D.resolve_devices("cuda", None, 4) == ["cuda:0", "cuda:1", "cuda:2", "cuda:3"]
    assert D.resolve_devices("cuda:2", None, 4) == ["cuda:2"]
    assert D.resolve_devices("cuda", [3, 1], 4) == ["cuda:3", "cuda:1"]
    assert D.resolve_devices("cuda", "all", 2) == ["cuda:0", "cuda:1"]
    slots = D.assign_workers(6, ["cuda:0", "cuda:1", "cuda:2", "cuda:3"], cores=16)
    assert [s.device for s in slots] == ["cuda:0", "cuda:1", "cuda:2", "cuda:3", "cuda:0", "cuda:1"]
    assert [s.index for s in slots] == list(range(6)) and {s.threads for s in slots} == {2}
    assert {s.threads for s in D.assign_workers(4, ["cpu"], cores=2)} == {1}  # never 0 threads
    assert D.describe_slots(D.assign_workers(4, ["cuda:0", "cuda:1"], cores=8)) == \
        "4 worker(s): cuda:0 x2, cuda:1 x2; 2 torch thread(s) each"
    # the command line, with a pretend GPU count
    assert [s.device for s in D.plan_workers(None, None, 3, cuda_count=2, cores=6)] == ["cuda:0", "cuda:1", "cuda:0"]
    assert [s.device for s in D.plan_workers(None, None, 2, cuda_count=0, cores=6)] == ["cpu", "cpu"]
    assert [s.device for s in D.plan_workers("cuda", "1", 2, cuda_count=2, cores=6)] == ["cuda:1", "cuda:1"]


@pytest.mark.parametrize("device, devices, count, match", [
    ("cpu", [0], 2, "selects GPUs"), ("cuda:1", [0], 2, "not both"), ("cuda", [0], 0, "no CUDA GPU"),
    ("cuda", [2], 2, "only 2 GPU"), ("cuda", None, 0, "no CUDA GPU")])
def test_device_errors(device, devices, count, match):
    with pytest.raises(D.DeviceError, match=match):
        D.resolve_devices(device, devices, count)


def test_worker_initializer_takes_successive_slots(monkeypatch):
    monkeypatch.setattr("torch.set_num_threads", lambda n: None)
    slots = D.assign_workers(3, ["cpu"], cores=6)
    counter = mp.get_context("spawn").Value("i", 0)
    seen = []
    for _ in range(4):
        D.init_assigned_worker(_Setup("cuda:9", None), slots, counter, init=seen.append)
    assert [s.device for s in seen] == ["cpu"] * 4 and [s.threads for s in seen] == [2] * 4
    assert counter.value == 4


@dataclass
class _Setup:  # the two RunSetup fields init_assigned_worker replaces
    device: str
    threads: int | None


def test_workers_on_cpu_match_a_plain_run(small_c, tmp_path):
    _, h5 = small_c
    common = (*FAST, "--data", h5, "--videos", "synth-000")
    assert _run(*common, "--out", tmp_path / "a") == 0
    assert _run(*common, "--out", tmp_path / "b", "--workers", 2, "--device", "cpu") == 0
    assert len(comparable_units(tmp_path / "a", "labelprop")) == 3
    assert comparable_units(tmp_path / "b", "labelprop") == comparable_units(tmp_path / "a", "labelprop")


# ------------------------------------------------------------------------------------- SLURM options
def test_parse_slurm_and_executor_parameters():
    opts = S.parse_slurm("partition=gpu,gpus_per_node=1,timeout_min=720,array_parallelism=64")
    assert opts == {"partition": "gpu", "gpus_per_node": 1, "timeout_min": 720, "array_parallelism": 64}
    cluster, params = S.executor_parameters(opts, "job")
    assert cluster == "slurm"
    assert params == {"name": "job", "slurm_partition": "gpu", "gpus_per_node": 1, "timeout_min": 720,
                      "slurm_array_parallelism": 64}
    # no timeout_min given: the stated default, not submitit's (5 min on SLURM, 2 min with cluster=local)
    assert S.executor_parameters(S.parse_slurm("cluster=debug,slurm_qos=low"), "j") == (
        "debug", {"name": "j", "timeout_min": S.DEFAULT_TIMEOUT_MIN, "slurm_qos": "low"})
    assert S.DEFAULT_TIMEOUT_MIN == 720
    for bad, match in (("partition", "key=value"), ("a=1,a=2", "twice"), ("cluster=pbs", "cluster")):
        with pytest.raises(S.SlurmError, match=match):
            S.parse_slurm(bad)


def test_strip_options_keeps_the_task_command():
    argv = ["--method", "stcn", "--slurm", "cluster=debug", "--tasks=3", "--slurm-wait", "--seeds", "1", "5"]
    assert S.strip_options(argv) == ["--method", "stcn", "--seeds", "1", "5"]
    with pytest.raises(S.SlurmError, match="in full"):
        S.check_full_names(["--method", "stcn", "--slu", "x"])


@needs_submitit
def test_unknown_submitit_parameter_and_missing_sbatch(tmp_path, monkeypatch):
    with pytest.raises(S.SlurmError, match="refused"):
        S.make_executor(tmp_path, S.parse_slurm("cluster=debug,bogus_key=1"), "j")
    monkeypatch.setattr(S.shutil, "which", lambda name: None)
    with pytest.raises(S.SlurmError, match="no sbatch"):
        S.make_executor(tmp_path, S.parse_slurm("partition=gpu"), "j")


# ------------------------------------------------------------------------------------- SLURM end to end
@pytest.mark.parametrize("cluster", ["debug", pytest.param("local", marks=pytest.mark.slow)])
@needs_submitit
def test_array_of_3_tasks_gives_the_plain_run(small_c, tmp_path, capsys, cluster):
    _, h5 = small_c
    common = (*FAST, "--data", h5)
    assert _run(*common, "--out", tmp_path / "plain") == 0
    ref = comparable_units(tmp_path / "plain", "labelprop")
    assert len(ref) == 6
    capsys.readouterr()
    arr = tmp_path / "array"
    assert _run(*common, "--out", arr, "--slurm", f"cluster={cluster},timeout_min=10", "--tasks", 3,
                "--slurm-wait") == 0
    captured = capsys.readouterr()
    assert "submitted 3 array task(s) (6 of 6 unit(s) to run)" in captured.err
    assert "high/gaussian_noise       2/2" in captured.out  # the summary of the whole run
    assert comparable_units(arr, "labelprop") == ref
    logs = list((arr / "labelprop" / "slurm").rglob("*_log.out"))
    assert len(logs) == 3
    # a resubmission finds nothing to do; a finished run is never resubmitted
    assert _run(*common, "--out", arr, "--slurm", f"cluster={cluster}", "--tasks", 3) == 0
    assert "nothing to submit" in capsys.readouterr().err


@needs_submitit
def test_array_resumes_after_a_lost_task(small_c, tmp_path, capsys):
    _, h5 = small_c
    out = tmp_path / "arr"
    args = (*FAST, "--data", h5, "--out", out, "--slurm", "cluster=debug", "--tasks", 2, "--slurm-wait")
    assert _run(*args) == 0
    lost = sorted((out / "labelprop").rglob("seed*.json"))[::2]  # a task's results vanished (node lost)
    stamps = {p: p.stat().st_mtime_ns for p in (out / "labelprop").rglob("seed*.json") if p not in lost}
    for p in lost:
        p.unlink()
    capsys.readouterr()
    assert _run(*args) == 0
    assert f"({len(lost)} of 6 unit(s) to run)" in capsys.readouterr().err
    assert all(p.is_file() for p in lost)
    assert stamps == {p: p.stat().st_mtime_ns for p in stamps}  # finished units were not rerun


def test_slurm_argument_errors(small_c, tmp_path, capsys):
    _, h5 = small_c
    common = (*FAST, "--data", h5, "--out", tmp_path)
    assert _run(*common, "--tasks", 3) == 2
    assert "go with --slurm" in capsys.readouterr().err
    assert _run(*common, "--slurm", "cluster=debug", "--shard", "0/2") == 2
    assert "do not mix" in capsys.readouterr().err
    assert not (tmp_path / "labelprop" / "slurm").exists()


def _hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.h5"))}


@needs_submitit
def test_build_as_an_array_is_byte_identical(tmp_path, capsys):
    from harness.data import open_source

    root = make_sample(tmp_path / "DAVIS", videos=2, frames=4, height=32, width=48, seed=1)
    kw = ["--corruptions", "gaussian_noise", "glass_blur", "--strengths", "low", "high", "--quiet"]
    assert B.main(["--root", str(root), "--out", str(tmp_path / "plain.h5"), *kw]) == 0
    assert B.main(["--root", str(root), "--out", str(tmp_path / "arr.h5"), *kw, "--slurm", "cluster=debug"]) == 0
    err = capsys.readouterr().err
    assert "submitted 5 build task(s) (clean, low/gaussian_noise" in err and "index written" in err
    ref = _hashes(tmp_path / "plain_shards")
    assert len(ref) == 5 and _hashes(tmp_path / "arr_shards") == ref
    assert len(list((tmp_path / "arr_shards" / "slurm").rglob("*_log.out"))) == 6  # 5 parts + the index
    with open_source(tmp_path / "arr.h5") as a, open_source(tmp_path / "plain.h5") as p:
        assert a.variants == p.variants and len(a.variants) == 5


def test_build_groups_and_parts(tmp_path):
    assert B.shard_groups(["glass_blur", "style1", "contrast"], ["high"]) == ["clean", "high/contrast",
                                                                             "high/glass_blur"]
    assert B.shard_groups(["style2"], ["low", "high"], styles=True) == ["clean", "styles/style2"]
    assert B.group_arguments("high/contrast") == {"steps": ("corrupted",), "corruptions": ["contrast"],
                                                  "strengths": ["high"]}
    assert B.group_arguments("index")["steps"] == ("clean", "index")
    for bad in ("high/style1", "styles/contrast", "huge/contrast", "everything"):
        with pytest.raises(B.BuildError, match="--group"):
            B.group_arguments(bad)
    # a part leaves another part's file being written alone, and writes no index
    root = make_sample(tmp_path / "DAVIS", videos=1, frames=3, height=32, width=48, seed=1)
    out = tmp_path / "c.h5"
    shards = tmp_path / "c_shards"
    shards.mkdir()
    other = shards / "low__contrast.h5.999999999.partial"  # another node's build in progress
    other.write_bytes(b"x")
    s = B.build(root, out, corruptions=["glass_blur"], strengths=["high"], steps=("corrupted",), progress=False,
                log=lambda m: None)
    assert s["built"] == ["high/glass_blur"] and other.exists() and not out.exists()
    assert not (shards / "clean.h5").exists()


# ------------------------------------------------------------------------------------- estimate
def test_figures_file_round_trip_and_projection(tmp_path):
    path = tmp_path / "figures.json"
    entry = {"device": "NVIDIA H100", "mode": "exact", "seconds_per_unit": 72.0,
             "video": {"height": 480, "width": 854, "frames": 70, "objects": 2},
             "units_per_hour": {"1": 50.0, "2": 80.0, "4": 100.0}}
    E.write_figures(path, "stcn+mcc", entry)
    E.write_figures(path, "stcn", {"device": "cpu", "seconds_per_unit": 3.0})
    data = E.read_figures(path)
    assert list(data["methods"]) == ["stcn", "stcn+mcc"] and data["methods"]["stcn+mcc"] == entry
    est = E.estimate_from_figures(data, "stcn+mcc", units=3870, done=70, pending=3800)
    assert est.gpu_hours == pytest.approx(3800 * 72 / 3600)          # 76.0
    assert est.per_workers == {1: 76.0, 2: 47.5, 4: 38.0}
    text = E.format_estimate(est, tasks=38)
    assert "76.0 GPU-hours with one unit at a time" in text and "38.0 GPU-hours with 4 worker(s)" in text
    assert "about 1.00 hours wall-clock" in text
    assert "CPU" in " ".join(E.estimate_from_figures(data, "stcn", 1, 0, 1).notes)
    with pytest.raises(E.EstimateError, match="no figures for method 'xmem'"):
        E.estimate_from_figures(data, "xmem", 1, 0, 1)
    path.write_text('{"methods": {}}')
    with pytest.raises(E.EstimateError, match="not a figures file"):
        E.read_figures(path)


def test_estimate_from_finished_units_uses_each_videos_cost():
    recs = [{"status": "ok", "video": "a", "timing": {"ttt_s": 50.0, "inference_s": 10.0}},
            {"status": "ok", "video": "a", "timing": {"ttt_s": 70.0, "inference_s": 10.0}},
            {"status": "ok", "video": "b", "timing": {"ttt_s": None, "inference_s": 20.0}},
            {"status": "failed", "video": "b", "timing": None}]
    est = E.estimate_from_units(recs, ["a", "b", "c"], "m", units=6, done=3, device="cuda")
    mean = (60 + 80 + 20) / 3
    assert est.gpu_hours == pytest.approx((70 + 20 + mean) / 3600)
    assert est.notes == [f"1 pending video(s) have no finished unit yet: counted at the mean, {mean:.1f} s/unit"]
    with pytest.raises(E.EstimateError, match="no finished units"):
        E.estimate_from_units(recs[3:], ["a"], "m", 1, 0)


def test_estimate_cli(small_c, tmp_path, capsys):
    _, h5 = small_c
    common = (*FAST, "--data", h5, "--out", tmp_path, "--seeds", 1, 5)
    assert _run(*common, "--estimate") == 2
    assert "no finished units" in capsys.readouterr().err
    assert _run(*FAST, "--data", h5, "--out", tmp_path, "--variants", "clean") == 0  # 2 finished units
    capsys.readouterr()
    assert _run(*common, "--estimate", "--tasks", 4) == 0
    text = capsys.readouterr().out
    assert "labelprop: 12 unit(s) planned, 2 done, 10 to run" in text and "2 finished unit(s)" in text
    figures = tmp_path / "f.json"
    E.write_figures(figures, "labelprop", {"device": "NVIDIA A100", "seconds_per_unit": 30.0,
                                           "units_per_hour": {"1": 100, "2": 200}})
    assert _run(*common, "--estimate", "--figures", figures) == 0
    text = capsys.readouterr().out
    assert "projected: 5.0 GPU-minutes with one unit at a time" in text   # 10 x 30 s
    assert "0.10 GPU-hours with 1 worker(s)" in text and "3.0 GPU-minutes with 2 worker(s)" in text
    assert not (tmp_path / "labelprop" / "seed1.json").exists()


# ------------------------------------------------------------------------------------- benchmark helpers
def test_benchmark_device_helpers():
    import sys

    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import _device

    frames, gt = _device.synthetic_davis_video(frames=5, height=48, width=80, objects=3)
    assert frames.shape == (5, 48, 80, 3) and frames.dtype == np.uint8 and gt.shape == (5, 48, 80)
    assert all(set(np.unique(g)) == {0, 1, 2, 3} for g in gt)            # every object visible in every frame
    assert not np.array_equal(gt[0], gt[-1])                            # they move
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.benchmark,
              torch.get_float32_matmul_precision())
    with _device.precision("cpu", amp=True):
        assert torch.is_autocast_enabled("cpu") and torch.backends.cudnn.benchmark
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    with _device.precision("cpu", amp=False):
        assert not torch.is_autocast_enabled("cpu") and not torch.backends.cuda.matmul.allow_tf32
        assert torch.get_float32_matmul_precision() == "highest"
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.benchmark,
            torch.get_float32_matmul_precision()) == before
    assert _device.UnitSpec("xmem", "mcc").method == "xmem+mcc" and _device.UnitSpec("stcn", None).method == "stcn"


def test_run_json_names_the_tasks_device(tmp_path):
    from harness.results import read_run_json, write_json_atomic
    from harness.slurm import _record_task_device

    write_json_atomic(tmp_path / "m" / "run.json", {"device": "cpu", "seeds": [1]})
    _record_task_device(tmp_path, "m", "cpu", None)          # no GPU asked for: the record stays
    assert read_run_json(tmp_path, "m")["device"] == "cpu"
    _record_task_device(tmp_path, "m", "cpu", "cuda")        # gpus_per_node=1 / --device cuda
    assert read_run_json(tmp_path, "m") == {"device": "cuda", "seeds": [1]}
    write_json_atomic(tmp_path / "m" / "run.json", {"device": "cuda:1"})
    _record_task_device(tmp_path, "m", "cpu", "cuda")        # an earlier run's record is not rewritten
    assert read_run_json(tmp_path, "m")["device"] == "cuda:1"
