"""harness.run on other benchmarks' roots: local scoring by their rules, submissions for private splits."""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from davis_c.sample import make_sample
from harness.data import DatasetSource, open_source
from harness.results import read_unit
from harness.cli import main as run_main
from harness.submission import SubmissionError, main as submission_main, write_submission

KW = dict(videos=2, frames=8, height=48, width=80, seed=0)


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("harness_layouts")
    return {layout: make_sample(base / layout, layout=layout, **KW)
            for layout in ("davis2016", "youtube-vos", "mose", "sav")}


def _run(*args) -> int:
    return run_main(["--method", "labelprop", "--no-progress", *args])


def test_open_source_picks_the_reader(roots):
    assert isinstance(open_source(roots["davis2016"]), DatasetSource)  # recognised from the layout
    src = open_source(roots["mose"], dataset="mose", split="train")
    assert src.videos == ["synth-000", "synth-001"] and src.spec()["dataset"] == "mose"
    again = open_source(**src.spec())  # what a worker process does
    assert again.dataset.split == "train"


@pytest.mark.parametrize("layout,dataset,split,protocol", [("mose", "mose", "train", "after-first"),
                                                           ("davis2016", "davis2016", None, "davis2016"),
                                                           ("sav", "sav", None, "sav")])
def test_scored_locally_by_the_benchmark_rules(roots, tmp_path, capsys, layout, dataset, split, protocol):
    args = ["--data", str(roots[layout]), "--dataset", dataset, "--out", str(tmp_path)]
    if split:
        args += ["--split", split]
    assert _run(*args) == 0
    rec = read_unit(tmp_path / "labelprop" / "clean" / "synth-000" / "seed1.json")
    assert rec["status"] == "ok" and rec["protocol"] == protocol and rec["scoring"] == "local"
    assert rec["dataset"] == dataset and 0 <= rec["JF"] <= 1
    ids = [o["id"] for o in rec["objects"]]
    assert ids == ([1] if dataset == "davis2016" else [1, 2])  # video 0: object 2 appears later
    assert "J&F" in capsys.readouterr().out


def test_private_split_saves_the_server_frames_and_zips_them(roots, tmp_path, capsys):
    out = tmp_path / "res"
    assert _run("--data", str(roots["youtube-vos"]), "--dataset", "youtube-vos", "--split", "valid",
                "--out", str(out)) == 0
    assert "submit to score" in capsys.readouterr().out
    rec = read_unit(out / "labelprop" / "clean" / "synth-000" / "seed1.json")
    assert rec["scoring"] == "server" and rec["JF"] is None and rec["submission_frames"] == 8
    zpath = tmp_path / "sub.zip"
    assert submission_main(["--out", str(out), "--method", "labelprop", "--zip", str(zpath)]) == 0
    with zipfile.ZipFile(zpath) as zf:
        names = zf.namelist()
        assert sorted(n for n in names if "synth-000" in n) == [f"Annotations/synth-000/{5 * t:05d}.png"
                                                               for t in range(8)]
        with zf.open("Annotations/synth-000/00020.png") as fh, Image.open(fh) as img:
            assert img.mode == "P" and img.size == (80, 48)
            ids = set(np.unique(np.asarray(img)).tolist())
    assert ids <= {0, 1, 2} and 2 in ids  # object 2 (given at 00010) is in the predictions after it
    assert len(names) == 16
    # the leaderboard reads the same units and shows "submit to score" instead of a number
    from leaderboard.results import load_results
    from leaderboard.tables import build_tables, leaderboard_display

    tables = build_tables(load_results(out))
    row = leaderboard_display(tables.leaderboard).iloc[0]
    assert row["J&F"] == "submit to score" and row["J"] == "submit to score"


def test_submission_refuses_incomplete_results(roots, tmp_path):
    out = tmp_path / "res"
    assert _run("--data", str(roots["youtube-vos"]), "--dataset", "youtube-vos", "--out", str(out),
                "--videos", "synth-000") == 0
    mask = out / "labelprop" / "clean" / "synth-000" / "seed1" / "00035.png"
    mask.unlink()
    with pytest.raises(SubmissionError, match="7 mask PNGs"):
        write_submission(out, "labelprop", tmp_path / "x.zip")
    assert not (tmp_path / "x.zip").exists()


@pytest.mark.slow
def test_davis2016_real_video(shared, tmp_path):
    """The DAVIS-2016 example on one real video, at a reduced model resolution to stay fast on CPU (the
    masks are scored at 854x480)."""
    root = shared / "real_davis16"
    if not root.is_dir():
        pytest.skip("../shared/real_davis16 not present")
    from harness.metrics import j_measure

    assert _run("--data", str(root), "--dataset", "davis2016", "--videos", "car-shadow", "--set",
                "resolution=96", "--save-masks", "--out", str(tmp_path)) == 0
    rec = read_unit(tmp_path / "labelprop" / "clean" / "car-shadow" / "seed1.json")
    assert rec["protocol"] == "davis2016" and rec["n_frames"] == 40 and len(rec["per_frame"]["frames"]) == 38
    # the claimed J is the DAVIS-2016 J of the saved masks (frames 1..38, object = any non-zero pixel)
    masks = tmp_path / "labelprop" / "clean" / "car-shadow" / "seed1"
    j = []
    for t in range(1, 39):
        with Image.open(masks / f"{t:05d}.png") as p, Image.open(root / f"Annotations/480p/car-shadow/{t:05d}.png") as g:
            j.append(j_measure(np.asarray(g) > 0, np.asarray(p) > 0))
    assert rec["J"] == pytest.approx(float(np.mean(j)), abs=1e-12) and rec["J"] > 0.2


def test_corrupted_build_of_another_dataset_runs_and_scores(roots, tmp_path):
    """davis_c.build --dataset mose --split train: same HDF5 layout, named MOSE-C, given masks and
    annotated frames come back, and harness.run scores its variants by the MOSE rules."""
    from davis_c import build as builder
    import davis_c

    out = tmp_path / "mose_c.h5"
    assert builder.main(["--root", str(roots["mose"]), "--dataset", "mose", "--split", "train", "--out", str(out),
                         "--corruptions", "contrast", "motion_blur", "--strengths", "high", "--quiet"]) == 0
    with davis_c.open(out) as store:
        assert store.attrs["dataset_title"] == "MOSE-C" and store.attrs["split"] == "train"
        v = store["high", "motion_blur", "synth-000"]
        ref = open_source(roots["mose"], dataset="mose", split="train").load("clean", "synth-000")
        assert sorted(v.given_masks()) == sorted(ref.given_masks()) == [0, 2]
        assert np.array_equal(v.masks, ref.masks) and v.annotated == ref.annotated and v.dataset == "mose"
        assert not np.array_equal(v.frames, ref.frames)
    res = tmp_path / "res"
    assert _run("--data", str(out), "--out", str(res), "--variants", "high/*", "--videos", "synth-000") == 0
    rec = read_unit(res / "labelprop" / "high" / "contrast" / "synth-000" / "seed1.json")
    assert rec["protocol"] == "after-first" and rec["dataset"] == "mose" and [o["id"] for o in rec["objects"]] == [1, 2]
