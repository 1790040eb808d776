"""Adversarial cases for the benchmark readers of davis_c.datasets and the sample generator (issue 25 §4, §5;
issue 28 item 3): a missing annotation the layout promises, a malformed meta.json, a sample size that cannot
fit, a DAVIS-2016 root handed to the builder.  Each used to give a wrong number, a traceback or a misleading
message; now each is an error naming the file (and the key)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from common.errors import DavisError
from davis_c.datasets import open_dataset
from davis_c.sample import make_sample

KW = dict(videos=2, frames=8, height=48, width=80, seed=0)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("adv_layouts")
    return {layout: make_sample(base / layout, layout=layout, **KW)
            for layout in ("sav", "mose", "youtube-vos", "davis2016", "lvos")}


@pytest.fixture
def roots(pristine, tmp_path) -> dict[str, Path]:
    """A private copy of every layout, free to damage."""
    out = {}
    for layout, root in pristine.items():
        out[layout] = tmp_path / layout
        shutil.copytree(root, out[layout])
    return out


# ------------------------------------------------------------------------------ promised annotations
def test_sav_missing_object_png_is_an_error_naming_it(roots):
    missing = roots["sav"] / "Annotations_6fps" / "synth-000" / "001" / "00000.png"
    missing.unlink()
    with pytest.raises(DavisError, match=rf"annotation {missing} is missing"):
        open_dataset("sav", roots["sav"]).load("synth-000")


def test_sav_missing_object_png_later_frame(roots):
    missing = roots["sav"] / "Annotations_6fps" / "synth-001" / "000" / "00012.png"
    missing.unlink()
    with pytest.raises(DavisError, match=rf"{missing} is missing"):
        open_dataset("sav", roots["sav"]).load("synth-001")


def test_mose_train_missing_first_png_is_an_error(roots):
    missing = roots["mose"] / "train" / "Annotations" / "synth-000" / "00000.png"
    missing.unlink()
    with pytest.raises(DavisError, match=rf"{missing} is missing \(every frame of this split is annotated\)"):
        open_dataset("mose", roots["mose"], "train").load("synth-000")


def test_mose_train_missing_middle_png_is_an_error(roots):
    missing = roots["mose"] / "train" / "Annotations" / "synth-001" / "00004.png"
    missing.unlink()
    with pytest.raises(DavisError, match=rf"{missing} is missing"):
        open_dataset("mose", roots["mose"], "train").load("synth-001")


def test_mose_valid_missing_first_frame_png_is_an_error(roots):
    missing = roots["mose"] / "valid" / "Annotations" / "synth-001" / "00000.png"
    ann = missing.parent
    extra = ann / "00001.png"  # keep a PNG in the folder, so only the promise can catch it
    shutil.copy2(missing, extra)
    missing.unlink()
    with pytest.raises(DavisError, match=rf"{missing} is missing \(the first frame"):
        open_dataset("mose", roots["mose"], "valid").load("synth-001")


def test_youtube_vos_later_object_png_missing_is_an_error(roots):
    root = roots["youtube-vos"]
    meta = json.loads((root / "valid" / "meta.json").read_text())
    start = meta["videos"]["synth-000"]["objects"]["2"]["frames"][0]
    missing = root / "valid" / "Annotations" / "synth-000" / f"{start}.png"
    missing.unlink()
    with pytest.raises(DavisError, match=rf"{missing} is missing \(.*meta.json gives object\(s\) \[2\] there\)"):
        open_dataset("youtube-vos", root).load("synth-000")


def test_davis2016_missing_annotation_names_the_file(roots):
    ann = next((roots["davis2016"] / "Annotations" / "480p").iterdir())
    missing = ann / "00003.png"
    missing.unlink()
    # with a names list (ImageSets/2016) instead of path pairs, the reader lists the folders
    (roots["davis2016"] / "ImageSets" / "480p" / "val.txt").unlink()
    (roots["davis2016"] / "ImageSets" / "2016").mkdir()
    (roots["davis2016"] / "ImageSets" / "2016" / "val.txt").write_text(ann.name + "\n")
    with pytest.raises(DavisError, match=rf"annotation {missing} is missing"):
        open_dataset("davis2016", roots["davis2016"]).load(ann.name)


# ------------------------------------------------------------------------------ malformed meta.json
@pytest.mark.parametrize("meta, key", [
    ({"videos": {}}, "key 'videos' is empty"),
    ({"videos": ["synth-000"]}, "key 'videos': expected a mapping"),
    ({"videos": {"synth-000": "x"}}, "key 'videos.synth-000': expected a mapping"),
    ({"videos": {"synth-000": {"objects": [1]}}}, "key 'videos.synth-000.objects': expected a mapping"),
    ({"videos": {"synth-000": {"objects": {"1": {"frames": 5}}}}}, "key 'videos.synth-000.objects.1.frames'"),
    ({"videos": {"synth-000": {"objects": {"1": {"frames": [0, 5]}}}}}, "key 'videos.synth-000.objects.1.frames'"),
    ([1, 2], "key '\\(top level\\)'"),
])
def test_malformed_meta_json_names_file_and_key(roots, meta, key):
    path = roots["youtube-vos"] / "valid" / "meta.json"
    path.write_text(json.dumps(meta))
    with pytest.raises(DavisError, match=rf"{path}: {key}"):
        open_dataset("youtube-vos", roots["youtube-vos"])


def test_lvos_meta_wrong_type_names_file_and_key(roots):
    path = roots["lvos"] / "valid" / "valid_meta.json"
    path.write_text(json.dumps({"videos": {"synth-000": {"objects": {"1": ["00000001"]}}}}))
    with pytest.raises(DavisError, match=rf"{path}: key 'videos.synth-000.objects.1'"):
        open_dataset("lvos", roots["lvos"])


# ------------------------------------------------------------------------------ sizes that cannot fit
def test_sample_size_that_cannot_fit_is_refused_before_work(tmp_path, monkeypatch, capsys):
    from davis_c import sample as S

    monkeypatch.setattr(S, "available_memory", lambda: 2**30)
    out = tmp_path / "big"
    try:
        code = S.main(["--out", str(out), "--height", "20000"])
    except SystemExit as exc:
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert "needs about" in err and "GiB of memory per video, more than the 1.0 GiB available" in err
    assert not out.exists()
    assert S.memory_estimate(12, 20000, 432) > 2**30 > S.memory_estimate(12, 240, 432)


# ------------------------------------------------------------------------------ the builder on DAVIS-2016
def test_build_recognises_a_davis2016_root_without_dataset(roots, tmp_path):
    from davis_c import build as B
    from davis_c.store import open_store

    out = tmp_path / "d16.h5"
    B.build(roots["davis2016"], out, corruptions=["contrast"], strengths=["low"], progress=False,
            log=lambda m: None)
    with open_store(out) as s:
        assert s.attrs["dataset"] == "davis2016" and s.attrs["dataset_title"] == "DAVIS-2016-C"


def test_build_help_names_every_root_kind_and_docs(capsys):
    from davis_c import build as B

    with pytest.raises(SystemExit):
        B.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--root ROOT dataset root: a DAVIS-2017 or DAVIS-2016 folder" in text
    assert "docs/building.md" in B.STYLE_HELP and "README section" not in B.STYLE_HELP
