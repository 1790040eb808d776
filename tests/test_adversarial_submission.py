"""Adversarial cases for ``harness.submission`` (issue 25 §4, §5): the planned videos, clean failures."""
from __future__ import annotations

import errno
import os

import numpy as np
import pytest

from harness.results import write_run_json
from harness.submission import SubmissionError, main, write_submission
from harness.units import Unit, UnitIdentity, new_record, write_unit


def _server_unit(out, video: str, frames: int = 2) -> None:
    from davis_c.masks import write_mask

    unit = Unit("m", "clean", video, 1)
    rec = new_record(unit, scoring="server", dataset="youtube-vos", split="valid", submission_frames=frames)
    write_unit(out, unit, rec, UnitIdentity(data={"kind": "test", "video": video}))
    for t in range(frames):
        write_mask(unit.mask_dir(out) / f"{t:05d}.png", np.zeros((4, 4), np.uint8))


def _plan(out, videos):
    write_run_json(out, "m", {"method": "m", "config": {"model": "x"}, "random_init": False,
                              "checkpoint_sha256": None, "seeds": [1], "variants": ["clean"], "videos": videos})


def test_a_planned_video_without_result_fails_naming_it(tmp_path):
    _plan(tmp_path, ["v1", "v2", "v3"])
    _server_unit(tmp_path, "v1")
    _server_unit(tmp_path, "v3")
    with pytest.raises(SubmissionError, match="v2"):
        write_submission(tmp_path, "m", tmp_path / "s.zip")
    assert not (tmp_path / "s.zip").exists()


def test_complete_plan_writes_the_archive(tmp_path):
    _plan(tmp_path, ["v1", "v2"])
    _server_unit(tmp_path, "v1")
    _server_unit(tmp_path, "v2")
    info = write_submission(tmp_path, "m", tmp_path / "s.zip")
    assert info["videos"] == 2 and info["frames"] == 4


def test_no_plan_is_refused(tmp_path):
    _server_unit(tmp_path, "v1")
    with pytest.raises(SubmissionError, match="run.json"):
        write_submission(tmp_path, "m", tmp_path / "s.zip")


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_disk_errors_are_one_line(tmp_path, capsys, monkeypatch, code):
    import harness.submission as S

    _plan(tmp_path, ["v1"])
    _server_unit(tmp_path, "v1")

    def fail(path, *a, **kw):
        raise OSError(code, os.strerror(code), str(path))

    monkeypatch.setattr(S, "atomic_write", fail)
    assert main(["--out", str(tmp_path), "--method", "m", "--zip", str(tmp_path / "s.zip")]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and "s.zip" in err[0] and os.strerror(code).lower() in err[0].lower()


def test_name_too_long_is_one_line(tmp_path, capsys):
    _plan(tmp_path, ["v1"])
    _server_unit(tmp_path, "v1")
    assert main(["--out", str(tmp_path), "--method", "m", "--zip", str(tmp_path / ("z" * 300 + ".zip"))]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and "too long" in err[0]


def test_every_console_script_runs_inside_the_one_handler():
    """Issue 25 §5: each console script's main is wrapped by common.cli.cli_main (signals, I/O errors)."""
    import importlib
    import tomllib
    from pathlib import Path

    scripts = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]["scripts"]
    unwrapped = []
    for name, target in scripts.items():
        module, func = target.split(":")
        main_fn = getattr(importlib.import_module(module), func)
        wrapped = getattr(main_fn, "__wrapped__", None)
        code = main_fn.__code__
        if wrapped is None or code.co_name != "wrapper" or not code.co_filename.endswith(("common/cli.py", "common\\cli.py")):
            unwrapped.append(name)
    assert not unwrapped, f"console scripts outside common.cli.cli_main: {unwrapped}"
