"""benchmarks.gpu_suite, the one prepared GPU run: its plan (priority order, sizes), its budget, the tables it
writes into docs/performance.md and the figures file ``harness.run --estimate --figures`` reads.  The
measurements are replaced by a fake here; the slow test runs the real suite at its tiny size on the CPU."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import gpu_suite as G
from harness.estimate import estimate_from_figures, read_figures

REPO = Path(__file__).resolve().parents[1]


def _fake(step, ref):
    if step.section == "throughput":
        return {"units_per_hour": 100.0 * step.workers}
    fast = step.mode == "fast"
    return {"seconds": 2.0 if fast else 4.0, "ttt_s": 0.0, "inference_s": 4.0, "s_per_frame": 0.5 if fast else 1.0, "peak_mb": 900.0 if fast else 1000.0,
            "JF": 0.70 if fast else 0.72, **({"JF_agreement": 0.99} if fast else {})}


def test_plan_in_priority_order():
    steps = G.plan(G.Suite.tiny("cpu"))
    sections = [s.section for s in steps]
    assert sections == ["inference"] * 10 + ["ttt"] * 6 + ["throughput"] * 4
    assert [s.method for s in steps[:10:2]] == ["stcn", "xmem", "cutie", "sam2.1-t", "sam2.1-b+"]
    assert [(s.mode, s.spec.amp) for s in steps[:2]] == [("exact", False), ("fast", True)]
    sam = [s for s in steps if s.method.startswith("sam2")]
    assert all(dict(s.spec.load_options) == {"image_size": 128} for s in sam)
    assert all(s.spec.load_options == () for s in steps if not s.method.startswith("sam2"))
    assert {s.spec.kind for s in steps if s.section == "ttt"} == {"mcc", "ent", "ae"}
    assert [(s.method, s.workers) for s in steps if s.section == "throughput"] == [
        ("stcn", 1), ("stcn", 2), ("stcn+mcc", 1), ("stcn+mcc", 2)]
    full = G.plan(G.Suite("cuda"))
    assert (full[0].spec.height, full[0].spec.width) == (480, 854) and full[0].spec.rounds is None


def test_every_row_in_the_tables_and_figures():
    report = G.run_suite(G.Suite.tiny("cpu"), log=lambda line: None, measure=_fake)
    md = G.markdown(report)
    for _, name in G.UNIT_ROWS:  # sam2.1-b+ is an inference row although its name has a '+'
        row = next(line for line in md.splitlines() if line.startswith(f"| {name} |"))
        assert "—" not in row and "1.0000" in row and "72.00" in row and "-2.00" in row, row
    assert "| stcn+mcc | 100.0 | 200.0 |" in md
    fig = G.figures(report)
    assert set(fig["methods"]) == {name for _, name in G.UNIT_ROWS}
    assert fig["methods"]["sam2.1-b+"]["fast"]["seconds_per_unit"] == 2.0
    assert fig["methods"]["stcn"]["units_per_hour"] == {"1": 100.0, "2": 200.0}


def test_budget_skips_and_says_so(monkeypatch):
    clock = iter(range(0, 10_000, 100))  # every step starts 100 s after the last
    monkeypatch.setattr(G.time, "perf_counter", lambda: next(clock))
    report = G.run_suite(G.replace(G.Suite.tiny("cpu"), budget_s=250), log=lambda line: None, measure=_fake)
    done = [r for r in report["results"] if "skipped" not in r]
    assert len(done) == 2 and all("250 s" in r["skipped"] for r in report["results"][2:])
    row = next(line for line in G.markdown(report).splitlines() if line.startswith("| sam2.1-t |"))
    assert row.count("skipped (budget)") == 8 and row.count("—") == 2, row  # 4 cells per mode; no comparison


def test_a_failed_step_is_named_and_the_suite_goes_on():
    def measure(step, ref):
        if step.method == "xmem":
            raise RuntimeError("child failed\nCUDA out of memory")
        return _fake(step, ref)

    report = G.run_suite(G.Suite.tiny("cpu"), log=lambda line: None, measure=measure)
    xmem = [r for r in report["results"] if r["method"] == "xmem"]
    assert [r["failed"] for r in xmem] == ["CUDA out of memory"] * 2
    assert all("seconds" in r for r in report["results"] if r["method"] == "cutie")


def test_figures_feed_the_estimate(tmp_path):
    report = G.run_suite(G.Suite.tiny("cpu"), log=lambda line: None, measure=_fake)
    path = tmp_path / "figures.json"
    path.write_text(json.dumps(G.figures(report)))
    est = estimate_from_figures(read_figures(path), "stcn+mcc", units=10, done=0, pending=10)
    assert est.seconds_per_unit == 4.0 and est.per_workers == {1: 0.1, 2: 0.05}
    assert any("CPU" in n for n in est.notes)


def test_update_docs_replaces_only_the_block(tmp_path):
    doc = tmp_path / "perf.md"
    doc.write_text(f"intro\n{G.DOCS_BEGIN}\nold table\n{G.DOCS_END}\noutro\n")
    G.update_docs("new table\n", doc)
    assert doc.read_text() == f"intro\n{G.DOCS_BEGIN}\nnew table\n{G.DOCS_END}\noutro\n"
    (tmp_path / "bare.md").write_text("no markers\n")
    with pytest.raises(SystemExit, match="gpu_suite"):
        G.update_docs("x", tmp_path / "bare.md")


def test_performance_doc_has_the_block():
    text = (REPO / "docs" / "performance.md").read_text()
    assert text.count(G.DOCS_BEGIN) == 1 and text.count(G.DOCS_END) == 1
    assert text.index(G.DOCS_BEGIN) < text.index(G.DOCS_END)


@pytest.mark.slow
def test_tiny_suite_runs_on_the_cpu(tmp_path):
    """The real suite, every measurement path, at its tiny size (exact mode; the fast mode's autocast path
    is the same code with amp=True, exercised by benchmarks/_device's own tests)."""
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "benchmarks.gpu_suite", "--tiny", "--device", "cpu", "--modes",
                           "exact", "--threads", "1", "--out", str(out), "--budget-min", "30"],
                          cwd=REPO, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads((out / "gpu_suite.json").read_text())
    assert not [r for r in report["results"] if "failed" in r or "skipped" in r]
    assert "—" not in (out / "gpu_suite.md").read_text()
    fig = read_figures(out / "figures.json")
    assert set(fig["methods"]) == {name for _, name in G.UNIT_ROWS}
