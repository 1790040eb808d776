"""Small things a new user trips on: console-script names in usage lines, a fast ``harness.run --help``,
``harness.evaluate --videos``, the DAVIS-2016 0/255 mask message."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from common import cli
from davis_c.datasets import Davis2017
from davis_c.davis import DavisError
from davis_c.masks import read_mask, write_mask


@pytest.mark.parametrize("argv0,expected", [
    ("/venv/bin/davis-c-build", "davis-c-build"),
    ("/repo/davis_c/build.py", "python -m davis_c.build"),
    ("", "python -m davis_c.build"),
    ("/usr/bin/pytest", "python -m davis_c.build"),
])
def test_prog_is_the_console_script_name_when_run_as_one(monkeypatch, argv0, expected):
    monkeypatch.setattr(sys, "argv", [argv0])
    assert cli.prog("davis_c.build", "davis-c-build") == expected


def _console_scripts() -> list[tuple[str, str]]:
    """(module, script) of every ``[project.scripts]`` entry of pyproject.toml."""
    text = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    section = text.split("[project.scripts]", 1)[1].split("\n[", 1)[0]
    pairs = [line.split("=", 1) for line in section.splitlines() if "=" in line]
    return [(target.strip().strip('"').split(":")[0], name.strip()) for name, target in pairs]


def test_every_python_m_tool_has_a_console_script():
    modules = {m for m, _ in _console_scripts()}
    assert len(modules) >= 12
    for pkg in ("davis_c", "harness", "leaderboard"):
        for path in (Path(__file__).resolve().parents[1] / pkg).glob("*.py"):
            if '__name__ == "__main__"' in path.read_text() and path.stem != "run":  # harness.run starts harness.cli
                assert f"{pkg}.{path.stem}" in modules, f"{pkg}.{path.stem} has no console script"


@pytest.mark.parametrize("module,script", _console_scripts())
def test_help_usage_line_names_the_console_script(module, script, monkeypatch, capsys):
    import importlib

    mod = importlib.import_module(module)
    monkeypatch.setattr(sys, "argv", [f"/venv/bin/{script}", "--help"])
    with pytest.raises(SystemExit):
        mod.main(["--help"])
    usage = capsys.readouterr().out.splitlines()[0]
    assert usage.startswith(f"usage: {script} "), usage


def test_harness_run_help_imports_neither_torch_nor_numba():
    code = ("import sys\nfrom harness.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print('HEAVY', sorted(m for m in ('torch', 'numba', 'cv2') if m in sys.modules))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "usage:" in res.stdout and "HEAVY []" in res.stdout, res.stdout + res.stderr


def _davis2016_style(root, tiny):
    """A copy of the tiny sample whose masks are DAVIS-2016's 0/255 (one object)."""
    import shutil

    shutil.copytree(tiny, root)
    for png in (root / "Annotations" / "480p").rglob("*.png"):
        write_mask(png, np.where(read_mask(png) > 0, 255, 0).astype(np.uint8))
    return root


def test_davis2016_masks_say_void_and_point_to_davis2016(tiny_davis_sample, tmp_path):
    root = _davis2016_style(tmp_path / "DAVIS", tiny_davis_sample)
    ds = Davis2017(root)
    with pytest.raises(DavisError) as err:
        ds.load(ds.videos[0])
    msg = str(err.value)
    assert "contains no object" in msg and "void label" in msg and "DAVIS-2016" in msg
    assert "--dataset davis2016" in msg and "00000.png" in msg


def test_evaluate_videos_option(tiny_davis_sample, tmp_path, capsys):
    import shutil

    from harness.evaluate import main

    results = tmp_path / "res"
    shutil.copytree(tiny_davis_sample / "Annotations" / "480p", results)  # a perfect method
    videos = Davis2017(tiny_davis_sample).videos
    out = tmp_path / "out"
    assert main(["--davis", str(tiny_davis_sample), "--results", str(results), "--videos", videos[1],
                 "--out", str(out), "--quiet"]) == 0
    per_video = (out / "davis_c_per-video_results-val.csv").read_text().splitlines()
    assert len(per_video) == 2 and per_video[1].startswith(videos[1])
    assert main(["--davis", str(tiny_davis_sample), "--results", str(results), "--videos", "nope*",
                 "--out", str(out), "--quiet"]) == 1
    assert "nope*" in capsys.readouterr().err


def test_a_sigterm_dropped_in_a_weakref_callback_prints_no_traceback():
    """Python cannot raise from a ``__del__`` or weakref callback (h5py has many); a SIGTERM landing there
    printed "Exception ignored in ... Traceback" before the one-line message (a CI flake of stop 34).
    Within the CLI's SIGTERM scope that drop is silent (the flag stops the run at the next safe point);
    any other dropped exception is still reported, and the hook is restored after the scope.  Run in a
    fresh interpreter: pytest replaces the hook with its own."""
    code = """
import gc, sys
from common import cli
class Dropper:
    def __init__(self, exc): self.exc = exc
    def __del__(self): raise self.exc
before = sys.unraisablehook
with cli.sigterm_as_interrupt():
    Dropper(cli.Terminated()); gc.collect()
    print("--", file=sys.stderr, flush=True)
    Dropper(ValueError("not ours")); gc.collect()
assert sys.unraisablehook is before
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    first, second = run.stderr.split("--\n")
    assert first == "" and "ValueError: not ours" in second
