"""Adversarial cases for ``harness.score`` (issue 25 §1, §4, §5; issue 28 items 1 and 7).

Each test builds a small bad input as a careful user would and asserts the outcome: a clear error naming
what is wrong, or the number a fresh scoring of the same data gives.  Every case failed (a silently wrong
number, a traceback, or silence) before the unit record, the identity and the scoring home were made one.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness.score import main as score_main

REPO = Path(__file__).resolve().parents[1]
REAL16 = REPO / "tests" / "data" / "real_davis16"


def _gt_tree(davis: Path, dest: Path, variants=("clean",), seed_dirs: bool = False) -> Path:
    """Perfect predictions: the annotations themselves, in the DAVIS-C layout (or harness layout)."""
    for variant in variants:
        for vdir in sorted((davis / "Annotations" / "480p").iterdir()):
            target = dest / variant / vdir.name / ("seed1" if seed_dirs else "")
            shutil.copytree(vdir, target)
    return dest


def _score(*argv) -> int:
    return score_main(["--no-progress", *map(str, argv)])


def _units(out: Path, method: str) -> dict:
    return {str(p.relative_to(out / method)): json.loads(p.read_text()) for p in (out / method).rglob("seed*.json")}


def _blank(tree: Path) -> None:
    """Overwrite every predicted mask with an empty one (same names, same sizes)."""
    for png in tree.rglob("*.png"):
        size = Image.open(png).size
        Image.fromarray(np.zeros(size[::-1], np.uint8), mode="L").save(png)


# ------------------------------------------------------------------ §1: reuse is decided from the identity
def test_overwritten_predictions_are_rescored_not_reused(tiny_davis_sample, tmp_path, capsys):
    tree, out = _gt_tree(tiny_davis_sample, tmp_path / "P"), tmp_path / "R"
    assert _score("--predictions", tree, "--method", "m", "--annotations", tiny_davis_sample, "--out", out) == 0
    assert all(r["JF"] == 1.0 for r in _units(out, "m").values())
    _blank(tree)
    capsys.readouterr()
    _score("--predictions", tree, "--method", "m", "--annotations", tiny_davis_sample, "--out", out)
    err = capsys.readouterr().err
    assert "predictions changed" in err
    recs = _units(out, "m").values()
    assert recs and all(r["status"] == "failed" or r["JF"] < 0.5 for r in recs)  # never the stale 1.0


def test_another_tree_under_the_same_method_name_is_refused(tiny_davis_sample, tmp_path, capsys):
    a = _gt_tree(tiny_davis_sample, tmp_path / "A")
    b = _gt_tree(tiny_davis_sample, tmp_path / "B")
    _blank(b)
    out = tmp_path / "R"
    assert _score("--predictions", a, "--method", "m", "--annotations", tiny_davis_sample, "--out", out) == 0
    capsys.readouterr()
    assert _score("--predictions", b, "--method", "m", "--annotations", tiny_davis_sample, "--out", out) == 2
    err = capsys.readouterr().err
    assert str(a.resolve()) in err and str(b.resolve()) in err
    assert all(r["JF"] == 1.0 for r in _units(out, "m").values())  # A's units untouched, B's never mixed in


def test_other_ground_truth_is_refused_naming_both(tiny_davis_sample, tmp_path, capsys):
    other = shutil.copytree(tiny_davis_sample, tmp_path / "OTHER")
    png = sorted((other / "Annotations" / "480p").rglob("*.png"))[3]
    arr = np.asarray(Image.open(png)).copy()
    arr[0, 0] = 0 if arr[0, 0] else 1  # one pixel of one annotation differs
    img = Image.fromarray(arr, mode="P")
    img.putpalette(Image.open(png).getpalette())
    img.save(png)
    tree, out = _gt_tree(tiny_davis_sample, tmp_path / "P"), tmp_path / "R"
    assert _score("--predictions", tree, "--method", "m", "--annotations", tiny_davis_sample, "--out", out) == 0
    capsys.readouterr()
    assert _score("--predictions", tree, "--method", "m", "--annotations", other, "--out", out) == 2
    err = capsys.readouterr().err
    assert "other data" in err and "annotations" in err and str(other) in err and str(tiny_davis_sample) in err


def test_store_and_annotations_that_disagree_are_refused(tiny_davis_sample, tmp_path, capsys):
    from davis_c import build as B
    from davis_c.sample import make_sample

    other = make_sample(tmp_path / "O" / "DAVIS", videos=2, frames=8, height=64, width=112, seed=1)
    h5 = tmp_path / "other.h5"
    B.build(other, h5, corruptions=["contrast"], strengths=["high"], progress=False, log=lambda m: None)
    tree = _gt_tree(tiny_davis_sample, tmp_path / "P")
    capsys.readouterr()
    assert _score("--predictions", tree, "--method", "m", "--annotations", tiny_davis_sample, "--data", h5,
                  "--out", tmp_path / "R") == 2
    err = capsys.readouterr().err
    assert "disagree" in err and str(h5) in err and not (tmp_path / "R" / "m" / "clean").exists()


# ------------------------------------------------------------------ §4: the tree is read strictly
def test_a_seed_not_in_the_tree_is_an_error(tiny_davis_sample, tmp_path, capsys):
    tree = tmp_path / "P"
    _gt_tree(tiny_davis_sample, tree / "seed1")
    assert _score("--predictions", tree, "--method", "m", "--annotations", tiny_davis_sample, "--seeds", "1", "7",
                  "--out", tmp_path / "R") == 2
    err = capsys.readouterr().err
    assert "--seeds 7" in err and "seed1" in err


@pytest.mark.parametrize("folder", ["High", "5"])
def test_unknown_strength_folders_are_an_error(tiny_davis_sample, tmp_path, capsys, folder):
    tree = _gt_tree(tiny_davis_sample, tmp_path / "P", variants=("clean", f"{folder}/contrast"))
    assert _score("--predictions", tree, "--method", "m", "--annotations", tiny_davis_sample,
                  "--out", tmp_path / "R") == 2
    assert folder in capsys.readouterr().err
    assert not (tmp_path / "R" / "m").exists()


def test_layout_is_read_from_every_folder_not_the_first_three(tiny_davis_sample, tmp_path, capsys):
    tree = _gt_tree(tiny_davis_sample, tmp_path / "P", variants=("clean",))
    _gt_tree(tiny_davis_sample, tree, variants=("low/contrast",), seed_dirs=True)
    assert _score("--predictions", tree, "--method", "m", "--annotations", tiny_davis_sample,
                  "--out", tmp_path / "R") == 2
    assert "mixed layouts" in capsys.readouterr().err


def test_clean_option_shadowing_tree_clean_is_an_error(tiny_davis_sample, tmp_path, capsys):
    tree = _gt_tree(tiny_davis_sample, tmp_path / "P")
    other = _gt_tree(tiny_davis_sample, tmp_path / "C")
    assert _score("--predictions", tree, "--clean", other / "clean", "--method", "m",
                  "--annotations", tiny_davis_sample, "--out", tmp_path / "R") == 2
    err = capsys.readouterr().err
    assert "--clean" in err and str(tree / "clean") in err


def test_hidden_method_name_is_refused(tiny_davis_sample, tmp_path, capsys):
    tree = _gt_tree(tiny_davis_sample, tmp_path / "P")
    assert _score("--predictions", tree, "--method", ".m", "--annotations", tiny_davis_sample,
                  "--out", tmp_path / "R") == 2
    assert "'.'" in capsys.readouterr().err and not (tmp_path / "R" / ".m").exists()


# ------------------------------------------------------------------ §5: clean failures
@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_full_or_read_only_disk_one_line_naming_the_file(tiny_davis_sample, tmp_path, capsys, monkeypatch, code):
    import harness.units as U

    def fail(path, obj):
        raise OSError(code, os.strerror(code), str(path))

    monkeypatch.setattr(U, "write_json_atomic", fail)
    tree = _gt_tree(tiny_davis_sample, tmp_path / "P")
    assert _score("--predictions", tree, "--method", "m", "--annotations", tiny_davis_sample,
                  "--out", tmp_path / "R") == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if "error" in ln]
    assert len(err) == 1 and "seed1.json" in err[0] and os.strerror(code).lower() in err[0].lower()


def test_name_too_long_is_one_line(tiny_davis_sample, tmp_path, capsys):
    tree = _gt_tree(tiny_davis_sample, tmp_path / "P")
    assert _score("--predictions", tree, "--method", "m", "--annotations", tiny_davis_sample,
                  "--out", tmp_path / ("x" * 300)) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if "error" in ln]
    assert len(err) == 1 and "x" * 300 in err[0] and "too long" in err[0]


def test_too_many_workers_are_said_before_work_with_the_estimate(tiny_davis_sample, tmp_path, capsys, monkeypatch):
    import harness.devices as D

    monkeypatch.setattr(D, "usable_cores", lambda: 1)
    tree = _gt_tree(tiny_davis_sample, tmp_path / "P")
    monkeypatch.setattr(D, "available_memory_mb", lambda: 500)
    assert _score("--predictions", tree, "--method", "m", "--annotations", tiny_davis_sample, "--workers", "64",
                  "--out", tmp_path / "R") == 2
    err = capsys.readouterr().err
    assert "GiB" in err and "--workers 1" in err and not list((tmp_path / "R").rglob("seed*.json"))
    monkeypatch.setattr(D, "available_memory_mb", lambda: 10 ** 6)
    assert _score("--predictions", tree, "--method", "m", "--annotations", tiny_davis_sample, "--workers", "2",
                  "--out", tmp_path / "R") == 0
    err = capsys.readouterr().err
    assert "note: --workers 2" in err and "1 usable core" in err and "MB each" in err


_SLEEPY = '''
import os, sys, time
from pathlib import Path
import harness.score as S

PIDS = Path(sys.argv[1])

def sleepy(job, digest=None):
    (PIDS / str(os.getpid())).touch()
    time.sleep(120)

S.score_unit = sleepy
S.score_predictions(sys.argv[2], "m", sys.argv[3], out=sys.argv[4], workers=2, progress=False)
'''


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_workers_die_with_their_parent(tiny_davis_sample, tmp_path, sig):
    tree = _gt_tree(tiny_davis_sample, tmp_path / "P")
    pids = tmp_path / "pids"
    pids.mkdir()
    helper = tmp_path / "helper_mod"
    helper.mkdir()
    (helper / "sleepy_score.py").write_text(_SLEEPY.replace("S.score_unit = sleepy",
                                                            "S.score_unit = sleepy\nimport sleepy_score"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(helper)])}
    script = helper / "sleepy_score.py"
    # the module imports itself as sleepy_score so that the spawned workers can unpickle `sleepy`
    script.write_text(_SLEEPY.replace("S.score_unit = sleepy\nS.score_predictions",
                                      "if __name__ == '__main__':\n    import sleepy_score\n"
                                      "    S.score_unit = sleepy_score.sleepy\n    S.score_predictions"))
    proc = subprocess.Popen([sys.executable, str(script), str(pids), str(tree), str(tiny_davis_sample),
                             str(tmp_path / "R")], env=env, cwd=str(helper))
    deadline = time.time() + 120
    while len(list(pids.iterdir())) < 2 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    workers = [int(p.name) for p in pids.iterdir()]
    assert len(workers) == 2, "the workers did not start"
    proc.send_signal(sig)
    proc.wait(30)
    deadline = time.time() + 20
    alive = workers
    while alive and time.time() < deadline:
        alive = [w for w in workers if _alive(w)]
        time.sleep(0.2)
    for w in alive:  # clean up before failing
        os.kill(w, signal.SIGKILL)
    assert not alive, f"worker process(es) {alive} outlived harness.score"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as fh:
            return not any(line.startswith("State:") and "Z" in line for line in fh)
    except FileNotFoundError:
        return False


# ------------------------------------------------------------------ issue 28: any dataset, a J&F table
def test_score_and_evaluate_take_davis2016(tmp_path, capsys):
    from harness.evaluate import main as eval_main

    tree = _gt_tree(REAL16, tmp_path / "P")
    out = tmp_path / "R"
    assert _score("--predictions", tree, "--method", "gt", "--annotations", REAL16, "--out", out) == 0  # recognised
    recs = _units(out, "gt")
    assert len(recs) == 4 and all(r["JF"] == 1.0 and r["protocol"] == "davis2016" for r in recs.values())
    text = capsys.readouterr().out
    assert "J&F" in text and "100.0" in text  # the table harness.run prints, in percent
    assert eval_main(["--davis", str(REAL16), "--dataset", "davis2016", "--results", str(tree / "clean"),
                      "--out", str(tmp_path / "E"), "--quiet"]) == 0
    import pandas as pd

    per_video = pd.read_csv(tmp_path / "E" / "davis_c_per-video_results-val.csv")
    assert sorted(per_video.Video) == sorted(r["video"] for r in recs.values())
    assert (per_video["J&F-Mean"] == 1.0).all()


def test_davis2016_imported_scores_equal_the_protocol_on_the_same_labels(tmp_path):
    """An imperfect prediction: harness.score's number is the scoring home's number on the same labels."""
    from davis_c.datasets import open_dataset
    from harness.protocols import score

    tree = _gt_tree(REAL16, tmp_path / "P")
    vdir = tree / "clean" / "libby"
    for png in sorted(vdir.glob("*.png"))[::3]:
        arr = np.asarray(Image.open(png)).copy()
        arr[:, : arr.shape[1] // 3] = 0
        Image.fromarray(arr).save(png)
    out = tmp_path / "R"
    assert _score("--predictions", tree, "--method", "m", "--annotations", REAL16, "--dataset", "davis2016",
                  "--videos", "libby", "--out", out) == 0
    rec = _units(out, "m")["clean/libby/seed1.json"]
    video = open_dataset("davis2016", REAL16).load("libby")
    from davis_c.masks import read_mask

    labels = np.stack([read_mask(vdir / f"{n}.png") for n in video.frame_names])
    ref = score(video, labels, protocol="davis2016")
    assert rec["JF"] == ref["JF"] and rec["JF"] < 1.0


def test_units_scored_before_identities_are_rescored_not_refused(tiny_davis_sample, tmp_path, capsys):
    tree, out = _gt_tree(tiny_davis_sample, tmp_path / "P"), tmp_path / "R"
    assert _score("--predictions", tree, "--method", "m", "--annotations", tiny_davis_sample, "--out", out) == 0
    for path in (out / "m").rglob("seed*.json"):  # as harness.score wrote them before issue 25
        rec = json.loads(path.read_text())
        for key in ("data", "data_id", "annotations_sha256", "predictions_sha256", "unit_id"):
            rec.pop(key, None)
        path.write_text(json.dumps(rec))
    capsys.readouterr()
    assert _score("--predictions", tree, "--method", "m", "--annotations", tiny_davis_sample, "--out", out) == 0
    assert "rescored" in capsys.readouterr().err
    assert all(r["data_id"] and r["predictions_sha256"] for r in _units(out, "m").values())
