"""The paper's aggregation, ours vs published, robustness metrics and the rules on failed / planned units.

Trees here are written unit by unit with chosen J&F values, so every expected number is computed by
hand from those values (not by the code under test).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.results import UNIT_SCHEMA, write_json_atomic
from leaderboard.build import build
from leaderboard.paper import DAVIS17_VAL, compare_with_paper, load_paper_reference
from leaderboard.results import CORRUPTIONS, STRENGTHS, WEIGHT_FREE_CORRUPTIONS, load_results
from leaderboard.tables import build_tables, summary_display

# The paper's printed STCN row (Table 1 right): clean, low, med, high -> avg 73.3; Table 3 DAVIS-C 69.3.
STCN_ROW = {"clean": 0.853, "low": 0.766, "med": 0.726, "high": 0.588}
# per-corruption offsets summing to zero, so a strength's mean is exactly its printed value
OFFSETS = np.array([(-1) ** i * (0.004 * (i // 2 + 1)) for i in range(14)])


def _unit(root: Path, method: str, variant: str, video: str, seed: int, objects: list[tuple[float, float]],
          timing: dict | None = None, peak: float | None = None) -> None:
    strength, corruption = (None, None) if variant == "clean" else variant.split("/")
    objs = [{"id": k, "J": j, "F": f, "JF": (j + f) / 2} for k, (j, f) in enumerate(objects, start=1)]
    J = float(np.mean([j for j, _ in objects]))
    F = float(np.mean([f for _, f in objects]))
    write_json_atomic(root / method / variant / video / f"seed{seed}.json", {
        "schema": UNIT_SCHEMA, "method": method, "variant": variant, "strength": strength,
        "corruption": corruption, "video": video, "seed": seed, "status": "ok", "error": None,
        "random_init": False, "objects": objs, "J": J, "F": F, "JF": (J + F) / 2, "n_frames": 5,
        "per_frame": None, "timing": timing, "peak_memory_mb": peak})


def _run(root: Path, method: str, *, seeds=(1,), config: dict | None = None, random_init=False, **plan) -> None:
    write_json_atomic(root / method / "run.json", {"method": method, "config": config or {"model": method},
                                                   "random_init": random_init, "seeds": list(seeds), **plan})


def _variant_values(row: dict[str, float]) -> dict[str, float]:
    out = {"clean": row["clean"]}
    for s in STRENGTHS:
        for c, off in zip(CORRUPTIONS, OFFSETS):
            out[f"{s}/{c}"] = row[s] + off
    return out


@pytest.fixture(scope="module")
def stcn_tree(tmp_path_factory) -> Path:
    """STCN with per-variant J&F chosen to give the paper's row; 2 videos, 2 seeds (seed 2 = seed 1 + 0.01)."""
    root = tmp_path_factory.mktemp("paper") / "results"
    _run(root, "stcn", seeds=(1, 2), config={"model": "stcn", "paper_name": "STCN"})
    for variant, v in _variant_values(STCN_ROW).items():
        for seed, shift in ((1, 0.0), (2, 0.01)):
            # video a: two objects (J, F) around v; video b: one object; global mean over objects = v + shift
            _unit(root, "stcn", variant, "a", seed, [(v + shift + 0.02, v + shift), (v + shift - 0.02, v + shift)],
                  timing={"ttt_s": 0.0, "inference_s": 2.0}, peak=100.0)
            _unit(root, "stcn", variant, "b", seed, [(v + shift, v + shift)],
                  timing={"ttt_s": 0.0, "inference_s": 4.0}, peak=300.0)
    return root


def test_paper_avg_and_davis_c_columns_reproduce_the_printed_stcn_row(stcn_tree):
    s = build_tables(load_results(stcn_tree)).summary.set_index("method").loc["stcn"]
    shift = 0.005  # mean of the two seeds' shifts
    for col, v in STCN_ROW.items():
        assert s[col] == pytest.approx(v + shift, abs=1e-12)
        assert s[f"{col}_std"] == pytest.approx(0.005, abs=1e-12)
    assert s.avg == pytest.approx((0.853 + 0.766 + 0.726 + 0.588) / 4 + shift, abs=1e-12)
    assert s["DAVIS-C"] == pytest.approx((0.766 + 0.726 + 0.588) / 3 + shift, abs=1e-12)
    assert s.avg_n == 43 and s["DAVIS-C_n"] == 42
    shown = summary_display(build_tables(load_results(stcn_tree)).summary).iloc[0]
    assert shown["avg (Table 1: mean of clean, low, med, high)"] == "73.8 ± 0.5"
    assert shown["DAVIS-C (Table 3: mean of the 42 corrupted variants)"] == "69.8 ± 0.5"


def test_printed_row_exactly_and_ours_vs_paper(tmp_path):
    """One seed, no shift: the columns print as the paper's 85.3 76.6 72.6 58.8 73.3 69.3 and differ by 0."""
    root = tmp_path / "results"
    _run(root, "stcn", config={"model": "stcn", "paper_name": "STCN"})
    _run(root, "stcn-random", config={"model": "stcn", "paper_name": "STCN"}, random_init=True)
    for variant, v in _variant_values(STCN_ROW).items():
        for m in ("stcn", "stcn-random"):
            _unit(root, m, variant, "a", 1, [(v, v)])
    t = build_tables(load_results(root))
    shown = summary_display(t.summary).set_index("method").loc["stcn"]
    assert [shown[c] for c in ("clean", "low", "med", "high")] == ["85.3", "76.6", "72.6", "58.8"]
    assert shown.iloc[4] == "73.3" and shown.iloc[5] == "69.3"
    cmp = compare_with_paper(t.summary, t.grid, load_results(root).runs, load_paper_reference(),
                             t.random_init_methods)
    assert set(cmp.method) == {"stcn"}  # the random-init run is never put next to the paper
    c = cmp.set_index("column")
    assert c.loc["avg", "paper_JF_pct"] == 73.3 and c.loc["DAVIS-C", "paper_JF_pct"] == 69.3
    assert c.loc["avg", "table"] == "Table 1 right, avg" and c.loc["DAVIS-C", "table"] == "Table 3 real videos, DAVIS-C"
    assert np.allclose(c.diff_pts.to_numpy(dtype=float), [0.0, 0.0, 0.0, 0.0, 0.025, 0.0333333], atol=1e-6)
    assert (c.status == "ok").all() and c.source.str.startswith("Bertrand et al.").all()


def test_ours_is_compared_only_where_complete(tmp_path):
    root = tmp_path / "results"
    _run(root, "stcn+mcc", config={"model": "stcn", "ttt": "stcn_mcc", "paper_name": "STCN+tt-MCC"})
    for variant, v in _variant_values(STCN_ROW).items():
        if variant != "high/contrast":
            _unit(root, "stcn+mcc", variant, "a", 1, [(v, v)])
    t = build_tables(load_results(root))
    c = compare_with_paper(t.summary, t.grid, load_results(root).runs, load_paper_reference()).set_index("column")
    assert c.loc["clean", "status"] == "ok" and c.loc["low", "status"] == "ok"
    for col in ("high", "avg", "DAVIS-C"):
        assert c.loc[col, "status"] == "incomplete" and np.isnan(c.loc[col, "ours_JF_pct"])
    assert c.loc["DAVIS-C", "paper_name"] == "STCN+tt-MCC-100" and c.loc["DAVIS-C", "paper_JF_pct"] == 73.8


def test_published_numbers_need_a_full_davis17_val_run(tmp_path):
    root = tmp_path / "results"
    published = [{"benchmark": "DAVIS-2017 val", "JF": 87.9, "source": "Cheng et al., CVPR 2024, Table 1"},
                 {"benchmark": "MOSE val", "JF": 68.3, "source": "somewhere, Table 2"}]
    for method, videos in (("full", DAVIS17_VAL), ("subset", DAVIS17_VAL[:3])):
        _run(root, method, config={"model": "x", "paper_name": None, "published": published},
             variants=["clean"], videos=list(videos))
        for i, video in enumerate(videos):
            _unit(root, method, "clean", video, 1, [(0.8 + 0.001 * i, 0.9)])
    t = build_tables(load_results(root))
    cmp = compare_with_paper(t.summary, t.grid, load_results(root).runs, load_paper_reference())
    full = cmp[(cmp.method == "full") & (cmp.table == "published, DAVIS-2017 val")].iloc[0]
    ours = 100 * (np.mean([0.8 + 0.001 * i for i in range(30)]) + 0.9) / 2
    assert full.ours_JF_pct == pytest.approx(ours, abs=1e-9) and full.diff_pts == pytest.approx(ours - 87.9, abs=1e-9)
    assert full.source == "Cheng et al., CVPR 2024, Table 1"
    sub = cmp[(cmp.method == "subset") & (cmp.table == "published, DAVIS-2017 val")].iloc[0]
    assert sub.status == "not comparable" and np.isnan(sub.ours_JF_pct) and "3/30" in sub.note
    mose = cmp[cmp.table == "published, MOSE val"]
    assert (mose.status == "not comparable").all() and mose.ours_JF_pct.isna().all()


def test_preset_reference_fields_are_validated(tmp_path):
    from harness.methods import MethodError, load_method

    _, cfg = load_method("stcn+mcc")
    assert cfg["paper_name"] == "STCN+tt-MCC" and cfg["published"] == []
    ok = tmp_path / "cutie.yaml"
    ok.write_text("model: cutie\npaper_name: null\npublished:\n"
                  "  - {benchmark: DAVIS-2017 val, JF: 87.9, source: 'Cheng et al., CVPR 2024, Table 1'}\n")
    _, cfg = load_method(config_file=ok)
    assert cfg["published"] == [{"benchmark": "DAVIS-2017 val", "JF": 87.9, "source": "Cheng et al., CVPR 2024, Table 1",
                                 "note": ""}]
    for bad, msg in (("published: [{benchmark: D, JF: 879, source: s}]", "percent"),
                     ("published: [{benchmark: D, JF: 87.9}]", "'source' must be"),
                     ("published: [{benchmark: D, JF: 87.9, source: s, year: 1}]", "unknown key"),
                     ("paper_name: 3", "paper_name")):
        f = tmp_path / "bad.yaml"
        f.write_text("model: x\n" + bad + "\n")
        with pytest.raises(MethodError, match=msg):
            load_method(config_file=f)


def test_robustness_metrics_equal_hand_aggregation(stcn_tree, tmp_path):
    t = build_tables(load_results(stcn_tree))
    r = t.robustness.set_index("method").loc["stcn"]
    s = t.summary.set_index("method").loc["stcn"]
    clean = STCN_ROW["clean"] + 0.005
    for strength in STRENGTHS:
        assert r[f"rP_{strength}"] == pytest.approx((STCN_ROW[strength] + 0.005) / clean, abs=1e-12)
    mcp = (0.766 + 0.726 + 0.588) / 3 + 0.005
    assert r.mCP == pytest.approx(mcp, abs=1e-12) and r.rP == pytest.approx(mcp / clean, abs=1e-12)
    wf = np.mean([STCN_ROW[x] + o for x in STRENGTHS for o in OFFSETS[:10]]) + 0.005
    assert r.mCP_10 == pytest.approx(wf, abs=1e-12) and s["DAVIS-C_10"] == pytest.approx(wf, abs=1e-12)
    cost = t.costs.set_index("method").loc["stcn"]
    assert cost.n_units == 43 * 2 * 2 and cost.inference_s == pytest.approx(3.0) and cost.ttt_s == 0.0
    assert cost.peak_memory_mb == pytest.approx(200.0) and cost.peak_memory_mb_max == 300.0


def test_relative_ttt_gain_equals_hand_aggregation(tmp_path):
    root = tmp_path / "results"
    _run(root, "m", config={"model": "m"})
    _run(root, "m+ttt", config={"model": "m", "ttt": "p"})
    values = {"clean": (0.8, 0.82), "low/contrast": (0.6, 0.66), "high/contrast": (0.5, 0.45)}
    for variant, (base, ttt) in values.items():
        _unit(root, "m", variant, "a", 1, [(base, base)])
        _unit(root, "m+ttt", variant, "a", 1, [(ttt, ttt)])
    rg = build_tables(load_results(root)).relative_gain.set_index("variant")
    for variant, (base, ttt) in values.items():
        assert rg.loc[variant, "relative_gain"] == pytest.approx((ttt - base) / base, abs=1e-12)
        assert rg.loc[variant, "gain"] == pytest.approx(ttt - base, abs=1e-12)
    md = (Path(build(root, tmp_path / "lb")["leaderboard.md"])).read_text()
    assert "+10.0 %" in md and "-10.0 %" in md  # low/contrast: 0.66/0.6 - 1; high/contrast: 0.45/0.5 - 1


def test_a_nan_object_fails_the_unit_instead_of_shrinking_the_average(tmp_path):
    root = tmp_path / "results"
    _run(root, "m", config={"model": "m"})
    _unit(root, "m", "clean", "a", 1, [(0.5, 0.5)])
    path = root / "m" / "clean" / "b" / "seed1.json"
    _unit(root, "m", "clean", "b", 1, [(0.3, 0.3), (0.5, 0.5)])
    rec = json.loads(path.read_text())
    rec["objects"][0].update(J=None, F=None, JF=None)  # NaN is written as null in strict JSON
    path.write_text(json.dumps(rec))
    t = build_tables(load_results(root))
    lb = t.leaderboard.set_index("variant").loc["clean"]
    assert lb.status == "incomplete" and np.isnan(lb.JF)
    row = t.missing.set_index("video").loc["b"]
    assert row.status == "failed" and "non-finite score" in row.error and "object 1" in row.error
    # NaN literals (Python's json writes them) fail the same way
    rec["objects"][0].update(J=float("nan"), F=float("nan"), JF=float("nan"))
    path.write_text(json.dumps(rec))
    assert build_tables(load_results(root)).missing.set_index("video").loc["b", "status"] == "failed"
    written = build(root, tmp_path / "lb")
    assert "non-finite score" in Path(written["missing.csv"]).read_text()


def test_names_are_escaped_in_markdown(tmp_path):
    evil = "<img src=x onerror=alert(1)>"
    root = tmp_path / "results"
    _run(root, evil, config={"model": "m"})
    _unit(root, evil, "clean", evil, 1, [(0.5, 0.5)])
    _unit(root, evil, "low/contrast", evil, 1, [(0.4, 0.4)])
    written = build(root, tmp_path / "lb")
    md = Path(written["leaderboard.md"]).read_text()
    assert "<img" not in md and "&lt;img src=x onerror=alert(1)&gt;" in md
    assert "<img src=x" not in Path(written["index.html"]).read_text()


def test_expected_units_are_the_ones_the_run_planned(tmp_path):
    """A quick-start run of one variant is complete; a method's missing planned video is not."""
    root = tmp_path / "results"
    _run(root, "quick", config={"model": "q"}, variants=["clean"], videos=["a", "b"])
    _run(root, "full", config={"model": "f"}, variants=["clean", "low/contrast"], videos=["a", "b", "c"])
    for video in ("a", "b"):
        _unit(root, "quick", "clean", video, 1, [(0.5, 0.5)])
        for variant in ("clean", "low/contrast"):
            _unit(root, "full", variant, video, 1, [(0.6, 0.6)])
    t = build_tables(load_results(root))
    assert set(t.missing.method) == {"full"} and set(t.missing.video) == {"c"}
    lb = t.leaderboard.set_index(["method", "variant"])
    assert lb.loc[("quick", "clean"), "status"] == "ok" and ("quick", "low/contrast") not in lb.index
    assert lb.loc[("full", "clean"), "status"] == "incomplete"


def test_weight_free_columns_complete_on_a_build_without_style_weights(tmp_path):
    from leaderboard.plots import plot_strength
    from leaderboard.synthetic import make_synthetic_results

    root = make_synthetic_results(tmp_path / "r", methods={"m": {"seeds": [1]}}, videos={"a": 1},
                                  corruptions=WEIGHT_FREE_CORRUPTIONS, frames=4)
    t = build_tables(load_results(root))
    s = t.summary.iloc[0]
    for col in ("low_10", "med_10", "high_10", "avg_10", "DAVIS-C_10"):
        assert np.isfinite(s[col])
    assert np.isnan(s.low) and s.low_n == 10 and s.low_of == 14
    shown = summary_display(t.summary).iloc[0]
    assert shown["low, 10 weight-free"] == f"{100 * s.low_10:.1f}" and shown["low"].startswith("incomplete (10/14")
    fig = plot_strength(t)
    ax = fig.axes[0]
    assert "14 corruptions" not in ax.get_title() and "10 weight-free" in ax.get_title()
    handles, labels = ax.get_legend_handles_labels()
    assert labels == ["m (10 weight-free corruptions)"] and handles[0].get_marker() == "o"  # legend = what is drawn
    assert np.allclose(handles[0].get_ydata(), 100 * np.array([s.clean, s.low_10, s.med_10, s.high_10]))


@pytest.mark.parametrize("module,script", [("leaderboard.synthetic", "leaderboard-synthetic"),
                                           ("leaderboard.build", "leaderboard-build"),
                                           ("harness.score", "harness-score")])
def test_console_scripts_name_themselves_in_help(module, script, monkeypatch, capsys):
    import importlib

    mod = importlib.import_module(module)
    for argv0, prog in ((f"/venv/bin/{script}", script), (f"/repo/{module.replace('.', '/')}.py", f"python -m {module}")):
        monkeypatch.setattr(sys, "argv", [argv0, "--help"])
        with pytest.raises(SystemExit):
            mod.main(["--help"])
        out = capsys.readouterr().out
        assert out.startswith(f"usage: {prog} ") and "contract" not in out
