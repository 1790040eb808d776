"""harness.evaluate: byte-identical official CSVs on davis_mini, no stale CSVs, clear errors."""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from davis_c.masks import read_mask, write_mask
from harness.evaluate import evaluate_results, global_scores, main

CSV_NAMES = ("global_results-val.csv", "per-sequence_results-val.csv")


@pytest.fixture
def mini(golden, tmp_path) -> tuple[Path, Path, Path]:
    """(DAVIS root, writable copy of the results folder, folder of the official CSVs)."""
    base = golden / "jf" / "davis_mini"
    results = tmp_path / "results"
    shutil.copytree(base / "results", results)
    for p in [results, *results.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    return base / "DAVIS", results, base / "official_csv"


def test_cli_reproduces_the_official_csv_files_byte_for_byte(mini, tmp_path, capsys):
    root, results, official = mini
    per_frame = tmp_path / "pf.csv"
    assert main(["--davis", str(root), "--results", str(results), "--per-frame", str(per_frame), "--quiet"]) == 0
    for name in CSV_NAMES:  # written into the results folder by default, as the official script does
        assert (results / name).read_bytes() == (official / name).read_bytes(), name
    out = capsys.readouterr().out
    assert "wrote" in out and "96 frame-objects" in out
    # our per-video table: mean over the video's objects
    rows = list(csv.DictReader((results / "davis_c_per-video_results-val.csv").open()))
    assert [r["Video"] for r in rows][0] == "seq-decay" and len(rows) == 6
    assert float(rows[0]["J-Mean"]) == pytest.approx((0.588 + 0.623) / 2, abs=1e-3)


def test_per_frame_csv_and_global_scores_match_the_goldens(mini, golden, tmp_path):
    root, results, _ = mini
    z = np.load(golden / "jf" / "cases.npz")
    out = tmp_path / "out"
    per_frame = tmp_path / "pf.csv"
    assert main(["--davis", str(root), "--results", str(results), "--out", str(out), "--per-frame",
                 str(per_frame), "--quiet", "--set", "val"]) == 0
    assert not (results / CSV_NAMES[0]).exists() and (out / CSV_NAMES[0]).is_file()
    rows = list(csv.DictReader(per_frame.open()))
    assert len(rows) == 6 * 2 * 8
    seq_to_case = dict(zip(
        [(root / "ImageSets/2017/val.txt").read_text().split()][0], z["seqset_case_ids"]))
    for r in rows:
        c = seq_to_case[r["video"]]
        t, k = int(r["frame"]), int(r["object"])
        assert abs(float(r["J"]) - z[f"{c}_J"][k - 1, t]) <= 1e-9
        assert abs(float(r["F"]) - z[f"{c}_F"][k - 1, t]) <= 1e-9
    scores = evaluate_results(root, results, progress=False)
    np.testing.assert_allclose(global_scores(scores), z["seqset_global"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(np.concatenate([s.stats for s in scores]), z["seqset_per_object"], rtol=0, atol=1e-9)
    assert [n for s in scores for n in s.object_names] == list(z["seqset_object_names"])


def test_stale_csv_is_never_reused(mini, capsys):
    root, results, official = mini
    for name in CSV_NAMES:
        (results / name).write_text("J&F-Mean,J-Mean,J-Recall,J-Decay,F-Mean,F-Recall,F-Decay\n"
                                    "0.999,0.999,0.999,0.999,0.999,0.999,0.999\n")
    assert main(["--davis", str(root), "--results", str(results), "--quiet"]) == 0
    for name in CSV_NAMES:
        assert (results / name).read_bytes() == (official / name).read_bytes()
    # and a failing run does not leave the previous run's CSVs looking current
    (results / "seq-plain" / "00004.png").unlink()
    assert main(["--davis", str(root), "--results", str(results), "--quiet"]) == 1
    assert not any((results / name).exists() for name in CSV_NAMES)
    assert "seq-plain" in capsys.readouterr().err


def test_first_and_last_predictions_are_not_read(mini):
    root, results, official = mini
    for video in results.iterdir():
        (video / "00000.png").unlink()
        (video / "00009.png").write_bytes(b"garbage")
    assert main(["--davis", str(root), "--results", str(results), "--quiet"]) == 0
    assert (results / CSV_NAMES[0]).read_bytes() == (official / CSV_NAMES[0]).read_bytes()


def test_workers_give_identical_files(mini, tmp_path):
    root, results, official = mini
    assert main(["--davis", str(root), "--results", str(results), "--workers", "2", "--quiet"]) == 0
    for name in CSV_NAMES:
        assert (results / name).read_bytes() == (official / name).read_bytes()


def _run_error(root, results, capsys) -> str:
    assert main(["--davis", str(root), "--results", str(results), "--quiet"]) == 1
    assert not (results / CSV_NAMES[0]).exists()
    return capsys.readouterr().err


def test_extra_label_is_an_error_naming_video_and_frame(mini, capsys):
    root, results, _ = mini
    png = results / "seq-half" / "00003.png"
    m = read_mask(png).copy()
    m[0, 0] = 3
    write_mask(png, m)
    err = _run_error(root, results, capsys)
    assert "seq-half" in err and "00003" in err and "label 3" in err


def test_missing_frame_is_an_error_naming_video_and_frame(mini, capsys):
    root, results, _ = mini
    (results / "seq-vanish" / "00006.png").unlink()
    err = _run_error(root, results, capsys)
    assert "seq-vanish" in err and "frame 00006 not found" in err
    shutil.rmtree(results / "seq-vanish")
    err = _run_error(root, results, capsys)
    assert "seq-vanish" in err and "prediction folder not found" in err


def test_wrong_size_and_rgb_predictions(mini, capsys):
    root, results, _ = mini
    write_mask(results / "seq-plain" / "00002.png", np.zeros((10, 10), np.uint8))
    err = _run_error(root, results, capsys)
    assert "seq-plain" in err and "00002.png is 10x10" in err
    Image.new("RGB", (200, 120)).save(results / "seq-plain" / "00002.png")
    err = _run_error(root, results, capsys)
    assert "00002.png" in err and "palette" in err


def test_bad_dataset_and_results_paths(mini, tmp_path, capsys):
    root, results, _ = mini
    assert main(["--davis", str(tmp_path / "nope"), "--results", str(results), "--quiet"]) == 1
    assert "nope" in capsys.readouterr().err
    assert main(["--davis", str(root), "--results", str(tmp_path / "none"), "--quiet"]) == 1
    assert "results folder not found" in capsys.readouterr().err
    assert main(["--davis", str(root), "--results", str(results), "--set", "train", "--quiet"]) == 1
    assert "train.txt" in capsys.readouterr().err


def test_ground_truth_as_prediction_scores_perfectly(davis_sample, tmp_path):
    results = tmp_path / "gt_results"
    shutil.copytree(davis_sample / "Annotations" / "480p", results)
    scores = evaluate_results(davis_sample, results, progress=False)
    assert all((s.J == 1).all() and (s.F == 1).all() for s in scores)
    assert global_scores(scores)[0] == 1.0
