"""The leaderboard build CLI: CSVs, Markdown, plots and a self-contained index.html."""
from __future__ import annotations

import base64
import html
import io
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from leaderboard.build import main
from leaderboard.synthetic import make_synthetic_results

METHODS = {
    "stcn": {"seeds": [0], "quality": 0.8},
    "stcn+mcc": {"seeds": [0, 1], "quality": 0.8, "ttt_gain": 0.05},
    "xmem": {"seeds": [0], "quality": 0.85, "random_init": True},
}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("lbreport")
    results = make_synthetic_results(base / "results", methods=METHODS, videos={"blackswan": 1, "dog": 2, "judo": 2},
                                     corruptions=["contrast", "style1"], strengths=["low", "high"], frames=6,
                                     failed=[("stcn+mcc", "high/style1", "dog", 1)],
                                     missing=[("stcn", "low/contrast", "judo", 0)])
    out = base / "leaderboard_out"
    assert main(["--results", str(results), "--out", str(out), "--strength", "high"]) == 0
    return results, out


class _Page(HTMLParser):
    """Collects what a reader sees: tables, images, ids and the text under each id."""

    def __init__(self) -> None:
        super().__init__()
        self.tables = 0
        self.images: list[str] = []
        self.ids: dict[str, str] = {}
        self._open: list[tuple[str, str | None]] = []
        self.text: dict[str, list[str]] = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self.tables += 1
        if tag == "img":
            self.images.append(a.get("src", ""))
        if "id" in a:
            self.ids[a["id"]] = tag
        if tag not in ("img", "meta", "br"):
            self._open.append((tag, a.get("id")))

    def handle_endtag(self, tag):
        while self._open:
            t, _ = self._open.pop()
            if t == tag:
                break

    def handle_data(self, data):
        for _, ident in self._open:
            if ident:
                self.text.setdefault(ident, []).append(data)

    def under(self, ident: str) -> str:
        return " ".join(self.text.get(ident, []))


def test_outputs_written(built):
    _, out = built
    for name in ("leaderboard.csv", "summary.csv", "per_video.csv", "ttt_gain.csv", "missing.csv", "runs.csv",
                 "paper_reference.csv", "leaderboard.md", "index.html", "corruptions_low.csv", "corruptions_high.csv"):
        assert (out / name).is_file(), name
    for plot in ("jf_vs_strength", "heatmap", "per_frame", "ttt_per_video_stcn_plus_mcc_high", "ttt_gain_stcn_plus_mcc"):
        png = out / "plots" / f"{plot}.png"
        svg = out / "plots" / f"{plot}.svg"
        with Image.open(png) as im:
            assert im.size[0] > 200, plot
        assert svg.read_text().lstrip().startswith("<?xml"), plot
    assert not list(out.rglob(".*tmp*")), "temporary files left behind"


def test_csvs_round_trip_the_tables(built):
    results, out = built
    lb = pd.read_csv(out / "leaderboard.csv")
    row = lb[(lb.method == "stcn") & (lb.variant == "low/contrast")].iloc[0]
    assert row.status == "incomplete" and np.isnan(row.JF)
    assert set(lb[lb.method == "xmem"].random_init) == {True}
    missing = pd.read_csv(out / "missing.csv")
    assert sorted(missing.status) == ["failed", "missing"]
    pv = pd.read_csv(out / "per_video.csv")
    r = pv[(pv.method == "stcn+mcc") & (pv.variant == "clean") & (pv.video == "dog")].iloc[0]
    assert r.ttt_gain == pytest.approx(r.JF - r.base_JF, abs=1e-12) and r.base_method == "stcn"
    md = (out / "leaderboard.md").read_text()
    assert "WARNING: random-init" in md and "incomplete" in md and "Paper reference" in md


def test_html_is_self_contained_with_tables_images_and_warnings(built):
    _, out = built
    text = (out / "index.html").read_text(encoding="utf-8")
    page = _Page()
    page.feed(text)
    assert page.tables >= 8
    assert len(page.images) == 6  # 5 figures + ours vs published
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).verify()
    assert "http://" not in text and "https://" not in text  # nothing fetched from elsewhere
    warning = page.under("random-init-warning")
    assert "RANDOM-INIT" in warning and "xmem" in warning and "stcn" not in warning
    missing = page.under("missing")
    assert "judo (seed 0)" in missing and "dog (seed 1)" in missing and "synthetic failure" in missing
    paper = page.under("paper")
    assert "NOT measured" in paper and "Missing reference numbers" not in paper and "HODOR" in paper
    vs = page.under("vs-paper")
    assert "STCN+tt-MCC" in vs and "85.3" in vs and "Not compared (random-init" in vs and "XMem " not in vs
    # measured tables never contain the reference methods' rows
    assert "HODOR" not in page.under("leaderboard") and "HODOR" not in page.under("summary")
    assert "synthetic" in page.under("synthetic-notice").lower()
    for section in ("summary", "vs-paper", "robustness", "leaderboard", "corruptions", "ttt", "plots", "runs",
                    "per-video"):
        assert section in page.ids, section
    assert "stcn+mcc" in page.under("ttt") and "incomplete" in page.under("summary")


def test_header_names_the_dataset_and_the_paper_columns(built):
    _, out = built
    page = _Page()
    page.feed((out / "index.html").read_text(encoding="utf-8"))
    header = page.under("dataset")
    assert "DAVIS-2017 (davis2017)" in header and "val" in header and "3 (blackswan, dog, judo)" in header
    assert "Tables 1-3" in page.under("paper-columns") and "ours on 3 of the 30 val videos" in page.under("paper-columns")
    # the paper reference names each source once per paper table, not on every row
    paper = page.under("paper")
    ref = pd.read_csv(out / "paper_reference.csv")
    assert paper.count("Bertrand et al.") == ref.table.nunique() < len(ref)


def test_davis2016_run_is_named_and_never_compared_with_the_paper(tmp_path):
    """A DAVIS-2016-C run on 4 videos: '2016' in the title and header, no DAVIS-2017 paper comparison."""
    results = make_synthetic_results(tmp_path / "r", methods={"stcn": {"seeds": [0], "quality": 0.8}},
                                     videos={"bear": 1, "boat": 1, "car-roundabout": 1, "dog": 1},
                                     corruptions=["contrast"], strengths=["high"], frames=5)
    for unit in results.rglob("seed*.json"):  # what harness.run records for a DAVIS-2016 unit (harness.protocols)
        rec = json.loads(unit.read_text())
        unit.write_text(json.dumps({**rec, "dataset": "davis2016", "split": "val", "protocol": "after-first"}))
    out = tmp_path / "lb"
    assert main(["--results", str(results), "--out", str(out)]) == 0
    page = _Page()
    text = (out / "index.html").read_text(encoding="utf-8")
    page.feed(text)
    assert "<h1>DAVIS-2016-C leaderboard</h1>" in text and "<title>DAVIS-2016-C leaderboard</title>" in text
    header = page.under("dataset")
    assert "DAVIS-2016 (davis2016)" in header and "val" in header and "4 (bear, boat, car-roundabout, dog)" in header
    assert page.under("paper-columns").startswith("none: the DAVIS-C paper's tables")
    assert "Not compared: the paper's numbers are on DAVIS-2017 val, this tree is on DAVIS-2016 val" in page.under("vs-paper")
    assert "STCN" not in page.under("vs-paper")  # no published row next to ours
    assert "Table 1" not in page.under("summary") and "DAVIS-2016" in page.under("summary")
    assert pd.read_csv(out / "paper_comparison.csv").empty
    md = (out / "leaderboard.md").read_text()
    assert md.startswith("# DAVIS-2016-C leaderboard") and "davis2016" in md


def test_cli_reports_bad_input(tmp_path, capsys):
    assert main(["--results", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["--results", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
    assert "no results found" in capsys.readouterr().err


_PROBE = """<script>
window.addEventListener("load", () => {
  const box = (el) => { const r = el.getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; };
  const warning = document.getElementById("random-init-warning");
  const style = warning ? getComputedStyle(warning) : null;
  document.body.setAttribute("data-probe", JSON.stringify({
    images: [...document.images].map((im) => ({complete: im.complete, w: im.naturalWidth, h: im.naturalHeight,
                                                box: box(im)})),
    tables: [...document.querySelectorAll("table")].map((t) => t.rows.length),
    summary: [...document.querySelectorAll("table.summary")].map((t) => {
      const s = t.closest(".scroll"); return {scroll: s.scrollWidth, client: s.clientWidth, table: t.offsetWidth}; }),
    dataset: (document.getElementById("dataset") || {}).innerText || "",
    warning: warning && {box: box(warning), display: style.display, visibility: style.visibility,
                         text: warning.innerText},
    height: document.documentElement.scrollHeight}));
});
</script>"""


def _chromium() -> str:
    """The Chromium executable; skipped where there is none, but FAILS under CI (CI=true): .ci/run installs it."""
    exe = shutil.which("chromium")
    if exe is None:
        why = "needs Chromium on PATH (apt-get install chromium)"
        if os.environ.get("CI", "").strip().lower() in ("true", "1"):
            pytest.fail(f"CI is set but {why}: the real-browser check must run in CI")
        pytest.skip(why)
    return exe


def test_report_renders_in_headless_chromium(built, tmp_path):
    """The real page in a real browser at 1400 px: every table is there, every image decodes and shows on the
    screenshot, the red random-init warning is visible at the top, the header names the dataset, and the
    summary tables (partial cells included) fit without a horizontal scrollbar."""
    exe = _chromium()
    _, out = built
    width, height = 1400, 16000  # tall enough to hold the whole report (asserted below)
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--hide-scrollbars", f"--window-size={width},{height}"]

    def chromium(*args: str, profile: str) -> str:
        cmd = [exe, *flags, f"--user-data-dir={tmp_path / profile}", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout

    shot = tmp_path / "shot.png"
    chromium(f"--screenshot={shot}", (out / "index.html").as_uri(), profile="p1")
    # the same page with a probe script that records, once loaded, what the browser made of it
    probe = tmp_path / "probe.html"
    probe.write_text((out / "index.html").read_text(encoding="utf-8").replace("</body>", _PROBE + "</body>"),
                     encoding="utf-8")
    dom = chromium("--virtual-time-budget=10000", "--dump-dom", probe.as_uri(), profile="p2")

    page = _Page()
    page.feed(dom)
    assert page.tables >= 8 and len(page.images) == 6
    assert "RANDOM-INIT" in page.under("random-init-warning") and "xmem" in page.under("random-init-warning")
    match = re.search(r'data-probe="([^"]*)"', dom)
    assert match, "the probe script did not run"
    seen = json.loads(html.unescape(match.group(1)))
    assert seen["height"] <= height, f"page is {seen['height']} px tall: enlarge the window"
    assert len(seen["tables"]) >= 8 and min(seen["tables"]) >= 2  # a header row and at least one row each
    assert len(seen["images"]) == 6
    for im in seen["images"]:
        assert im["complete"] and im["w"] > 200 and im["h"] > 100, im  # decoded, not a broken-image icon
        assert im["box"][2] > 100 and im["box"][3] > 50, im  # laid out at a visible size
    # the two summary tables fit at 1400 px: no horizontal scrolling hides a column (issue 28 item 6)
    assert len(seen["summary"]) == 2
    for box in seen["summary"]:
        assert box["scroll"] <= box["client"] and box["table"] > 300, box
    assert "DAVIS-2017" in seen["dataset"] and "val" in seen["dataset"] and "3" in seen["dataset"]
    warning = seen["warning"]
    assert warning["display"] != "none" and warning["visibility"] == "visible" and "RANDOM-INIT" in warning["text"]

    with Image.open(shot) as im:
        img = np.asarray(im.convert("RGB"), dtype=float)
    assert img.shape[:2] == (height, width)
    assert img.std() > 20  # not a blank page
    # the red random-init warning banner is painted where the DOM says it is, near the top
    left, top, w, h = (int(round(v)) for v in warning["box"])
    assert top < 400 and h > 10
    banner = img[top:top + h, left:left + w]
    red = (banner[..., 0] > 120) & (banner[..., 1] < 80) & (banner[..., 2] < 80)
    edge = np.concatenate([red[:2].ravel(), red[-2:].ravel(), red[:, :2].ravel(), red[:, -2:].ravel()])
    assert edge.mean() > 0.9, f"red border: {edge.mean():.1%}"  # measured 100 %
    assert red[3:-3, 3:-3].sum() > 1500, "no red warning text inside the box"  # measured 5306 px
    # every image is painted: its box on the screenshot is not flat (a missing image would be)
    for n, image in enumerate(seen["images"]):
        left, top, w, h = (int(round(v)) for v in image["box"])
        region = img[top:top + h, left:left + w]
        assert region.size and region.std() > 10, f"image {n} not painted at {image['box']}"
