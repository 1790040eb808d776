"""Adversarial cases for ``harness.evaluate`` (issue 25 §4, §5): CSV quoting, workers."""
from __future__ import annotations

import shutil

import pandas as pd

from harness.evaluate import main


def _root_with_video(davis, tmp_path, name: str):
    root = shutil.copytree(davis, tmp_path / "DAVIS")
    old = sorted((root / "Annotations" / "480p").iterdir())[0].name
    for sub in ("Annotations", "JPEGImages"):
        (root / sub / "480p" / old).rename(root / sub / "480p" / name)
    sets = root / "ImageSets" / "2017" / "val.txt"
    sets.write_text(sets.read_text().replace(old, name))
    return root


def test_odd_video_name_survives_the_per_video_csv(tiny_davis_sample, tmp_path):
    name = 'a,b"c'
    root = _root_with_video(tiny_davis_sample, tmp_path, name)
    preds = shutil.copytree(root / "Annotations" / "480p", tmp_path / "P")
    out = tmp_path / "E"
    assert main(["--davis", str(root), "--results", str(preds), "--out", str(out), "--quiet",
                 "--per-frame", str(tmp_path / "f.csv")]) == 0
    per_video = pd.read_csv(out / "davis_c_per-video_results-val.csv")
    assert name in set(per_video.Video) and len(per_video) == 2 and (per_video["J&F-Mean"] == 1.0).all()
    per_seq = pd.read_csv(out / "per-sequence_results-val.csv")
    assert any(s.startswith(name + "_") for s in per_seq.Sequence)
    assert name in set(pd.read_csv(tmp_path / "f.csv").video)


def test_too_many_workers_are_noted_before_work(tiny_davis_sample, tmp_path, capsys, monkeypatch):
    import harness.devices as D

    monkeypatch.setattr(D, "usable_cores", lambda: 1)
    preds = shutil.copytree(tiny_davis_sample / "Annotations" / "480p", tmp_path / "P")
    assert main(["--davis", str(tiny_davis_sample), "--results", str(preds), "--out", str(tmp_path / "E"),
                 "--quiet", "--workers", "64"]) == 0
    err = capsys.readouterr().err
    assert "note: --workers 64" in err and "GiB" in err
