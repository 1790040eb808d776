"""``--official PATH``: time the official implementation, from the user's own checkout, in the same run.

Nothing is vendored or downloaded.  The user points a benchmark at a checkout of the official repository
(e.g. ``git clone https://github.com/facebookresearch/sam2``) and installs what that code imports (for
SAM 2: ``hydra-core iopath``; it runs without its CUDA extension).  The benchmark then runs the official
inference in a fresh child process with the checkout first on ``sys.path``, on the same weights (our
golden-init weights saved as an official checkpoint file), the same frames and the same thread count as
ours, checks that the two outputs agree, and prints the ratio.  Without ``--official`` a benchmark says
that its reference is our own stand-in.

This module holds what every model benchmark shares: the option, the checkout's identity (its git
commit, printed next to the ratio and recorded in ``docs/performance.md``), the child-process runner and
the agreement of two label-map sequences.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from torch.overrides import TorchFunctionMode

REPO = Path(__file__).resolve().parents[1]

__all__ = ["add_official_argument", "checkout", "commit_of", "child_env", "run_child", "agreement", "reference_line", "cuda_on_cpu",
           "add_json_argument", "record"]


def add_official_argument(parser: argparse.ArgumentParser, repo: str, marker: str) -> None:
    parser.add_argument("--official", type=Path, metavar="PATH", default=None,
                        help=f"a checkout of the official code (git clone https://github.com/{repo}); its "
                             f"inference is timed on the same weights, frames and threads in this run and its "
                             f"output compared with ours (checked: PATH/{marker} exists)")


def checkout(path: Path | None, marker: str, parser: argparse.ArgumentParser) -> Path | None:
    """The checkout, resolved, after checking that it looks like the official repository."""
    if path is None:
        return None
    path = Path(path).expanduser().resolve()
    if not (path / marker).is_file():
        parser.error(f"--official {path}: {marker} not found there; give the root of a checkout of the official code")
    return path


def commit_of(path: Path) -> str:
    """``<short sha> (<commit date>)`` of the checkout, plus ``+local changes`` when its tree is dirty;
    ``not a git checkout`` otherwise."""
    try:
        sha = subprocess.run(["git", "-C", str(path), "log", "-1", "--format=%h (%cd)", "--date=short"],
                             capture_output=True, text=True, check=True, timeout=30).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(path), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "not a git checkout"
    return sha + (" +local changes" if dirty else "")


def child_env(official: Path | None) -> dict[str, str]:
    """The environment of a child process: with ``official`` that checkout first on ``PYTHONPATH`` (then
    this repository, then whatever the user had there: e.g. where hydra is installed)."""
    env = dict(os.environ)
    if official is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(official), str(REPO)] + (
            [env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


def run_child(script: str, spec: dict, official: Path | None = None) -> dict:
    """Run ``script _child <spec>`` in a fresh interpreter (clean peak memory, its own thread setting);
    with ``official`` that checkout comes first on ``PYTHONPATH``.  Returns the JSON the child prints last."""
    out = subprocess.run([sys.executable, script, "_child", json.dumps(spec)], capture_output=True, text=True,
                         check=False, env=child_env(official))
    if out.returncode != 0:
        raise RuntimeError(f"benchmark child failed for {spec}:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def agreement(ours: np.ndarray, official: np.ndarray) -> dict:
    """How two (T, H, W) label-map sequences agree: the fraction of equal pixels, the number that differ
    and the frames where any differs."""
    ours, official = np.asarray(ours), np.asarray(official)
    if ours.shape != official.shape:
        raise ValueError(f"label maps of different shapes: ours {ours.shape}, official {official.shape}")
    diff = ours != official
    return {"equal_fraction": float(1.0 - diff.mean()), "pixels_differ": int(diff.sum()),
            "frames_differ": [int(t) for t in np.flatnonzero(diff.reshape(len(diff), -1).any(1))]}


def reference_line(official: Path | None, stand_in: str) -> str:
    """The line every benchmark prints to say what its reference is."""
    if official is None:
        return f"reference: OUR OWN STAND-IN ({stand_in}), not the official code; give --official PATH to time it"
    return f"reference: the OFFICIAL code at {official}, commit {commit_of(official)}, run in this process tree"


def _on_cpu(value):
    if isinstance(value, (str, torch.device)):
        try:
            if torch.device(value).type == "cuda":
                return torch.device("cpu")
        except (RuntimeError, ValueError):
            pass
    return value


class _CudaOnCpu(TorchFunctionMode):
    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is torch.Tensor.cuda:
            return args[0]
        return func(*(_on_cpu(a) for a in args), **{k: _on_cpu(v) for k, v in (kwargs or {}).items()})


def cuda_on_cpu() -> TorchFunctionMode:
    """Within the block, ``.cuda()`` keeps a tensor where it is and a ``cuda`` device argument means the
    CPU: for official code that hard-codes CUDA.  Every torch call inside pays a Python hop, so the
    benchmarks use it only around construction, never around the timed loop."""
    return _CudaOnCpu()


def add_json_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", type=Path, metavar="FILE", default=None,
                        help="append one JSON line per measured setting to FILE (benchmarks/bench_official.py "
                             "collects them into one table)")


def record(path: Path | None, **row) -> None:
    """Append one result row (model, threads, size, ours/reference seconds, ratio, agreement, reference
    and its commit) as a JSON line to ``path`` (nothing when ``path`` is None)."""
    if path is None:
        return
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(row, sort_keys=True) + "\n")
