"""JHMDB / VIP label propagation outside the goldens: readers (layouts, split-list column order, strict
errors), protocol settings, pooled metrics, and the sample run -> leaderboard and build "-C" -> run ->
leaderboard paths (tiny sizes)."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from common.errors import DavisError
from davis_c.datasets import detect, open_dataset
from davis_c.datasets.jhmdb import read_joint_positions
from davis_c.sample import make_sample
from harness.correspondence import ProtocolError, pooled_scores, resolve_settings


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    base = tmp_path_factory.mktemp("corr")
    return {layout: make_sample(base / layout, videos=2, frames=5, height=48, width=64, layout=layout)
            for layout in ("jhmdb", "vip")}


# ----------------------------------------------------------------------------------------------- readers
def test_jhmdb_reader_detects_uvc_column_order(roots):
    root = roots["jhmdb"]
    assert detect(root) == "jhmdb"
    ds = open_dataset("jhmdb", root)
    assert ds.column_order == "mat-first" and ds.videos == ["synth-000", "synth-001"]
    video = ds.load("synth-000")
    pos = read_joint_positions(root / "joint_positions" / "synth_action" / "synth-000" / "joint_positions.mat")
    assert np.array_equal(video.joints, pos.transpose(2, 1, 0) - 1)  # 0-based
    assert video.joints.shape == (5, 15, 2) and video.frames.shape == (5, 48, 64, 3)
    assert video.frame_names == ["00001", "00002", "00003", "00004", "00005"]


def test_jhmdb_reader_crw_column_order_and_errors(roots, tmp_path):
    root = tmp_path / "j"
    shutil.copytree(roots["jhmdb"], root)
    lines = (root / "testlist_split1.txt").read_text().split("\n")
    swapped = ["{1} {0}".format(*line.split()) for line in lines if line]
    (root / "crw.txt").write_text("\n".join(swapped) + "\n")
    ds = open_dataset("jhmdb", root, list_file=root / "crw.txt")
    assert ds.column_order == "frames-first" and len(ds.videos) == 2
    (root / "mixed.txt").write_text(lines[0] + "\n" + swapped[1] + "\n")
    with pytest.raises(DavisError, match="mix both column orders"):
        open_dataset("jhmdb", root, list_file=root / "mixed.txt")
    (root / "Rename_Images" / "synth_action" / "synth-001" / "00005.png").unlink()
    with pytest.raises(DavisError, match="annotates 5 frames but .* only 4"):
        ds.load("synth-001")
    mat = root / "joint_positions" / "synth_action" / "synth-000" / "joint_positions.mat"
    mat.unlink()
    with pytest.raises(DavisError, match="joint_positions.mat: joint positions file not found"):
        ds.load("synth-000")


def test_jhmdb_mat_v73_read_with_h5py(tmp_path):
    import h5py

    path = tmp_path / "v73.mat"
    pos = np.arange(2 * 15 * 3, dtype=float).reshape(2, 15, 3)
    with h5py.File(path, "w", userblock_size=512) as fh:
        fh["pos_img"] = pos.T  # MATLAB writes column-major: h5py sees the transpose
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Dec  7 00:00:00 2026 HDF5 schema 1.00 ."
    header = header.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM"
    with open(path, "r+b") as fh:
        fh.write(header.ljust(512, b"\x00"))
    assert np.array_equal(read_joint_positions(path), pos)


def test_vip_reader_and_strict_pairing(roots, tmp_path):
    assert detect(roots["vip"]) == "vip"
    ds = open_dataset("vip", roots["vip"])
    video = ds.load("synth-000")
    assert video.frame_names[:2] == ["000000000001", "000000000026"]
    assert set(np.unique(video.masks[0]).tolist()) <= {0, 4, 8, 13} and list(video.given) == [0]
    root = tmp_path / "v"
    shutil.copytree(roots["vip"], root)
    label = root / "VIP_Fine" / "Annotations" / "Category_ids" / "synth-001" / "000000000051.png"
    label.rename(label.with_name("000000000052.png"))
    with pytest.raises(DavisError, match="000000000051.jpg has no label of the same number"):
        open_dataset("vip", root).load("synth-001")


# ------------------------------------------------------------------------------------------ settings
def test_named_settings():
    s = resolve_settings("jhmdb-pck")
    assert (s["crop"], s["context"], s["k"], s["radius"]) == (320, 7, 10, 12.0)
    assert (s["temperature"], s["temperature_setting"]) == (0.07, "paper")
    s = resolve_settings("vip-miou", {"temperature": "readme", "label_mode": "nearest"})
    assert (s["crop"], s["context"], s["temperature"], s["temperature_setting"], s["label_mode"]) == \
        (560, 4, 0.05, "readme", "nearest")
    assert resolve_settings("vip-miou", {"temperature": 0.1})["temperature_setting"] == "custom"
    with pytest.raises(ProtocolError, match="label_mode"):
        resolve_settings("vip-miou", {"label_mode": "bilinear"})
    with pytest.raises(ProtocolError, match="do not apply"):
        resolve_settings("jhmdb-pck", {"label_mode": "nearest"})


def test_pooled_scores_refuse_mixed_settings():
    hist = np.zeros((20, 20), int)
    hist[0, 0] = 5
    recs = [{"protocol": "vip-miou", "settings": {"label_mode": m}, "hist": hist.tolist(), "seed": 1, "video": v,
             "status": "ok", "label_mode": m} for v, m in (("a", "released"), ("b", "nearest"))]
    with pytest.raises(ProtocolError, match="different protocols or settings"):
        pooled_scores(recs)
    assert pooled_scores(recs[:1])["mIoU"] == 100.0


# ------------------------------------------------------------------------------------------ end to end
def _run(data, out, *extra):
    from harness.cli import main as run_main

    return run_main(["--method", "labelprop", "--no-progress", "--data", str(data), "--out", str(out), *extra])


@pytest.mark.parametrize("layout,crop,metric", [("jhmdb", 64, "PCK@0.1"), ("vip", 64, "mIoU")])
def test_sample_run_build_c_run_leaderboard(roots, tmp_path, layout, crop, metric):
    from davis_c import build as builder
    from leaderboard.build import build as build_leaderboard

    root = roots[layout]
    settings = ["--set", f"propagation.crop={crop}"]
    assert _run(root, tmp_path / "clean_res", "--dataset", layout, *settings) == 0
    rec = json.loads((tmp_path / "clean_res" / "labelprop" / "clean" / "synth-000" / "seed1.json").read_text())
    assert rec["status"] == "ok" and rec["protocol"] == f"{layout}-{'pck' if layout == 'jhmdb' else 'miou'}"
    assert rec["settings"]["crop"] == crop and rec["temperature_setting"] == "paper"
    if layout == "vip":
        assert rec["label_mode"] == "released" and np.asarray(rec["hist"]).shape == (20, 20)
    else:
        assert len(rec["pck_dist"]) == 15
    lb = build_leaderboard(tmp_path / "clean_res", tmp_path / "lb_clean")
    df = pd.read_csv(lb["propagation.csv"])
    assert df.variant.tolist() == ["clean"] and df.metric.iloc[0] == metric
    store = tmp_path / f"{layout}_c.h5"
    assert builder.main(["--root", str(root), "--dataset", layout, "--out", str(store), "--corruptions",
                         "gaussian_noise", "--strengths", "high", "--quiet"]) == 0
    assert _run(store, tmp_path / "c_res", *settings) == 0
    lb = build_leaderboard(tmp_path / "c_res", tmp_path / "lb_c")
    df = pd.read_csv(lb["propagation.csv"])
    assert df.variant.tolist() == ["clean", "high/gaussian_noise"]
    clean_direct = pd.read_csv(tmp_path / "lb_clean" / "propagation.csv").value.iloc[0]
    assert df.value.iloc[0] == pytest.approx(clean_direct)  # the "-C" clean copy scores as the root does
    checked = 0
    for value, rel in (("value", "relative"), ("value2", "relative2")):  # percent of clean (NaN where clean is 0)
        if df[value].iloc[0] > 0:
            assert df[rel].iloc[1] == pytest.approx(100 * df[value].iloc[1] / df[value].iloc[0])
            checked += 1
        else:
            assert np.isnan(df[rel].iloc[1])
    assert checked  # the weight-free encoder on this tiny sample scores above 0 on at least one metric
    strength = pd.read_csv(lb["propagation_strength.csv"])
    assert strength.strength.tolist() == ["high"]
    assert "Label propagation" in lb["propagation.md"].read_text()


def _ground_truth_as_predictions(ds, layout: str, pred):
    """Each video's ground truth in harness.score's documented format for ``layout`` (a perfect "tool")."""
    from PIL import Image

    pred.mkdir()
    for name in ds.videos:
        v = ds.load(name)
        if layout == "jhmdb":
            np.save(pred / f"{name}.npy", v.joints)
        else:
            (pred / name).mkdir()
            for fname, m in zip(v.frame_names, v.masks):
                Image.fromarray(m, mode="L").save(pred / name / f"{fname}.png")
    return pred


@pytest.mark.parametrize("layout", ["jhmdb", "vip"])
def test_harness_score_imports_predictions(roots, tmp_path, layout):
    """Predictions of another tool in the documented format: the ground truth itself scores 100."""
    from harness.score import main as score_main

    ds = open_dataset(layout, roots[layout])
    pred = _ground_truth_as_predictions(ds, layout, tmp_path / "pred")
    out = tmp_path / "res"
    assert score_main(["--predictions", str(pred), "--method", "gt", "--annotations", str(roots[layout]),
                       "--dataset", layout, "--out", str(out)]) == 0
    from harness.correspondence import pooled_scores
    from harness.results import read_units

    s = pooled_scores(read_units(out, "gt"))
    assert s["PCK@0.1" if layout == "jhmdb" else "mIoU"] == 100.0
    (pred / ds.videos[0]).with_suffix(".npy").unlink() if layout == "jhmdb" else \
        next((pred / ds.videos[0]).iterdir()).unlink()
    assert score_main(["--predictions", str(pred), "--method", "gt2", "--annotations", str(roots[layout]),
                       "--dataset", layout, "--out", str(out)]) == 1


def test_leaderboard_tables_published_and_relative(tmp_path):
    """Pooled mIoU per variant, relative to clean, per strength, and CRW's published number (real runs only)."""
    from leaderboard.propagation import load_propagation, propagation_markdown

    def unit(method, variant, video, diag, random_init=False):
        hist = np.zeros((20, 20), int)
        hist[0, 0], hist[13, 13], hist[13, 0] = 100, diag, 10
        rec = {"schema": "davis-c-unit/1", "method": method, "variant": variant, "video": video, "seed": 1,
               "status": "ok", "protocol": "vip-miou", "dataset": "vip", "hist": hist.tolist(),
               "settings": {"label_mode": "released"}, "label_mode": "released", "temperature_setting": "paper",
               "random_init": random_init}
        path = tmp_path / method / variant / video / "seed1.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(rec))

    for method, ri in (("crw", False), ("labelprop", True)):
        for video in ("a", "b"):
            unit(method, "clean", video, 90, ri)
            unit(method, "high/contrast", video, 40, ri)
    t = load_propagation(tmp_path)
    clean = t.variants[(t.variants.method == "crw") & (t.variants.variant == "clean")].iloc[0]
    # one histogram over both videos: IoU_0 = 200 / 220, IoU_13 = 180 / 200
    assert clean.value == pytest.approx(100 * (200 / 220 + 180 / 200) / 2)
    high = t.variants[(t.variants.method == "crw") & (t.variants.variant == "high/contrast")].iloc[0]
    assert high.relative == pytest.approx(100 * high.value / clean.value)
    assert t.strengths[t.strengths.method == "crw"].relative.iloc[0] == pytest.approx(high.relative)
    md = propagation_markdown(t)
    assert "| crw | vip | clean | mIoU |" in md and "| 38.6 |" in md
    assert md.count("| 38.6 |") == 1  # not next to the random-init run


@pytest.mark.parametrize("layout", ["jhmdb", "vip"])
def test_imported_propagation_units_carry_an_identity_and_are_reused_by_it(roots, tmp_path, layout):
    """Imported keypoints / parts go through harness.units (identity stamped, pooled fields checked): an
    unchanged rerun reuses every unit, an edited prediction is rescored, and other ground truth is refused."""
    import json
    import shutil

    from PIL import Image

    from harness.identity import video_annotations_digest
    from harness.score import main as score_main

    ds = open_dataset(layout, roots[layout])
    pred = _ground_truth_as_predictions(ds, layout, tmp_path / "pred")
    out = tmp_path / "res"
    args = ["--predictions", str(pred), "--method", "tool", "--annotations", str(roots[layout]),
            "--dataset", layout, "--out", str(out)]
    assert score_main(args) == 0
    first = ds.videos[0]
    path = next((out / "tool" / "clean" / first).glob("seed*.json"))
    rec = json.loads(path.read_text())
    assert rec["data_id"] and rec["predictions_sha256"] and rec["unit_id"]
    assert rec["annotations_sha256"] == video_annotations_digest(ds.load(first))
    stamp = path.stat().st_mtime_ns
    assert score_main(args) == 0 and path.stat().st_mtime_ns == stamp          # reused, not rewritten
    if layout == "jhmdb":
        np.save(pred / f"{first}.npy", ds.load(first).joints + 3.0)             # another tool's output
    else:
        png = sorted((pred / first).iterdir())[1]
        Image.fromarray(np.zeros_like(np.asarray(Image.open(png))), mode="L").save(png)
    assert score_main(args) == 0 and path.stat().st_mtime_ns != stamp          # rescored
    assert json.loads(path.read_text())["predictions_sha256"] != rec["predictions_sha256"]
    other = tmp_path / "other_root"
    shutil.copytree(roots[layout], other)
    if layout == "jhmdb":  # the joints are part of what a unit was scored against
        import scipy.io

        mat = next(other.rglob("joint_positions.mat"))
        data = scipy.io.loadmat(mat)
        data["pos_img"] = data["pos_img"] + 1.0
        scipy.io.savemat(mat, {k: v for k, v in data.items() if not k.startswith("__")})
        assert video_annotations_digest(open_dataset(layout, other).load(mat.parent.name)) != \
            video_annotations_digest(ds.load(mat.parent.name))
        assert score_main([*args[:5], str(other), *args[6:]]) == 2                # refused, naming both sides
        assert all(json.loads(p.read_text())["status"] == "ok" for p in (out / "tool").rglob("seed*.json"))


def test_write_unit_checks_the_pooled_fields(tmp_path):
    from harness.units import RecordError, Unit, UnitIdentity, new_record, write_unit

    unit = Unit("m", "clean", "v", 1)
    ident = UnitIdentity(data={"kind": "annotations", "video": "v"}, data_path="root", annotations_sha256="a")
    ok = new_record(unit, protocol="jhmdb-pck", pck_dist=[[0.1, 0.2], [0.0]])
    write_unit(tmp_path, unit, ok, ident)
    for bad in ({"pck_dist": []}, {"pck_dist": [[float("nan")]]}, {"pck_dist": [[-1.0]]}):
        with pytest.raises(RecordError, match="pck_dist"):
            write_unit(tmp_path, unit, {**ok, **bad}, ident)
    vip = new_record(unit, protocol="vip-miou", hist=[[1, 0], [0, 2]])
    write_unit(tmp_path, unit, vip, ident)
    for bad in ({"hist": [[1, 0]]}, {"hist": [[1, -1], [0, 2]]}, {"hist": None}):
        with pytest.raises(RecordError, match="hist"):
            write_unit(tmp_path, unit, {**vip, **bad}, ident)
