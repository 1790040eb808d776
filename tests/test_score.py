"""harness.score: masks of any tool scored into harness unit records, shown by the leaderboard.

The reference is ``harness.run`` itself: the plug-in example model (examples/plugin_model.py) is run
with ``--save-masks`` on the tiny sample, and its saved masks, re-scored by ``harness.score`` in both
tree layouts, must give the very same unit numbers.
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from harness.score import find_predictions, main as score_main
from leaderboard.results import load_results
from leaderboard.tables import build_tables

REPO = Path(__file__).resolve().parents[1]
VARIANT = "low/contrast"
SCORE_KEYS = ("J", "F", "JF", "objects", "per_frame", "n_frames")


@pytest.fixture(scope="module")
def run_tree(tiny_davis_sample, tmp_path_factory) -> Path:
    """harness.run of the plug-in example (clean + low/contrast) with --save-masks."""
    from harness.cli import main as run_main
    from test_leaderboard_e2e import _contrast_tree

    base = tmp_path_factory.mktemp("score")
    sys.path.insert(0, str(REPO))  # examples.plugin_model, as when run from the repository root
    try:
        davis_c = _contrast_tree(base / "DAVIS-C", tiny_davis_sample, VARIANT)
        out = base / "results"
        for data in (tiny_davis_sample, davis_c):
            args = ["--config", str(REPO / "examples" / "plugin_model.yaml"), "--allow-plugin", "--data", str(data),
                    "--annotations", str(tiny_davis_sample), "--out", str(out), "--save-masks", "--no-progress"]
            assert run_main(args) == 0
    finally:
        sys.path.remove(str(REPO))
    return out


def _units(root: Path, method: str) -> dict[tuple, dict]:
    out = {}
    for path in (root / method).rglob("seed*.json"):
        rec = json.loads(path.read_text())
        out[(rec["variant"], rec["video"], rec["seed"])] = rec
    return out


def _davis_c_layout(run_tree: Path, dest: Path, videos=None) -> Path:
    """The saved masks copied into the official DAVIS-C layout: clean/<video>/, low/contrast/<video>/."""
    for variant in ("clean", VARIANT):
        for vdir in sorted((run_tree / "plugin_model" / variant).iterdir()):
            if vdir.is_dir() and (videos is None or vdir.name in videos):
                shutil.copytree(vdir / "seed1", dest / variant / vdir.name)
    return dest


def test_plugin_example_runs_and_is_a_real_weight_free_model(run_tree):
    run = json.loads((run_tree / "plugin_model" / "run.json").read_text())
    assert run["random_init"] is False and run["checkpoint"] is None
    assert run["variants"] == ["clean", VARIANT] and len(run["videos"]) == 2
    units = _units(run_tree, "plugin_model")
    assert len(units) == 4 and all(u["status"] == "ok" for u in units.values())
    # copying the first mask scores J = 1 nowhere but the sample's objects move: a real, imperfect number
    assert all(0 < u["JF"] < 1 for u in units.values())


@pytest.mark.parametrize("layout", ["harness", "davis-c"])
def test_saved_masks_rescore_to_identical_units(run_tree, tiny_davis_sample, tmp_path, layout):
    tree = run_tree / "plugin_model" if layout == "harness" else _davis_c_layout(run_tree, tmp_path / "pred")
    assert find_predictions(tree).layout == layout
    out = tmp_path / "results"
    assert score_main(["--predictions", str(tree), "--method", "rescored", "--annotations", str(tiny_davis_sample),
                       "--out", str(out), "--source", "harness.run --save-masks", "--no-progress"]) == 0
    ours, theirs = _units(run_tree, "plugin_model"), _units(out, "rescored")
    assert set(ours) == set(theirs) and len(ours) == 4
    for key, rec in ours.items():
        for field in SCORE_KEYS:
            assert theirs[key][field] == rec[field], (key, field)
    run = json.loads((out / "rescored" / "run.json").read_text())
    assert run["imported"]["source"] == "harness.run --save-masks" and run["imported"]["layout"] == layout
    # rerun: nothing to redo, files untouched
    stamp = {p: p.stat().st_mtime_ns for p in (out / "rescored").rglob("seed*.json")}
    assert score_main(["--predictions", str(tree), "--method", "rescored", "--annotations", str(tiny_davis_sample),
                       "--out", str(out), "--no-progress", "--workers", "2"]) == 0
    assert stamp == {p: p.stat().st_mtime_ns for p in (out / "rescored").rglob("seed*.json")}


def test_imported_method_shows_next_to_ours_in_the_leaderboard(run_tree, tiny_davis_sample, tmp_path):
    from leaderboard.build import build

    out = tmp_path / "results"
    shutil.copytree(run_tree / "plugin_model", out / "plugin_model")
    one_video = sorted(p.name for p in (run_tree / "plugin_model" / "clean").iterdir() if p.is_dir())[:1]
    tree = _davis_c_layout(run_tree, tmp_path / "pred", videos=one_video)  # the other video is missing
    assert score_main(["--predictions", str(tree), "--method", "other-tool", "--annotations", str(tiny_davis_sample),
                       "--out", str(out), "--source", "other eval.py, commit abc", "--no-progress"]) == 1
    lb = build_tables(load_results(out)).leaderboard.set_index(["method", "variant"])
    assert lb.loc[("other-tool", "clean"), "status"] == "incomplete"
    assert np.isnan(lb.loc[("other-tool", "clean"), "JF"]) and np.isfinite(lb.loc[("plugin_model", "clean"), "JF"])
    failed = [u for u in _units(out, "other-tool").values() if u["status"] == "failed"]
    assert len(failed) == 2 and all("prediction folder not found" in u["error"] for u in failed)
    written = build(out, tmp_path / "lb")
    page = written["index.html"].read_text()
    assert "other eval.py, commit abc" in page and "imported-notice" in page
    runs = pd.read_csv(written["runs.csv"]).set_index("method")
    assert runs.loc["other-tool", "imported_from"] == "other eval.py, commit abc"
    assert pd.isna(runs.loc["plugin_model", "imported_from"])


@pytest.mark.parametrize("defect", ["rgb", "size", "label", "missing"])
def test_a_bad_mask_fails_its_unit_naming_the_file(run_tree, tiny_davis_sample, tmp_path, defect):
    tree = _davis_c_layout(run_tree, tmp_path / "pred")
    video = sorted(p.name for p in (tree / "clean").iterdir())[0]
    bad = sorted((tree / "clean" / video).glob("*.png"))[2]
    lab = np.asarray(Image.open(bad))
    if defect == "rgb":
        Image.fromarray(np.stack([lab * 60] * 3, axis=-1).astype(np.uint8), "RGB").save(bad)
    elif defect == "size":
        Image.fromarray(lab[:-2]).save(bad)
    elif defect == "label":
        Image.fromarray(np.where(lab > 0, 9, 0).astype(np.uint8)).save(bad)
    else:
        bad.unlink()
    out = tmp_path / "results"
    code = score_main(["--predictions", str(tree), "--method", "m", "--annotations", str(tiny_davis_sample),
                       "--out", str(out), "--no-progress"])
    assert code == 1
    units = _units(out, "m")
    assert len(units) == 4  # the run went on with the other units
    failed = {k: u for k, u in units.items() if u["status"] == "failed"}
    assert list(failed) == [("clean", video, 1)]
    assert str(bad) in failed[("clean", video, 1)]["error"]


def test_seed_folders_and_a_separate_clean_folder(run_tree, tiny_davis_sample, tmp_path):
    pred = tmp_path / "pred"
    for seed in (1, 5):
        _davis_c_layout(run_tree, tmp_path / f"tmp{seed}")
        shutil.move(str(tmp_path / f"tmp{seed}" / "low"), str(pred / f"seed{seed}" / "low"))
        shutil.move(str(tmp_path / f"tmp{seed}" / "clean"), str(tmp_path / "clean" / f"seed{seed}"))
    found = find_predictions(pred, clean=tmp_path / "clean")
    assert found.seeds() == [1, 5] and found.variants == ["clean", VARIANT]
    out = tmp_path / "results"
    assert score_main(["--predictions", str(pred), "--clean", str(tmp_path / "clean"), "--method", "m",
                       "--annotations", str(tiny_davis_sample), "--out", str(out), "--no-progress"]) == 0
    units = _units(out, "m")
    assert len(units) == 8 and {k[2] for k in units} == {1, 5}
    ref = _units(run_tree, "plugin_model")
    assert all(units[(v, vid, s)]["JF"] == ref[(v, vid, 1)]["JF"] for v, vid, s in units)


def test_scoring_needs_no_jpeg_images(run_tree, tiny_davis_sample, tmp_path):
    """harness.evaluate and harness.score read Annotations/ and ImageSets/ only (like vos-benchmark)."""
    from harness.evaluate import main as evaluate_main

    gt = tmp_path / "DAVIS"
    for sub in ("Annotations", "ImageSets"):
        shutil.copytree(tiny_davis_sample / sub, gt / sub)
    assert not (gt / "JPEGImages").exists()
    results = tmp_path / "pred" / "clean"
    _davis_c_layout(run_tree, tmp_path / "pred")
    assert evaluate_main(["--davis", str(gt), "--results", str(results), "--out", str(tmp_path / "csv"),
                          "--quiet"]) == 0
    assert (tmp_path / "csv" / "global_results-val.csv").is_file()
    assert score_main(["--predictions", str(tmp_path / "pred"), "--method", "m", "--annotations", str(gt),
                       "--out", str(tmp_path / "results"), "--no-progress"]) == 0


def test_bad_trees_and_arguments_are_explained(tiny_davis_sample, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert score_main(["--predictions", str(tmp_path / "empty"), "--method", "m", "--annotations",
                       str(tiny_davis_sample), "--out", str(tmp_path / "r")]) == 2
    assert "no predictions found" in capsys.readouterr().err
    (tmp_path / "one" / "clean" / "x").mkdir(parents=True)
    assert score_main(["--predictions", str(tmp_path / "one"), "--method", "m", "--annotations",
                       str(tiny_davis_sample), "--seeds", "1", "2"]) == 2
    assert "holds the masks of one seed" in capsys.readouterr().err
    assert score_main(["--predictions", str(tmp_path / "one"), "--method", "m", "--annotations",
                       str(tmp_path / "nowhere")]) == 2
    assert "--annotations" in capsys.readouterr().err


def test_data_lists_the_expected_variants(run_tree, tiny_davis_sample, tmp_path, capsys):
    from test_leaderboard_e2e import _contrast_tree

    davis_c = _contrast_tree(tmp_path / "DAVIS-C", tiny_davis_sample, VARIANT)
    pred = _davis_c_layout(run_tree, tmp_path / "pred")
    shutil.rmtree(pred / "low")  # only the clean run was made
    out = tmp_path / "results"
    assert score_main(["--predictions", str(pred), "--method", "m", "--annotations", str(tiny_davis_sample),
                       "--data", str(davis_c), "--out", str(out), "--no-progress"]) == 0
    assert "have no predictions" in capsys.readouterr().err
    lb = build_tables(load_results(out)).leaderboard.set_index("variant")
    assert lb.loc["clean", "status"] == "ok" and lb.loc[VARIANT, "status"] == "missing"
    # a variant the benchmark does not have is refused before anything is scored
    assert score_main(["--predictions", str(_davis_c_layout(run_tree, tmp_path / "pred2")), "--method", "m2",
                       "--annotations", str(tiny_davis_sample), "--data", str(tiny_davis_sample),
                       "--out", str(out), "--no-progress"]) == 2
    assert "not in" in capsys.readouterr().err and not (out / "m2").exists()
