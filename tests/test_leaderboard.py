"""Leaderboard tables against numbers aggregated by hand from the unit files (layout: harness.results)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from leaderboard.paper import PaperReferenceError, load_paper_reference, split_available
from leaderboard.results import CORRUPTIONS, ResultsError, load_results
from leaderboard.synthetic import make_synthetic_results
from leaderboard.tables import build_tables, markdown_table, summary_display

VIDEOS = {"blackswan": 1, "dog": 2, "judo": 3}
METHODS = {
    "stcn": {"seeds": [0], "quality": 0.8},
    "stcn+mcc": {"seeds": [0, 1, 2], "quality": 0.8, "ttt_gain": 0.05},
    "xmem": {"seeds": [0], "quality": 0.85, "random_init": True},
}
FAILED = ("stcn+mcc", "high/contrast", "dog", 1)
MISSING = ("stcn", "med/contrast", "judo", 0)


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lb") / "results"
    return make_synthetic_results(root, methods=METHODS, videos=VIDEOS, corruptions=["gaussian_noise", "contrast"],
                                  frames=6, seed=3, failed=[FAILED], missing=[MISSING])


@pytest.fixture(scope="module")
def tables(tree):
    return build_tables(load_results(tree))


def _records(root: Path) -> dict[tuple, dict]:
    """Every unit file read with plain json, keyed (method, variant, video, seed)."""
    out = {}
    for path in root.rglob("seed*.json"):
        rec = json.loads(path.read_text())
        out[(rec["method"], rec["variant"], rec["video"], rec["seed"])] = rec
    return out


def _official(recs: list[dict]) -> tuple[float, float, float]:
    """J, F, J&F over all objects of all the given videos (the official global convention)."""
    objs = [o for r in recs for o in r["objects"]]
    j = sum(o["J"] for o in objs) / len(objs)
    f = sum(o["F"] for o in objs) / len(objs)
    return j, f, (j + f) / 2


def test_leaderboard_equals_hand_aggregation(tree, tables):
    recs = _records(tree)
    lb = tables.leaderboard.set_index(["method", "variant"])
    for method, spec in METHODS.items():
        for variant in ["clean", "low/gaussian_noise", "low/contrast", "high/gaussian_noise"]:
            per_seed = [_official([recs[(method, variant, v, s)] for v in VIDEOS]) for s in spec["seeds"]]
            jf = [p[2] for p in per_seed]
            video_mean = [np.mean([recs[(method, variant, v, s)]["JF"] for v in VIDEOS]) for s in spec["seeds"]]
            row = lb.loc[(method, variant)]
            assert row.status == "ok"
            assert row.JF == pytest.approx(np.mean(jf), abs=1e-12)
            assert row.J == pytest.approx(np.mean([p[0] for p in per_seed]), abs=1e-12)
            assert row.F == pytest.approx(np.mean([p[1] for p in per_seed]), abs=1e-12)
            assert row.JF_video == pytest.approx(np.mean(video_mean), abs=1e-12)
            assert row.n_videos == 3 and row.n_objects == 6 and row.n_seeds == len(spec["seeds"])
            if len(spec["seeds"]) > 1:
                assert row.JF_std == pytest.approx(np.std(jf), abs=1e-12)
            else:
                assert np.isnan(row.JF_std)
    # objects weigh equally: the official mean differs from the mean over videos here
    row = lb.loc[("stcn", "clean")]
    assert abs(row.JF - row.JF_video) > 1e-6


def test_failed_and_missing_units_blank_their_cells(tables):
    lb = tables.leaderboard.set_index(["method", "variant"])
    for key, word in [(("stcn+mcc", "high/contrast"), "1 failed"), (("stcn", "med/contrast"), "1 missing")]:
        row = lb.loc[key]
        assert row.status == "incomplete" and np.isnan(row.JF) and np.isnan(row.J) and np.isnan(row.JF_video)
        assert word in row.note
    missing = tables.missing
    assert sorted(map(tuple, missing[["method", "variant", "video", "seed"]].values.tolist())) == sorted([FAILED, MISSING])
    assert set(missing.status) == {"failed", "missing"}
    assert "synthetic failure" in missing.set_index("status").loc["failed", "error"]
    # the corruption table marks the same cells
    assert np.isnan(tables.corruptions["high"].loc["stcn+mcc", "contrast"])
    assert np.isnan(tables.corruptions["med"].loc["stcn", "contrast"])
    assert np.isfinite(tables.corruptions["med"].loc["stcn+mcc", "contrast"])


def test_per_video_and_ttt_gain(tree, tables):
    recs = _records(tree)
    pv = tables.per_video.set_index(["method", "variant", "video"])
    assert tables.ttt_pairs == {"stcn+mcc": "stcn"}
    for variant in ["clean", "low/contrast", "high/gaussian_noise"]:
        gains = []
        for video in VIDEOS:
            after = np.mean([recs[("stcn+mcc", variant, video, s)]["JF"] for s in (0, 1, 2)])
            before = recs[("stcn", variant, video, 0)]["JF"]
            row = pv.loc[("stcn+mcc", variant, video)]
            assert row.JF == pytest.approx(after, abs=1e-12)
            assert row.base_JF == pytest.approx(before, abs=1e-12)
            assert row.ttt_gain == pytest.approx(after - before, abs=1e-12)
            gains.append(after - before)
        g = tables.ttt_gain.set_index("variant").loc[variant]
        assert g.complete and g.gain == pytest.approx(np.mean(gains), abs=1e-12)
        assert g.n_hurt == sum(x < 0 for x in gains)
    # a failed seed blanks that video (not averaged over the 2 remaining seeds), and its gain
    row = pv.loc[("stcn+mcc", "high/contrast", "dog")]
    assert row.status == "incomplete" and np.isnan(row.JF) and np.isnan(row.ttt_gain) and row.n_seeds_ok == 2
    assert pv.loc[("stcn", "med/contrast", "judo")].status == "missing"
    g = tables.ttt_gain.set_index("variant").loc["med/contrast"]
    assert not g.complete and np.isnan(g.gain) and g.n_videos == 2
    assert "stcn" not in tables.ttt_pairs and "xmem" not in tables.ttt_pairs


def test_summary_incomplete_strengths_are_marked_not_averaged(tree, tables):
    recs = _records(tree)
    s = tables.summary.set_index("method")
    # only 2 of the 14 corruptions exist: every strength is incomplete, with an explicit partial mean
    for method in METHODS:
        for col in ("low", "med", "high", "avg", "DAVIS-C", "low_10", "avg_10", "DAVIS-C_10"):
            assert np.isnan(s.loc[method, col])
    assert s.loc["stcn+mcc", "high_n"] == 1 and s.loc["stcn+mcc", "high_of"] == 14
    gn = np.mean([_official([recs[("stcn+mcc", "high/gaussian_noise", v, sd)] for v in VIDEOS])[2] for sd in (0, 1, 2)])
    assert s.loc["stcn+mcc", "high_partial"] == pytest.approx(gn, abs=1e-12)
    assert s.loc["stcn", "med_n"] == 1 and s.loc["stcn", "low_n"] == 2 and s.loc["stcn", "DAVIS-C_n"] == 5
    assert s.loc["stcn", "avg_n"] == 6 and s.loc["stcn", "avg_of"] == 43  # clean + 42 corrupted variants
    clean = [_official([recs[("stcn+mcc", "clean", v, sd)] for v in VIDEOS])[2] for sd in (0, 1, 2)]
    assert s.loc["stcn+mcc", "clean"] == pytest.approx(np.mean(clean), abs=1e-12)
    assert s.loc["stcn+mcc", "clean_std"] == pytest.approx(np.std(clean), abs=1e-12)
    shown = summary_display(tables.summary).set_index("method")
    assert shown.loc["stcn+mcc", "high"].startswith("incomplete (1/14 variants, partial mean ")
    assert shown.loc["stcn+mcc", "avg (Table 1: mean of clean, low, med, high)"].startswith("incomplete (")
    assert shown.loc["stcn+mcc", "DAVIS-C (Table 3: mean of the 42 corrupted variants)"].startswith("incomplete (")


def test_summary_averages_all_14_corruptions_per_seed(tmp_path):
    root = make_synthetic_results(tmp_path / "r", methods={"m": {"seeds": [1, 5]}}, videos={"a": 1, "b": 2},
                                  strengths=["low"], frames=4, seed=1)
    recs = _records(root)
    s = build_tables(load_results(root)).summary.set_index("method").loc["m"]
    per_seed = [np.mean([_official([recs[("m", f"low/{c}", v, sd)] for v in ("a", "b")])[2] for c in CORRUPTIONS])
                for sd in (1, 5)]
    assert s.low_n == 14 and s.low == pytest.approx(np.mean(per_seed), abs=1e-12)
    assert s.low_std == pytest.approx(np.std(per_seed), abs=1e-12)
    assert np.isnan(s.med) and s.med_n == 0 and np.isnan(s.avg) and s.avg_n == 15 and s["DAVIS-C_n"] == 14
    assert s.low_10_n == 10 and s.low_10 == pytest.approx(np.mean(
        [np.mean([_official([recs[("m", f"low/{c}", v, sd)] for v in ("a", "b")])[2] for c in CORRUPTIONS[:10]])
         for sd in (1, 5)]), abs=1e-12)
    assert summary_display(build_tables(load_results(root)).summary).loc[0, "med"] == "missing"


def test_expected_videos_option_marks_absent_video_everywhere(tree):
    t = build_tables(load_results(tree), videos=["blackswan", "dog", "judo", "ghost"])
    assert (t.leaderboard.status == "incomplete").all()
    assert t.leaderboard.JF.isna().all()
    assert (t.missing.video == "ghost").sum() == (1 + 3 + 1) * 7  # seeds x variants


def test_random_init_is_flagged(tables):
    assert tables.random_init_methods == ["xmem"]
    runs = tables.runs.set_index("method")
    assert bool(runs.loc["xmem", "random_init"]) and not bool(runs.loc["stcn", "random_init"])
    assert runs.loc["stcn+mcc", "seeds"] == "0 1 2"


def test_bad_unit_files_are_reported_or_raise(tmp_path):
    root = make_synthetic_results(tmp_path / "r", methods={"m": {"seeds": [0]}}, videos={"a": 1, "b": 1},
                                  corruptions=["contrast"], strengths=["low"], frames=4)
    bad = root / "m" / "low" / "contrast" / "b" / "seed0.json"
    bad.write_text("{not json")
    res = load_results(root)
    assert len(res.problems) == 1 and str(bad) in res.problems[0]
    t = build_tables(res)
    row = t.missing.iloc[0]
    assert (row.method, row.variant, row.video, row.status) == ("m", "low/contrast", "b", "failed")
    assert np.isnan(t.leaderboard.set_index("variant").loc["low/contrast", "JF"])
    with pytest.raises(ResultsError, match="seed0.json"):
        load_results(root, strict=True)
    stray = root / "m" / "stray" / "seed3.json"
    stray.parent.mkdir()
    stray.write_text("{}")
    assert any(str(stray) in p and "ignored" in p for p in load_results(root).problems)
    # a file whose fields contradict its place in the tree
    rec = json.loads((root / "m" / "clean" / "a" / "seed0.json").read_text())
    rec["video"] = "zzz"
    (root / "m" / "clean" / "a" / "seed0.json").write_text(json.dumps(rec))
    with pytest.raises(ResultsError, match=r"a[/\\]seed0.json: field 'video'"):
        load_results(root, strict=True)
    with pytest.raises(ResultsError, match="does not exist"):
        load_results(tmp_path / "nowhere")


def test_markdown_table_marks_missing():
    df = pd.DataFrame({"method": ["a|b", "c"], "JF": [0.5, float("nan")]})
    md = markdown_table(df).splitlines()
    assert md[0] == "| method | JF |" and md[2] == "| a\\|b | 50.0 |" and md[3] == "| c | — |"


def test_paper_reference_ships_only_sourced_numbers(tmp_path):
    ref = load_paper_reference()
    have, slots = split_available(ref)
    assert set(ref.method) >= {"STCN", "STCN+tt-MCC", "XMem", "XMem+tt-MCC", "HODOR"}
    assert (have.source.str.len() > 0).all() and ((have.JF >= 0) & (have.JF <= 100)).all()
    assert slots.empty  # every number printed in Tables 1-3 is shipped: no empty slot
    assert (ref.source.str.contains("Bertrand et al.") & ref.source.str.contains("Table")).all()
    stcn = ref[(ref.method == "STCN") & (ref.table == "Table 1 right")].set_index("column").JF
    assert stcn.to_dict() == {"clean": 85.3, "low": 76.6, "med": 72.6, "high": 58.8, "avg": 73.3}
    assert ref[(ref.method == "STCN") & (ref.table == "Table 3 real videos") & (ref.column == "DAVIS-C")].JF.item() == 69.3
    # the paper's avg is the mean of its four columns (as printed, so within rounding), except HODOR's (noted)
    t1 = ref[ref.table.str.endswith("right")].pivot_table(index=["method", "table"], columns="column", values="JF")
    mean4 = t1[["clean", "low", "med", "high"]].mean(axis=1)
    off = (mean4 - t1["avg"]).abs() > 0.051
    assert [m for m, _ in t1.index[off]] == ["HODOR"]
    assert len(ref) == 109 and ref.duplicated(["method", "table", "column"]).sum() == 0
    bad = tmp_path / "ref.csv"
    bad.write_text("method,table,column,JF,JF_std,source,note\nX,Table 1,clean,85.1,,,\n")
    with pytest.raises(PaperReferenceError, match="row 2: a number without a source"):
        load_paper_reference(bad)
    bad.write_text("method,table,column,JF,JF_std,source,note\nX,Table 1,clean,851,,paper,\n")
    with pytest.raises(PaperReferenceError, match=r"row 2: JF must be a percentage"):
        load_paper_reference(bad)


def test_leaderboard_imports_neither_torch_nor_models():
    code = ("import sys, leaderboard.build, leaderboard.synthetic; "
            "bad = [m for m in ('torch', 'models') if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_leaderboard_and_builder_read_one_vocabulary():
    import davis_c
    from common import vocabulary
    from leaderboard.results import STRENGTHS

    assert STRENGTHS is vocabulary.STRENGTHS is davis_c.STRENGTHS
    assert CORRUPTIONS is vocabulary.CORRUPTION_NAMES and CORRUPTIONS == tuple(davis_c.CORRUPTIONS)
