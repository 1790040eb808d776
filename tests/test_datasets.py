"""davis_c.datasets readers on the synthetic layouts of davis_c.sample and on the real DAVIS-2016 videos."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from davis_c.datasets import DATASETS, Davis2017, VOSDataset, corrupted_name, detect, open_dataset
from common.errors import DavisError
from davis_c.sample import LAYOUTS, make_sample, render_video

KW = dict(videos=2, frames=8, height=48, width=80, seed=0)


@pytest.fixture(scope="module")
def roots(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("layouts")
    return {layout: make_sample(base / layout, layout=layout, **KW) for layout in LAYOUTS}


def _reference(i: int = 0):
    """The frames/labels the sample renders for video i of a multi-object layout (object 2 from frame 2)."""
    return render_video(np.random.default_rng([0, i]), 8, 48, 80, n_objects=2, hidden_before={2: 2})


def test_every_layout_has_a_reader_and_detect_knows_the_unambiguous_ones(roots):
    assert set(LAYOUTS) == set(DATASETS)
    assert detect(roots["davis2017"]) == "davis2017"
    assert detect(roots["davis2016"]) == "davis2016"
    assert detect(roots["sav"]) == "sav"
    assert detect(roots["mose"]) is None  # <split>/JPEGImages is shared by YouTube-VOS, MOSE and LVOS
    assert corrupted_name("youtube-vos") == "YouTube-VOS-C" and corrupted_name("davis16") == "DAVIS-2016-C"


def test_davis2017_reader_is_a_vos_dataset(roots):
    ds = open_dataset("davis2017", roots["davis2017"])
    assert type(ds) is Davis2017 and isinstance(ds, VOSDataset) and ds.protocol == "davis2017"
    v = ds.load("synth-001")
    assert ds.videos == ["synth-000", "synth-001"] and ds.scored_locally and ds.split == "val"
    with Image.open(roots["davis2017"] / "JPEGImages/480p/synth-001/00003.jpg") as img:
        assert np.array_equal(v.frames[3], np.asarray(img.convert("RGB")))
    with Image.open(roots["davis2017"] / "Annotations/480p/synth-001/00003.png") as img:
        assert np.array_equal(v.masks[3], np.asarray(img))
    assert v.given is None and list(v.given_masks()) == [0]
    assert v.annotated_frames() == tuple(range(8)) == v.required_frames()


def test_davis2016_layout_is_binary_and_pairs(roots):
    root = roots["davis2016"]
    line = (root / "ImageSets/480p/val.txt").read_text().splitlines()[0]
    assert line == "/JPEGImages/480p/synth-000/00000.jpg /Annotations/480p/synth-000/00000.png"
    with Image.open(root / "Annotations/480p/synth-000/00003.png") as img:
        assert img.mode == "L" and set(np.unique(np.asarray(img)).tolist()) <= {0, 255}
    v = open_dataset("davis2016", root).load("synth-000")
    assert v.object_ids == (1,) and set(np.unique(v.masks).tolist()) == {0, 1}
    _, lab = render_video(np.random.default_rng([0, 0]), 8, 48, 80, n_objects=1)
    assert np.array_equal(v.masks, (lab > 0).astype(np.uint8))


def test_davis2016_real_videos(shared):
    root = shared / "real_davis16"
    if not root.is_dir():
        pytest.skip("../shared/real_davis16 not present")
    ds = open_dataset(None, root)
    assert ds.name == "davis2016" and ds.videos == ["blackswan", "car-shadow", "libby", "motocross-jump"]
    v = ds.load("car-shadow")
    assert v.frames.shape == (40, 480, 854, 3) and v.masks.shape == (40, 480, 854)
    assert v.object_ids == (1,) and v.masks.max() == 1
    with Image.open(root / "Annotations/480p/car-shadow/00017.png") as img:
        raw = np.asarray(img)
    assert np.array_equal(v.masks[17], (raw > 0).astype(np.uint8)) and raw.max() == 255
    assert v.frame_names[0] == "00000" and v.frame_names[-1] == "00039"


def test_youtube_vos_valid_sparse_frames_and_later_object(roots):
    ds = open_dataset("youtube-vos", roots["youtube-vos"], "valid")
    assert not ds.scored_locally and ds.videos == ["synth-000", "synth-001"]
    v = ds.load("synth-000")
    assert v.frame_names == [f"{5 * t:05d}" for t in range(8)]
    given = v.given_masks()
    assert sorted(given) == [0, 2]  # object 2 enters at sampled frame 8 // 3 = 2 (frame name 00010)
    assert set(np.unique(given[0]).tolist()) == {0, 1} and set(np.unique(given[2]).tolist()) == {0, 2}
    assert v.annotated_frames() == (0, 2) and v.required_frames() == tuple(range(8))
    rgb, lab = render_video(np.random.default_rng([0, 0]), 36, 48, 80, n_objects=2, hidden_before={2: 10})
    assert np.array_equal(given[2] == 2, lab[10] == 2)
    full = open_dataset("youtube-vos", roots["youtube-vos"], "valid", all_frames=True).load("synth-000")
    assert len(full) == 36 and sorted(full.given_masks()) == [0, 10]
    assert full.required_frames() == tuple(range(0, 36, 5))  # meta.json's frame lists


def test_mose_train_and_valid(roots):
    train = open_dataset("mose", roots["mose"], "train")
    valid = open_dataset("mose", roots["mose"], "valid")
    assert train.scored_locally and not valid.scored_locally
    _, lab = _reference()
    v = train.load("synth-000")
    assert np.array_equal(v.masks, lab) and sorted(v.given_masks()) == [0, 2]
    assert v.annotated_frames() == tuple(range(8))
    w = valid.load("synth-000")
    assert list(w.given_masks()) == [0] and w.annotated_frames() == (0,) and w.object_ids == (1,)


def test_lvos_names_and_meta(roots):
    ds = open_dataset("lvos", roots["lvos"], "valid")
    meta = json.loads((roots["lvos"] / "valid/valid_meta.json").read_text())
    assert meta["videos"]["synth-000"]["objects"]["2"]["frame_range"]["start"] == "00000003"
    v = ds.load("synth-000")
    assert v.frame_names[0] == "00000001" and sorted(v.given_masks()) == [0, 2]
    assert ds.scored_locally


def test_sav_per_object_masks(roots):
    root = roots["sav"]
    assert (root / "sav_val.txt").read_text().split() == ["synth-000", "synth-001"]
    assert sorted(p.name for p in (root / "Annotations_6fps/synth-000").iterdir()) == ["000", "001"]
    v = open_dataset("sav", root).load("synth-000")
    assert len(v) == 29 and v.annotated_frames() == tuple(range(0, 29, 4)) == v.required_frames()
    assert v.object_names == {1: "000", 2: "001"} and sorted(v.given_masks()) == [0, 8]
    _, lab = render_video(np.random.default_rng([0, 0]), 29, 48, 80, n_objects=2, hidden_before={2: 8})
    assert np.array_equal(v.object_masks[2][12], lab[12] == 2)
    assert not v.object_masks[2][4].any()


def test_errors_name_the_file(roots, tmp_path):
    with pytest.raises(DavisError, match="cannot tell which dataset"):
        open_dataset(None, roots["mose"])
    with pytest.raises(DavisError, match="unknown dataset"):
        open_dataset("kitti", roots["mose"])
    bad = tmp_path / "d16"
    (bad / "ImageSets/480p").mkdir(parents=True)
    (bad / "ImageSets/480p/val.txt").write_text("/JPEGImages/480p/a/00000.jpg /Annotations/480p/b/00000.png\n")
    with pytest.raises(DavisError, match="val.txt:1: image .* not the same"):
        open_dataset("davis2016", bad)
    with pytest.raises(DavisError, match="folder not found"):
        open_dataset("lvos", roots["mose"], "test")


def test_sample_cli_layout(tmp_path, capsys):
    from davis_c.sample import main

    assert main(["--out", str(tmp_path / "s"), "--layout", "lvos", "--videos", "1", "--frames", "4",
                 "--height", "32", "--width", "48"]) == 0
    assert "wrote synthetic lvos sample" in capsys.readouterr().out
    assert (tmp_path / "s/valid/valid_meta.json").is_file()
    assert open_dataset("lvos", tmp_path / "s").load("synth-000").frame_names == [f"{t:08d}" for t in range(1, 5)]
    with pytest.raises(ValueError, match="unknown layout"):
        make_sample(tmp_path / "t", layout="kitti")
