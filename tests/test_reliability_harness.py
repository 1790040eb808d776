"""Issue 14, harness side: units are tied to their data (1), damaged frames fail the unit by name (2), one run
per results folder (4), clean failures on a full disk and on SIGTERM (6, 8), bad --set values stop before
run.json (9), config files cannot run code unasked (10), mis-sized ground truth is refused (12)."""
from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from davis_c import build as B
from harness.cli import main

FAKE = {"description": "fake: first mask everywhere", "model": "test_harness:load_fake", "checkpoint": None,
        "segment": {}, "ttt": None, "resolution": None}


@pytest.fixture()
def fake_cfg(tmp_path: Path) -> Path:
    path = tmp_path / "fake.yaml"
    path.write_text(yaml.safe_dump(FAKE))
    return path


@pytest.fixture(scope="module")
def other_sample(tmp_path_factory) -> Path:
    """Same video names and sizes as tiny_davis_sample, other content (seed 1)."""
    from davis_c.sample import make_sample

    return make_sample(tmp_path_factory.mktemp("other") / "DAVIS", videos=2, frames=8, height=64, width=112, seed=1)


def _run(*argv) -> int:
    return main(["--no-progress", *map(str, argv)])


def _jf(out: Path) -> dict:
    return {str(p.relative_to(out)): json.loads(p.read_text())["JF"] for p in sorted(out.rglob("seed*.json"))}


# ------------------------------------------------------------------------------------- 1: data identity
def test_units_of_other_data_are_refused_not_reused(tiny_davis_sample, other_sample, fake_cfg, tmp_path, capsys):
    a, b = tmp_path / "A.h5", tmp_path / "B.h5"
    for root, h5 in ((tiny_davis_sample, a), (other_sample, b)):
        B.build(root, h5, corruptions=["contrast"], strengths=["high"], progress=False, log=lambda m: None)
    base = ("--config", fake_cfg, "--allow-plugin")
    assert _run(*base, "--data", a, "--out", tmp_path / "R") == 0
    assert _run(*base, "--data", b, "--out", tmp_path / "ref_b") == 0
    scores_a, scores_b = _jf(tmp_path / "R"), _jf(tmp_path / "ref_b")
    assert scores_a.keys() == scores_b.keys() and scores_a != scores_b  # the two builds really score differently
    rec = json.loads(next((tmp_path / "R").rglob("seed1.json")).read_text())
    assert rec["data"]["kind"] == "davis-c-h5" and len(rec["data_id"]) == 64 and rec["data"]["build_key"]
    capsys.readouterr()
    assert _run(*base, "--data", b, "--out", tmp_path / "R") == 2  # B into A's folder: refused, naming both
    err = capsys.readouterr().err
    assert "computed on other data" in err and str(a) in err and str(b) in err
    assert _jf(tmp_path / "R") == scores_a  # nothing was overwritten
    # the same holds for DAVIS roots with the same video names
    assert _run(*base, "--data", tiny_davis_sample, "--out", tmp_path / "D") == 0
    assert _run(*base, "--data", other_sample, "--out", tmp_path / "D") == 2
    assert "computed on other data" in capsys.readouterr().err
    # same data again: resumes (nothing to run)
    assert _run(*base, "--data", tiny_davis_sample, "--out", tmp_path / "D") == 0
    assert "0 to run" in capsys.readouterr().err


# ------------------------------------------------------------------------------------- 2: damaged frames
def test_damaged_frame_fails_the_unit_naming_file_variant_video_frame(tiny_davis_sample, fake_cfg, tmp_path, capsys):
    from test_reliability_store import _flip_frame_bytes

    h5 = tmp_path / "C.h5"
    B.build(tiny_davis_sample, h5, corruptions=["contrast"], strengths=["high"], progress=False, log=lambda m: None)
    shard = B.shard_path(h5, "high", "contrast")
    _flip_frame_bytes(shard, "synth-001", 4)
    out = tmp_path / "R"
    assert _run("--config", fake_cfg, "--allow-plugin", "--data", h5, "--out", out) == 1
    recs = {p.relative_to(out).as_posix(): json.loads(p.read_text()) for p in out.rglob("seed*.json")}
    failed = {k: r for k, r in recs.items() if r["status"] == "failed"}
    assert list(failed) == ["fake/high/contrast/synth-001/seed1.json"]
    error = failed["fake/high/contrast/synth-001/seed1.json"]["error"]
    assert str(shard) in error and "'high/contrast'" in error and "'synth-001'" in error and "frame 00004" in error
    assert sum(r["status"] == "ok" for r in recs.values()) == 3


# ------------------------------------------------------------------------------------- 4: one run per folder
def test_second_run_into_a_locked_results_folder_is_refused(tiny_davis_sample, fake_cfg, tmp_path, capsys):
    from common.locks import OutputLock
    from harness.planner import run_lock_path

    out = tmp_path / "R"
    holder = OutputLock(run_lock_path(out, "fake"), "test")
    try:
        assert _run("--config", fake_cfg, "--allow-plugin", "--data", tiny_davis_sample, "--out", out) == 2
        err = capsys.readouterr().err
        assert f"pid {os.getpid()}" in err and ".run.lock" in err
        assert not list(out.rglob("seed*.json")) and not (out / "fake" / "run.json").exists()
        # another shard of a job array is not blocked
        assert _run("--config", fake_cfg, "--allow-plugin", "--data", tiny_davis_sample, "--out", out,
                    "--shard", "1/2") == 0
    finally:
        holder.release()
    assert _run("--config", fake_cfg, "--allow-plugin", "--data", tiny_davis_sample, "--out", out) == 0
    assert not list((out / "fake").glob("*.lock"))


# ------------------------------------------------------------------------------------- 6: disk full / read-only
def test_run_disk_full_one_line_status_2(tiny_davis_sample, fake_cfg, tmp_path, monkeypatch, capsys):
    import harness.units as X  # the one writer of unit records

    real = X.write_json_atomic
    calls = []

    def full(path, obj):
        calls.append(path)
        if len(calls) == 2:  # the disk is full when the second unit's result is written
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(path, obj)

    monkeypatch.setattr(X, "write_json_atomic", full)
    out = tmp_path / "R"
    assert _run("--config", fake_cfg, "--allow-plugin", "--data", tiny_davis_sample, "--out", out,
                "--seeds", 1, 2) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if "error" in ln]
    assert len(err) == 1 and "no space left on device" in err[0] and str(calls[1]) in err[0]
    assert not [p for p in out.rglob("*") if ".tmp-" in p.name or p.name.endswith(".lock")]
    assert len(list(out.rglob("seed*.json"))) == 1  # the unit before the failure is kept; the run stopped


def test_evaluate_read_only_one_line(tiny_davis_sample, tmp_path, monkeypatch, capsys):
    import harness.evaluate as E

    results = tmp_path / "pred"
    shutil.copytree(tiny_davis_sample / "Annotations" / "480p", results)

    def read_only(path, *a, **kw):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))

    monkeypatch.setattr(E, "write_text_atomic", read_only)
    assert E.main(["--davis", str(tiny_davis_sample), "--results", str(results), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "read-only file system" in err[0] and "global_results-val.csv" in err[0]


def test_leaderboard_disk_full_one_line(tiny_davis_sample, fake_cfg, tmp_path, monkeypatch, capsys):
    import leaderboard.build as L

    assert _run("--config", fake_cfg, "--allow-plugin", "--data", tiny_davis_sample, "--out", tmp_path / "R") == 0

    def full(path, *a, **kw):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(L, "_write_text", full)
    monkeypatch.setattr(L, "_write_csv", full)
    capsys.readouterr()
    assert L.main(["--results", str(tmp_path / "R"), "--out", str(tmp_path / "lb")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no space left on device" in err[0] and str(tmp_path / "lb") in err[0]


# ------------------------------------------------------------------------------------- 8: SIGTERM
def test_sigterm_of_harness_run_is_handled_like_ctrl_c_with_status_143(tmp_path):
    import subprocess
    import sys

    # SIGTERM arrives while the run is being planned (a scheduler cancelling the job)
    code = ("import os, signal, sys, time\n"
            "import harness.cli as r, harness.planner as planner\n"
            "def plan(*a, **k):\n"
            "    os.kill(os.getpid(), signal.SIGTERM)\n"
            "    time.sleep(5)\n"
            "planner.plan_run = plan  # harness.run imports it inside main(), after parsing\n"
            "sys.exit(r.main(['--method', 'labelprop', '--no-progress']))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 143, proc.stderr
    assert "harness.run: terminated (SIGTERM): finished units are kept" in proc.stderr
    assert "Traceback" not in proc.stderr


# ------------------------------------------------------------------------------------- 9: --set validation
def test_bad_set_value_stops_before_run_json(tiny_davis_sample, tmp_path, capsys):
    out = tmp_path / "R"
    assert _run("--method", "labelprop", "--data", tiny_davis_sample, "--out", out, "--set", "k=abc") == 2
    err = capsys.readouterr().err
    assert "segment.k='abc'" in err and "int" in err
    assert not out.exists()
    assert _run("--method", "labelprop", "--data", tiny_davis_sample, "--out", out, "--set", "nope=1") == 2
    assert _run("--method", "labelprop", "--data", tiny_davis_sample, "--out", out,
                "--set", "segment.nope=1") == 2
    assert "not an option" in capsys.readouterr().err and not out.exists()
    assert _run("--method", "labelprop", "--data", tiny_davis_sample, "--out", out, "--set", "k=5",
                "--videos", "synth-000") == 0  # the corrected value is accepted
    assert json.loads((out / "labelprop" / "run.json").read_text())["config"]["segment"]["k"] == 5


def test_shipped_presets_fit_their_models():
    from harness.executor import build_model, resolve_ttt
    from harness.methods import available_methods, load_method
    from harness.options import check_options

    models: dict[str, object] = {}
    for name in available_methods():
        _, cfg = load_method(name)
        key = f"{cfg['model']} {sorted(cfg['load'].items())}"
        if key not in models:  # one random-init model per (model, load options)
            models[key] = build_model(cfg, None, True, "cpu")
        check_options(cfg, models[key], resolve_ttt(cfg))  # raises on a misfit


# ------------------------------------------------------------------------------------- 10: plugins
def test_config_naming_a_module_needs_allow_plugin(tiny_davis_sample, tmp_path, monkeypatch, capsys):
    marker = tmp_path / "imported"
    mod = tmp_path / "plug" / "sneaky_plugin.py"
    mod.parent.mkdir()
    mod.write_text(f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n"
                   "from test_harness import load_fake as load\n")
    monkeypatch.syspath_prepend(str(mod.parent))
    cfg = tmp_path / "m.yaml"
    cfg.write_text(yaml.safe_dump({**FAKE, "model": "sneaky_plugin:load"}))
    out = tmp_path / "R"
    assert _run("--config", cfg, "--data", tiny_davis_sample, "--out", out, "--videos", "synth-000") == 2
    err = capsys.readouterr().err
    assert "sneaky_plugin:load" in err and "--allow-plugin" in err and "runs its code" in err
    assert not marker.exists() and not out.exists()
    # named on the command line: the user asked for it
    assert _run("--config", cfg, "--set", "model=sneaky_plugin:load", "--data", tiny_davis_sample,
                "--out", out, "--videos", "synth-000") == 0
    assert marker.exists()
    assert _run("--config", cfg, "--allow-plugin", "--data", tiny_davis_sample, "--out", out,
                "--videos", "synth-000") == 0
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "--allow-plugin" in capsys.readouterr().out


# ------------------------------------------------------------------------------------- 12: ground-truth size
def test_evaluate_refuses_an_annotation_of_another_size(tiny_davis_sample, tmp_path, capsys):
    from davis_c.davis import DavisError
    from harness.evaluate import evaluate_results, main as evaluate_main

    root = tmp_path / "DAVIS"
    shutil.copytree(tiny_davis_sample, root)
    bad = root / "Annotations" / "480p" / "synth-001" / "00003.png"
    img = Image.open(bad)
    small = img.resize((img.width // 2, img.height // 2), Image.NEAREST)
    small.putpalette(img.getpalette())
    small.save(bad)
    results = tmp_path / "pred"
    shutil.copytree(root / "Annotations" / "480p", results)  # predictions = ground truth, same sizes
    with pytest.raises(DavisError, match=str(bad)):
        evaluate_results(root, results, progress=False)
    assert evaluate_main(["--davis", str(root), "--results", str(results), "--quiet"]) != 0
    assert str(bad) in capsys.readouterr().err
    assert np.asarray(Image.open(bad)).shape == (32, 56)
