"""benchmarks/_official.py: what every ``--official PATH`` comparison shares -- the checkout check, its
commit, the label-map agreement, the CUDA-only redirect, and the line that says which reference a
benchmark used.  (The official code itself is not shipped; docs/performance.md has the figures measured
with it.)"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import _official as O  # noqa: E402


def test_agreement_counts_pixels_and_names_frames():
    a = np.zeros((3, 4, 5), np.uint8)
    b = a.copy()
    b[2, 1, 1] = 2
    b[2, 3, 4] = 1
    r = O.agreement(a, b)
    assert r["pixels_differ"] == 2 and r["frames_differ"] == [2]
    assert r["equal_fraction"] == pytest.approx(1 - 2 / a.size)
    with pytest.raises(ValueError, match="different shapes"):
        O.agreement(a, b[:2])


def test_checkout_must_look_like_the_official_repository(tmp_path):
    parser = argparse.ArgumentParser(prog="bench")
    assert O.checkout(None, "sam2/build_sam.py", parser) is None
    with pytest.raises(SystemExit):
        O.checkout(tmp_path, "sam2/build_sam.py", parser)
    (tmp_path / "sam2").mkdir()
    (tmp_path / "sam2" / "build_sam.py").write_text("")
    assert O.checkout(tmp_path, "sam2/build_sam.py", parser) == tmp_path.resolve()


def test_commit_of_a_checkout_and_of_a_plain_folder(tmp_path):
    assert O.commit_of(tmp_path) == "not a git checkout"
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "a.py").write_text("x = 1\n")
    subprocess.run(git + ["add", "a.py"], check=True)
    subprocess.run(git + ["commit", "-qm", "c"], check=True)
    sha = subprocess.run(git + ["rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert O.commit_of(tmp_path).startswith(sha + " (") and "local changes" not in O.commit_of(tmp_path)
    (tmp_path / "a.py").write_text("x = 2\n")
    assert O.commit_of(tmp_path).endswith("+local changes")


def test_reference_line_says_which_reference():
    assert "OUR OWN STAND-IN" in O.reference_line(None, "plain attention")
    line = O.reference_line(Path("/nowhere"), "plain attention")
    assert "OFFICIAL" in line and "not a git checkout" in line


def test_cuda_on_cpu_keeps_hard_coded_cuda_on_the_cpu():
    with O.cuda_on_cpu():
        tensors = [torch.zeros(2, device="cuda"), torch.ones(2).cuda(), torch.ones(2).to("cuda"),
                   torch.ones(2).to(torch.device("cuda:0"), non_blocking=True),
                   next(torch.nn.Linear(2, 2).cuda().parameters())]
    assert all(t.device.type == "cpu" for t in tensors)
    assert torch.ones(2).to("cpu").device.type == "cpu"  # outside the block nothing is redirected


def test_child_env_puts_the_checkout_first(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    env = O.child_env(tmp_path)["PYTHONPATH"].split(":")
    assert env[0] == str(tmp_path) and env[-1] == "/elsewhere"
    assert O.child_env(None)["PYTHONPATH"] == "/elsewhere"


@pytest.mark.parametrize("script,args", [("bench_sam2.py", []), ("bench_cutie.py", []), ("bench_stcn.py", []), ("bench_official.py", []),
                                         ("bench_xmem.py", ["speed"])])
def test_every_model_benchmark_takes_official(script, args):
    bench = Path(__file__).resolve().parents[1] / "benchmarks" / script
    out = subprocess.run([sys.executable, str(bench), *args, "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "--official" in out.stdout


def test_bench_official_table_and_its_refusal_without_checkouts():
    import bench_official

    rows = [{"model": "stcn", "threads": 1, "size": "480x864", "ours_s": 2.0, "reference_s": 2.2, "ratio": 1.1,
             "ours_mb": 900.0, "reference_mb": 1100.0, "equal_fraction": 1.0, "pixels_differ": 0,
             "commit": "eb83102 (2024-03-15)"},
            {"model": "xmem", "threads": 2, "size": "480x864", "ours_s": 1.0, "reference_s": 0.9, "ratio": 0.9,
             "equal_fraction": 0.99995, "pixels_differ": 3, "commit": None}]
    text = bench_official.table(rows).splitlines()
    assert text[2] == ("| stcn | 1 | 480x864 | 2.000 | 2.200 | 1.10 | 900 | 1100 | 100.0000 % (0 px differ) | "
                       "eb83102 (2024-03-15) |")
    assert text[3].startswith("| xmem | 2 | 480x864 | 1.000 | 0.900 | 0.90 | - | - | 99.9950 % (3 px differ) | - |")
    with pytest.raises(SystemExit):
        bench_official.main([])
