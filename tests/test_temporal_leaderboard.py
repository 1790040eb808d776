"""The recovery metric (harness.recovery) and the temporal suite's own leaderboard tables: never mixed into
the paper's summary columns nor its per-corruption tables."""
from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.recovery import event_names, frame_jf, recovery_frames, summarize
from harness.results import write_json_atomic
from leaderboard.results import load_results
from leaderboard.synthetic import make_synthetic_results, unit_record
from leaderboard.tables import build_tables, corruption_display
from leaderboard.temporal import is_temporal, recovery_display, temporal_display


def _pf(jf: list[float], start: int = 1) -> dict:
    """per_frame of one object whose J = F = jf (so the frame's J&F is jf)."""
    return {"J": [list(jf)], "F": [list(jf)], "frames": [f"{t:05d}" for t in range(start, start + len(jf))]}


def _events(runs, n_frames):
    return event_names(runs, [f"{t:05d}" for t in range(n_frames)])


def test_event_names():
    assert _events([(2, 4), (6, 9)], 9) == [
        {"start": 2, "end": 4, "start_frame": "00002", "end_frame": "00004"},
        {"start": 6, "end": 9, "start_frame": "00006", "end_frame": None}]


def test_frame_jf_is_the_mean_over_objects():
    pf = {"J": [[0.2, 0.4], [0.6, 1.0]], "F": [[0.4, 0.4], [0.8, 0.6]], "frames": ["00001", "00002"]}
    assert frame_jf(pf) == pytest.approx({"00001": 0.5, "00002": 0.6})


def test_recovery_frames_by_hand():
    # frames 1..10 scored (a 12-frame video); clean is 0.8 everywhere
    clean = _pf([0.8] * 10)
    #            f1   f2   f3   f4   f5   f6    f7   f8   f9   f10
    bad = _pf([0.8, 0.8, 0.1, 0.1, 0.3, 0.74, 0.8, 0.2, 0.5, 0.6])
    events = _events([(3, 5), (8, 9)], 12)
    # event 1 ends at frame 5: f5 0.3 (no), f6 0.74 >= 0.75? no, f7 0.8 yes -> 2 frames
    # event 2 ends at frame 9: f9 0.5, f10 0.6, then the scored frames end -> not recovered
    assert recovery_frames(events, bad, clean) == [2, None]
    # within 5 points exactly counts (>=), a looser tolerance recovers earlier
    assert recovery_frames(events, bad, clean, tolerance=0.06) == [1, None]
    # the next event cuts the search: event 1 may not look past frame 5 when another starts at 6
    assert recovery_frames(_events([(3, 5), (6, 7)], 12), bad, clean) == [None, 0]
    # an event that lasts to the end of the video, or ends on the unscored last frame: no observation
    assert recovery_frames(_events([(9, 11)], 12), bad, clean) == []
    assert recovery_frames(_events([(9, 12)], 12), bad, clean) == []
    s = summarize([2, None, 0, 4])
    assert s["events"] == 4 and s["recovered"] == 3 and s["not_recovered"] == 1
    assert s["mean"] == pytest.approx(2.0) and s["median"] == 2.0 and s["max"] == 4.0
    assert math.isnan(summarize([None])["mean"])


TEMPORAL = {"low/freeze": [(3, 5)], "high/bursts_gaussian_noise": [(2, 4), (7, 9)], "med/stride": None,
            "high/shake": []}


def _name_frames(tree: Path) -> None:
    for p in tree.rglob("seed*.json"):
        rec = json.loads(p.read_text())
        rec["per_frame"]["frames"] = [f"{t:05d}" for t in range(1, 1 + len(rec["per_frame"]["J"][0]))]
        write_json_atomic(p, rec)


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    """The same synthetic DAVIS-C results, without and with temporal-suite units."""
    videos = {"a": 1, "b": 2}
    methods = {"m": {"seeds": [0], "quality": 0.8}}
    plain = make_synthetic_results(tmp_path_factory.mktemp("plain"), methods=methods, videos=videos, frames=10)
    both = make_synthetic_results(tmp_path_factory.mktemp("both"), methods=methods, videos=videos, frames=10)
    _name_frames(plain)
    _name_frames(both)
    for variant, runs in TEMPORAL.items():
        for video, n_obj in videos.items():
            clean = json.loads((both / "m" / "clean" / video / "seed0.json").read_text())
            j = np.asarray(clean["per_frame"]["J"]) - 0.3  # much worse than clean ...
            f = np.asarray(clean["per_frame"]["F"]) - 0.3
            j[:, 6:] += 0.3  # ... until frame 7 (index 6), where it is the clean run again
            f[:, 6:] += 0.3
            rec = unit_record("m", variant, video, 0, j, f)
            rec["per_frame"]["frames"] = clean["per_frame"]["frames"]
            if runs is not None:
                rec["events"] = _events(runs, 12)
            write_json_atomic(both / "m" / variant / video / "seed0.json", rec)
    return plain, both


def test_temporal_units_never_enter_the_paper_columns(trees):
    plain, both = (build_tables(load_results(t)) for t in trees)
    cols = [c for c in plain.summary.columns if c != "method"]
    pd.testing.assert_frame_equal(plain.summary[cols], both.summary[cols])
    assert plain.summary["DAVIS-C"].notna().all()  # complete: the comparison means something
    assert plain.corruptions.keys() == both.corruptions.keys()
    for s in plain.corruptions:
        pd.testing.assert_frame_equal(plain.corruptions[s], both.corruptions[s])
        assert not any(is_temporal(c) for c in both.corruptions[s].columns)
    for s, t in corruption_display(both.leaderboard).items():
        assert not any(is_temporal(c) for c in t.columns)
    pd.testing.assert_frame_equal(plain.robustness, both.robustness)
    assert plain.temporal.empty and plain.recovery.empty


def test_temporal_table_and_recovery(trees):
    _, both = trees
    tables = build_tables(load_results(both))
    t = tables.temporal
    assert list(t.variant) == ["low/freeze", "med/stride", "high/bursts_gaussian_noise", "high/shake"]
    lb = tables.leaderboard.set_index("variant")
    for r in t.itertuples():
        assert r.JF == pytest.approx(lb.loc[r.variant, "JF"]) and r.status == "ok"
    wide = temporal_display(t)
    assert list(wide.columns) == ["method", "freeze low", "stride med", "bursts_gaussian_noise high", "shake high"]
    rec = tables.recovery.set_index("variant")
    assert set(rec.index) == {"low/freeze", "high/bursts_gaussian_noise"}  # only variants with events
    # the corrupted run equals the clean run from frame 7: freeze ends at 5 -> 2 frames, per video
    assert rec.loc["low/freeze", "events"] == 2 and rec.loc["low/freeze", "mean"] == 2.0
    # bursts: (2, 4) ends at 4 -> cut by the next event at 7 before recovering; (7, 9) ends at 9 -> 0
    row = rec.loc["high/bursts_gaussian_noise"]
    assert (row["events"], row["recovered"], row["not_recovered"], row["mean"]) == (4, 2, 2, 0.0)
    shown = recovery_display(tables.recovery)
    assert list(shown["recovery frames (mean)"]) == ["2.0", "0.0"]


def test_report_has_a_separate_temporal_section(trees, tmp_path):
    from leaderboard.build import build

    _, both = trees
    build(both, tmp_path / "lb")
    md = (tmp_path / "lb" / "leaderboard.md").read_text()
    assert "## Temporal suite" in md and "### Recovery after freeze and burst events" in md
    html = (tmp_path / "lb" / "index.html").read_text()
    assert 'id="temporal"' in html and "freeze low" in html
    assert (tmp_path / "lb" / "temporal.csv").is_file() and (tmp_path / "lb" / "temporal_recovery.csv").is_file()


def _run_on_sample(tiny_davis_sample, tmp_path, method_args):
    from davis_c import build as B
    from harness.cli import main as run_main

    store = tmp_path / "store.h5"
    B.build(tiny_davis_sample, store, suite="temporal", corruptions=["freeze", "stride", "shake"],
            strengths=["high"], progress=False, log=lambda m: None)
    out = tmp_path / "results"
    assert run_main([*method_args, "--data", str(store), "--out", str(out), "--seeds", "1", "--no-progress",
                     "--variants", "clean", "high/*"]) == 0
    return store, out


def _check_run(store, out, method, tmp_path):
    import davis_c
    from leaderboard.build import build

    with davis_c.open(store) as st:
        for video in st.videos:
            stride = json.loads((out / method / "high" / "stride" / video / "seed1.json").read_text())
            kept = st.variant_frame_names("high", "stride", video)
            assert stride["per_frame"]["frames"] == kept[1:-1] and stride["n_frames"] == len(kept)
            freeze = json.loads((out / method / "high" / "freeze" / video / "seed1.json").read_text())
            assert [(e["start"], e["end"]) for e in freeze["events"]] == list(st["high", "freeze", video].events)
    build(out, tmp_path / "lb")
    md = (tmp_path / "lb" / "leaderboard.md").read_text()
    assert "## Temporal suite" in md and "freeze high" in md and "stride high" in md and "shake high" in md
    assert "### Recovery after freeze and burst events" in md and f"| {method} | high/freeze |" in md


def test_labelprop_on_the_sample_temporal_build(tiny_davis_sample, tmp_path):
    store, out = _run_on_sample(tiny_davis_sample, tmp_path, ["--method", "labelprop"])
    _check_run(store, out, "labelprop", tmp_path)


@pytest.mark.slow
def test_stcn_random_init_on_the_sample_temporal_build(tiny_davis_sample, tmp_path):
    store, out = _run_on_sample(tiny_davis_sample, tmp_path, ["--method", "stcn", "--random-init",
                                                              "--set", "resolution=null"])
    _check_run(store, out, "stcn", tmp_path)


@pytest.mark.slow
def test_ttt_on_the_temporal_suite_adapts_on_the_corrupted_video(tiny_davis_sample, tmp_path, monkeypatch):
    """TTT methods run on the suite as on DAVIS-C: ``models.ttt.adapt`` is given the stored corrupted video
    of the unit (frozen frames, stride's kept frames only, shaken frames and shaken first mask), never the
    clean one; the results reach the temporal table and the recovery metric."""
    import davis_c
    from models import ttt

    seen: list[tuple[np.ndarray, np.ndarray]] = []
    adapt = ttt.adapt

    @functools.wraps(adapt)  # the harness checks --set ttt_params.* against adapt's signature
    def recording(vos, frames, first_mask, **kw):
        seen.append((np.array(frames), np.array(first_mask)))
        return adapt(vos, frames, first_mask, **kw)

    monkeypatch.setattr(ttt, "adapt", recording)
    store, out = _run_on_sample(tiny_davis_sample, tmp_path, [
        "--method", "stcn+ent", "--random-init", "--workers", "1", "--threads", "1", "--set", "resolution=null",
        "ttt_params.resolution=null", "ttt_params.rounds=1", "ttt_params.iterations=1"])
    with davis_c.open(store) as st:
        units = {(v, video): st[v, video] for v in ("clean", "high/freeze", "high/stride", "high/shake")
                 for video in st.videos}
        clean_len = {video: len(units["clean", video].frames) for video in st.videos}
    assert len(seen) == len(units) == 8
    for (variant, video), want in units.items():
        hits = [i for i, (frames, _) in enumerate(seen) if np.array_equal(frames, want.frames)]
        assert len(hits) == 1, f"{variant}/{video}: TTT did not adapt on the stored frames"
        first = np.where(want.masks[0] == 255, 0, want.masks[0])
        assert np.array_equal(seen[hits[0]][1], first), f"{variant}/{video}: not the unit's first mask"
        if variant == "high/stride":
            assert len(want.frames) < clean_len[video]
        if variant != "clean":  # the corruption changed what TTT trains on
            assert not np.array_equal(want.frames, units["clean", video].frames[:len(want.frames)])
        rec = json.loads((out / "stcn+ent" / variant / video / "seed1.json").read_text())
        assert rec["status"] == "ok" and rec["timing"]["ttt_s"] > 0
    _check_run(store, out, "stcn+ent", tmp_path)
