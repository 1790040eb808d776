"""Adversarial cases for the leaderboard over mixed trees (issue 25 §2): like with like, counts in every
cell, partial methods marked everywhere, names the reader would skip refused when written."""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml

from harness.results import write_run_json
from harness.units import RecordError, Unit, UnitIdentity, new_record, write_unit
from leaderboard.results import load_results
from leaderboard.tables import build_tables, corruption_display, leaderboard_display, summary_display

REPO = Path(__file__).resolve().parents[1]


def _record(root: Path, method: str, variant: str, video: str, jf: float, *, frames: str = "f" * 64,
            annotations: str = "a" * 64, build_key: str | None = None, seed: int = 1) -> None:
    unit = Unit(method, variant, video, seed)
    rec = new_record(unit)
    rec.update(objects=[{"id": 1, "J": jf, "F": jf, "JF": jf}], J=jf, F=jf, JF=jf, n_frames=5)
    data = {"kind": "test", "variant": variant, "video": video, "frames_sha256": frames, "build_key": build_key}
    write_unit(root, unit, rec, UnitIdentity(data=data, annotations_sha256=annotations))


def _run_json(root: Path, method: str, videos: list[str], variants=("clean",)) -> None:
    write_run_json(root, method, {"method": method, "config": {"model": method}, "random_init": False,
                                  "checkpoint_sha256": None, "seeds": [1], "variants": list(variants),
                                  "videos": videos})


def test_a_unit_of_other_data_is_named_and_not_averaged(tmp_path):
    root = tmp_path / "R"
    for m in ("a", "b", "c"):
        _run_json(root, m, ["v1", "v2"])
        _record(root, m, "clean", "v1", 0.8)
        _record(root, m, "clean", "v2", 0.6)
    # a unit copied from a results tree of another build: other frames behind the same (variant, video)
    _record(root, "b", "clean", "v2", 0.99, frames="e" * 64)
    res = load_results(root)
    bad = [p for p in res.problems if "computed on other data" in p]
    assert len(bad) == 1 and str(root / "b" / "clean" / "v2" / "seed1.json") in bad[0].split(":")[0]
    t = build_tables(res)
    row = t.summary.set_index("method").loc["b"]
    assert pd.isna(row["clean"])  # never averaged in: the cell is incomplete, not 0.895
    assert t.summary.set_index("method").loc["a", "clean"] == pytest.approx(0.7)


def test_a_tie_averages_neither_side(tmp_path):
    root = tmp_path / "R"
    for m, frames in (("a", "f" * 64), ("b", "e" * 64)):
        _run_json(root, m, ["v1"])
        _record(root, m, "clean", "v1", 0.8, frames=frames)
    res = load_results(root)
    assert len([p for p in res.problems if "other data" in p]) == 2
    assert build_tables(res).summary["clean"].isna().all()


def test_a_unit_of_another_store_build_is_named(tmp_path):
    root = tmp_path / "R"
    _run_json(root, "a", ["v1", "v2", "v3"])
    for v in ("v1", "v2"):
        _record(root, "a", "clean", v, 0.7, build_key="k1", frames=v * 32)
    _record(root, "a", "clean", "v3", 0.91, build_key="k2", frames="v3" * 32)
    res = load_results(root)
    assert any("store build" in p and "v3" in p for p in res.problems)
    assert pd.isna(build_tables(res).summary.set_index("method").loc["a", "clean"])


def test_partial_method_is_marked_in_every_table_and_csv(tmp_path):
    root = tmp_path / "R"
    _run_json(root, "full", ["v1", "v2", "v3"], variants=("clean", "low/contrast"))
    _run_json(root, "part", ["v1"], variants=("clean", "low/contrast"))
    for v, x in (("v1", 1.0), ("v2", 0.9), ("v3", 0.915)):
        for variant in ("clean", "low/contrast"):
            _record(root, "full", variant, v, x)
    for variant in ("clean", "low/contrast"):
        _record(root, "part", variant, "v1", 1.0)
    t = build_tables(load_results(root))
    for name in ("summary", "leaderboard", "robustness", "per_video"):
        df = getattr(t, name)
        flags = df.groupby("method")["partial"].first()
        assert flags["part"] and not flags["full"], name
        assert "partial: 1 of 3 videos" in set(df[df.method == "part"]["coverage"]), name
    shown = summary_display(t.summary)
    assert any("part (partial: 1 of 3 videos)" == m for m in shown.method)
    assert "videos (objects)" in shown.columns and "1 (1)" in set(shown["videos (objects)"])
    assert any("partial" in m for m in leaderboard_display(t.leaderboard).method)
    assert any("partial" in m for table in corruption_display(t.leaderboard).values() for m in table.method)
    # the CSVs are these frames: the flag and the counts are columns
    assert {"partial", "coverage", "clean_videos", "clean_objects"} <= set(t.summary.columns)
    assert {"clean_videos", "DAVIS-C_videos"} <= set(t.robustness.columns)


def test_every_summary_cell_carries_its_counts(tmp_path):
    root = tmp_path / "R"
    _run_json(root, "m", ["v1", "v2"])
    _record(root, "m", "clean", "v1", 0.5)
    _record(root, "m", "clean", "v2", 0.7)
    s = build_tables(load_results(root)).summary.set_index("method").loc["m"]
    assert s["clean_videos"] == 2 and s["clean_objects"] == 2


@pytest.mark.parametrize("name", [".hidden", " m", "a/b"])
def test_names_the_reader_skips_are_refused_when_written(tmp_path, name):
    with pytest.raises(RecordError):
        _run_json(tmp_path, name, ["v1"])
    with pytest.raises(RecordError):
        _record(tmp_path, name, "clean", "v1", 0.5)
    assert not any(tmp_path.iterdir())


def test_hidden_results_folder_is_reported_not_hidden(tmp_path):
    root = tmp_path / "R"
    _run_json(root, "m", ["v1"])
    _record(root, "m", "clean", "v1", 0.5)
    shutil.copytree(root / "m", root / ".old")
    res = load_results(root)
    assert any(".old" in p and "hidden" in p for p in res.problems)


def test_ok_record_without_identity_or_score_is_never_written(tmp_path):
    unit = Unit("m", "clean", "v1", 1)
    rec = new_record(unit)
    rec.update(objects=[{"id": 1, "J": 0.5, "F": 0.5, "JF": 0.5}], J=0.5, F=0.5, JF=0.5)
    with pytest.raises(RecordError, match="data identity"):
        write_unit(tmp_path, unit, rec)
    rec.update(JF=float("nan"))
    with pytest.raises(RecordError, match="finite"):
        write_unit(tmp_path, unit, rec, UnitIdentity(data={"kind": "x"}))
    with pytest.raises(RecordError, match="video"):
        write_unit(tmp_path, Unit("m", "clean", "v2", 1), {**rec, "JF": 0.5}, UnitIdentity(data={"kind": "x"}))
    assert not list(tmp_path.rglob("*.json"))


def test_unit_copied_from_another_sample_build_end_to_end(tiny_davis_sample, tmp_path):
    """The issue's case: the same fake method run on two builds; a unit of the second copied into the first."""
    from davis_c import build as B
    from davis_c.sample import make_sample
    from harness.cli import main as run_main

    cfg = tmp_path / "fake.yaml"
    cfg.write_text(yaml.safe_dump({"description": "fake", "model": "test_harness:load_fake", "checkpoint": None,
                                   "segment": {}, "ttt": None, "resolution": None}))
    other = make_sample(tmp_path / "O" / "DAVIS", videos=2, frames=8, height=64, width=112, seed=1)
    outs = []
    for i, root in enumerate((tiny_davis_sample, other)):
        h5 = tmp_path / f"s{i}.h5"
        B.build(root, h5, corruptions=["contrast"], strengths=["high"], progress=False, log=lambda m: None)
        out = tmp_path / f"R{i}"
        assert run_main(["--no-progress", "--config", str(cfg), "--allow-plugin", "--data", str(h5),
                         "--out", str(out)]) == 0
        outs.append(out)
    src = sorted((outs[1] / "fake").rglob("high/contrast/*/seed1.json"))[0]
    dst = outs[0] / src.relative_to(outs[1])
    shutil.copy(src, dst)
    res = load_results(outs[0])
    assert any(str(dst) in p and "other data" in p for p in res.problems)
    t = build_tables(res)
    assert t.leaderboard.set_index("variant").loc["high/contrast", "status"] != "ok"
