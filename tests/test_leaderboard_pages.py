"""Qualitative outputs on a real (tiny) run: overlays, per-video pages, the corruption gallery, the paper's
figure and the overlay videos.

Two methods run with ``--save-masks`` on a small synthetic DAVIS-C (2 videos x 6 frames x 48x80, 2 corruptions
x 2 strengths): label propagation and golden-init STCN at the sample's size (seconds on one CPU).
"""
from __future__ import annotations

import html
import json
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from common.ffmpeg import find_ffmpeg
from davis_c import build as davis_build
from davis_c.masks import palette_colors
from davis_c.sample import make_sample
from harness.cli import main as harness_main
from leaderboard.build import main as build_main
from leaderboard.figure import load_rows, main as figure_main, make_figure
from leaderboard.overlay import FILL_ALPHA, THUMB_WIDTH, overlay, palette
from leaderboard.pages import sample_frames

pytestmark = pytest.mark.usefixtures("one_torch_thread")

METHODS = {"labelprop": [], "stcn": ["--random-init", "--set", "resolution=null"]}
VARIANTS = ["clean", "high/contrast"]


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("lbpages")
    root = make_sample(tmp / "DAVIS", videos=2, frames=6, height=48, width=80, seed=3)
    h5 = tmp / "c.h5"
    davis_build.build(root, h5, corruptions=["gaussian_noise", "contrast"], strengths=["low", "high"],
                      progress=False, log=lambda m: None)
    results = tmp / "results"
    for method, extra in METHODS.items():
        assert harness_main(["--method", method, "--data", str(h5), "--out", str(results), "--save-masks",
                             "--no-progress", "--variants", *VARIANTS, *extra]) == 0
    # one variant scored without --save-masks: its page must say which command saves them
    assert harness_main(["--method", "labelprop", "--data", str(h5), "--out", str(results), "--no-progress",
                         "--variants", "low/gaussian_noise"]) == 0
    out = tmp / "lb"
    assert build_main(["--results", str(results), "--out", str(out), "--page-variant", "high/contrast"]) == 0
    return {"root": root, "h5": h5, "results": results, "out": out, "tmp": tmp}


class _Imgs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.imgs: list[dict] = []
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a)
        if tag == "a" and "href" in a:
            self.links.append(a["href"])


def _parse(path: Path) -> _Imgs:
    p = _Imgs()
    p.feed(path.read_text(encoding="utf-8"))
    return p


# ------------------------------------------------------------------------------------------------ overlay
def test_overlay_colours_objects_with_the_davis_palette():
    assert (palette() == palette_colors(256)).all()  # the same colours as the DAVIS annotation PNGs
    frame = np.full((40, 60, 3), 100, np.uint8)
    lab = np.zeros((40, 60), np.uint8)
    lab[10:30, 20:44] = 1
    lab[0:6, 0:6] = 255  # void: not drawn
    out = overlay(frame, lab, contour=2)
    red = palette()[1].astype(float)
    expect_fill = np.round((1 - FILL_ALPHA) * 100 + FILL_ALPHA * red)
    assert np.array_equal(out[20, 30], expect_fill)  # interior: semi-transparent fill
    assert np.array_equal(out[10, 30], red) and np.array_equal(out[11, 30], red)  # 2 px contour, opaque
    assert np.array_equal(out[12, 30], expect_fill)
    assert np.array_equal(out[2, 2], [100, 100, 100]) and np.array_equal(out[35, 5], [100, 100, 100])
    # object ids keep their colour across label maps (methods), whatever else is in the map
    other = np.where(lab == 1, 2, 0).astype(np.uint8)
    other[30:38, 50:58] = 1
    both = overlay(frame, other)
    assert np.array_equal(both[20, 30], np.round((1 - FILL_ALPHA) * 100 + FILL_ALPHA * palette()[2]))
    assert np.array_equal(both[34, 54], expect_fill)
    # several maps: the first filled, the others outlined only
    two = overlay(frame, [lab, other])
    assert np.array_equal(two[10, 30], palette()[2]) and np.array_equal(two[20, 30], expect_fill)
    # drawn at the thumbnail size: 2 px contours there, not scaled-down ones
    small = overlay(frame, lab, width=30)
    assert small.shape == (20, 30, 3) and np.array_equal(small[5, 15], red)


def test_sample_frames_even_plus_worst():
    assert sample_frames(6, 5) == [0, 1, 2, 4, 5]
    assert sample_frames(100, 4, [37]) == [0, 33, 37, 66, 99]
    assert sample_frames(3, 5, [7]) == [0, 1, 2]


# ------------------------------------------------------------------------------------------------ pages
def test_per_video_pages_show_ground_truth_and_both_methods(sample_run):
    out = sample_run["out"]
    index = _parse(out / "index.html")
    for video in ("synth-000", "synth-001"):
        page_path = out / "videos" / f"{video}.html"
        assert f"videos/{video}.html" in index.links  # linked from the index's per-video table
        text = page_path.read_text(encoding="utf-8")
        page = _parse(page_path)
        srcs = [i["src"] for i in page.imgs]
        for variant in ("clean", "high_contrast"):
            for row in ("input", "gt", "labelprop", "stcn"):
                assert any(re.fullmatch(rf"{video}/{variant}_{re.escape(row)}_\d{{5}}\.jpg", s) for s in srcs), (row, variant)
        for src in srcs:
            with Image.open(out / "videos" / src) as im:
                assert im.format in ("JPEG", "PNG")
                if im.format == "JPEG":
                    assert im.width == THUMB_WIDTH
        assert "per_frame_high_contrast.png" in " ".join(srcs)
        assert "labelprop · J&amp;F" in text and "stcn (random-init!) · J&amp;F" in text
        assert 'href="../index.html#per-video"' in text
        # labelprop scored low/gaussian_noise without --save-masks: not on this page (page variant high/contrast)
        assert "--save-masks" not in text


def test_ground_truth_thumbnail_has_the_object_colour(sample_run):
    out, h5 = sample_run["out"], sample_run["h5"]
    from harness.data import open_source

    with open_source(h5) as src:
        v = src.load("clean", "synth-000")
    t = 0
    with Image.open(out / "videos" / "synth-000" / f"clean_gt_{t:05d}.jpg") as im:
        thumb = np.asarray(im.convert("RGB"), dtype=float)
    expected = overlay(v.frames[t], v.masks[t], width=THUMB_WIDTH).astype(float)
    assert thumb.shape == expected.shape
    obj = int(sorted(set(np.unique(v.masks[t])) - {0, 255})[0])
    # a pixel deep inside object `obj` at thumbnail scale (away from its contour: the fill colour)
    small = np.asarray(Image.fromarray(v.masks[t]).resize((THUMB_WIDTH, thumb.shape[0]), Image.NEAREST))
    from scipy.ndimage import binary_erosion

    inner = np.argwhere(binary_erosion(small == obj, iterations=6))
    y, x = inner[len(inner) // 2]
    plain = overlay(v.frames[t], width=THUMB_WIDTH)[y, x].astype(float)  # the frame alone, same size
    fill = (1 - FILL_ALPHA) * plain + FILL_ALPHA * palette()[obj].astype(float)  # the object's colour, half opaque
    assert np.abs(expected[y, x] - fill).max() <= 1
    assert np.abs(thumb[y, x] - fill).max() <= 6  # JPEG quality 80: measured 3.5


def test_page_without_saved_masks_names_the_command(sample_run, tmp_path):
    out = tmp_path / "lb"
    assert build_main(["--results", str(sample_run["results"]), "--out", str(out),
                       "--page-variant", "low/gaussian_noise"]) == 0
    text = html.unescape((out / "videos" / "synth-000.html").read_text(encoding="utf-8"))
    assert "Masks not saved" in text
    assert (f"python -m harness.run --method labelprop --data {sample_run['h5']} --variants low/gaussian_noise "
            f"--videos synth-000 --out {sample_run['results']} --save-masks") in text


def test_gallery_has_every_corruption_and_strength(sample_run):
    out = sample_run["out"]
    page = _parse(out / "gallery.html")
    alts = sorted(i["alt"] for i in page.imgs)
    assert len(alts) == 5 and all(a.startswith("synth-000 ") for a in alts)
    assert {a.split(" ")[1] for a in alts} == {"clean", "low/gaussian_noise", "low/contrast", "high/gaussian_noise",
                                               "high/contrast"}
    for i in page.imgs:
        with Image.open(out / i["src"]) as im:
            assert im.format == "JPEG" and im.width == THUMB_WIDTH
    assert 'href="gallery.html"' in (out / "index.html").read_text(encoding="utf-8")


# ------------------------------------------------------------------------------------------------ figure
def test_figure_command_grid_pixels_and_labels(sample_run, tmp_path, capsys):
    results, h5 = sample_run["results"], sample_run["h5"]
    frames = [0, 2, 4]
    png, pdf = tmp_path / "fig.png", tmp_path / "fig.pdf"
    argv = ["--results", str(results), "--video", "synth-001", "--variant", "high/contrast",
            "--methods", "labelprop", "stcn", "--frames", *map(str, frames), "--ground-truth",
            "--out", str(png), str(pdf), "--dpi", "100"]
    assert figure_main(argv) == 0
    assert pdf.read_bytes()[:5] == b"%PDF-"
    # the same grid through the library, to know where each panel is drawn
    rows = load_rows(results, "synth-001", "high/contrast", ["labelprop", "stcn"], data=h5, frames=frames)
    fig = make_figure(rows, frames, ground_truth=True)
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig).draw()
    with Image.open(png) as im:
        img = np.asarray(im.convert("RGB"), dtype=float)
    assert img.shape[:2] == (round(fig.get_figheight() * 100), round(fig.get_figwidth() * 100))
    axes = np.array(fig.axes).reshape(4, len(frames))  # input, ground truth, labelprop, stcn
    labels = [axes[i, 0].get_ylabel() for i in range(4)]
    assert labels[0] == "input\nhigh/contrast" and labels[1] == "ground truth"
    for label, method in zip(labels[2:], ("labelprop", "stcn")):
        rec = json.loads((results / method / "high" / "contrast" / "synth-001" / "seed1.json").read_text())
        assert label == f"{method}\nJ&F {100 * rec['JF']:.1f}"
    assert [a.get_title() for a in axes[0]] == [f"frame {t}" for t in frames]

    def pixel(ax, y, x):
        x0, y0, x1, y1 = ax.get_window_extent().extents  # display pixels, origin bottom left
        h, w = rows.frames.shape[1:3]
        px = x0 + (x + 0.5) / w * (x1 - x0)
        py = img.shape[0] - (y1 - (y + 0.5) / h * (y1 - y0))
        return img[int(py), int(px)]

    from scipy.ndimage import binary_erosion

    gt = rows.gt[0]
    checked = 0
    for obj in sorted(set(np.unique(gt)) - {0, 255}):
        inner = np.argwhere(binary_erosion(gt == obj, iterations=2))  # away from the contour: the fill colour
        if not len(inner):
            continue
        y, x = inner[len(inner) // 2]
        want = overlay(rows.frames[0], gt)[y, x].astype(float)
        assert np.abs(want - ((1 - FILL_ALPHA) * rows.frames[0][y, x] + FILL_ALPHA * palette()[obj])).max() <= 1
        assert np.abs(pixel(axes[1, 0], y, x) - want).max() <= 5, obj  # GT row (measured 4: resampling)
        assert np.abs(pixel(axes[0, 0], y, x) - rows.frames[0][y, x]).max() <= 5  # input row: the frame itself
        # each method row: that method's saved mask drawn the same way
        for i, method in ((2, "labelprop"), (3, "stcn")):
            drawn = overlay(rows.frames[0], rows.methods[method][0])[y, x].astype(float)
            assert np.abs(pixel(axes[i, 0], y, x) - drawn).max() <= 5, (method, obj)
        checked += 1
    assert checked >= 2


def test_figure_without_saved_masks_prints_the_command(sample_run, tmp_path, capsys):
    assert figure_main(["--results", str(sample_run["results"]), "--video", "synth-000", "--variant",
                        "low/gaussian_noise", "--methods", "labelprop", "--out", str(tmp_path / "f.png")]) == 2
    err = capsys.readouterr().err
    assert "no masks saved" in err and "--save-masks" in err and "--variants low/gaussian_noise" in err
    assert not (tmp_path / "f.png").exists()
    # the command repeats the run's settings that differ from the preset, so harness.run accepts the rerun
    assert figure_main(["--results", str(sample_run["results"]), "--video", "synth-000", "--variant",
                        "low/contrast", "--methods", "stcn", "--out", str(tmp_path / "f.png")]) == 2
    err = capsys.readouterr().err
    assert "python -m harness.run --method stcn --random-init --set resolution=null --data " in err


def test_video_out_writes_decodable_mp4(sample_run, tmp_path):
    assert figure_main(["--results", str(sample_run["results"]), "--video", "synth-000", "--variant", "clean",
                        "--methods", "labelprop", "stcn", "--out", str(tmp_path / "f.png"),
                        "--video-out", str(tmp_path / "vids")]) == 0
    mp4 = tmp_path / "vids" / "synth-000_clean.mp4"
    assert mp4.read_bytes()[4:8] == b"ftyp"
    # decode with the same ffmpeg: 6 frames of input | ground truth | labelprop | stcn (4 x 80 px + 3 gaps of 4)
    raw = subprocess.run([find_ffmpeg(), "-v", "error", "-i", str(mp4), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, check=True).stdout
    assert len(raw) == 6 * 48 * (4 * 80 + 3 * 4) * 3
    assert not list((tmp_path / "vids").glob(".*"))  # no temporary file left


# ------------------------------------------------------------------------------------------------ browser
_IMAGES_PROBE = """<script>
window.addEventListener("load", () => {
  const box = (el) => { const r = el.getBoundingClientRect(); return [r.left + scrollX, r.top + scrollY, r.width, r.height]; };
  document.body.setAttribute("data-probe", JSON.stringify({
    images: [...document.images].map((im) => ({src: im.getAttribute("src"), complete: im.complete,
                                                w: im.naturalWidth, h: im.naturalHeight, box: box(im)})),
    back: document.getElementById("back").href}));
});
</script>"""
_CLICK_BACK = """<script>
window.addEventListener("load", () => { document.getElementById("back").click(); });
</script>"""


def _with_script(page: Path, script: str, name: str) -> Path:
    """A copy of ``page`` next to it (same relative links) with ``script`` before </body>."""
    copy = page.with_name(name)
    copy.write_text(page.read_text(encoding="utf-8").replace("</body>", script + "</body>"), encoding="utf-8")
    return copy


@pytest.mark.parametrize("page", ["videos/synth-000.html", "gallery.html"])
def test_video_page_and_gallery_in_headless_chromium(sample_run, tmp_path, page):
    """A per-video page and the gallery in a real browser: every image decodes and paints, and the
    'back to the leaderboard' link leads to the index."""
    from test_leaderboard_report import _Page, _chromium

    exe = _chromium()
    path = sample_run["out"] / page
    width, height = 1400, 2600
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--hide-scrollbars", f"--window-size={width},{height}"]

    def chromium(*args: str, profile: str) -> str:
        cmd = [exe, *flags, f"--user-data-dir={tmp_path / profile}", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout

    probe = _with_script(path, _IMAGES_PROBE, f"_probe_{path.name}")
    back = _with_script(path, _CLICK_BACK, f"_back_{path.name}")
    shot = tmp_path / "shot.png"
    try:
        dom = chromium("--virtual-time-budget=10000", "--dump-dom", probe.as_uri(), profile="p1")
        chromium(f"--screenshot={shot}", path.as_uri(), profile="p2")
        after_click = chromium("--virtual-time-budget=10000", "--dump-dom", back.as_uri(), profile="p3")
    finally:
        probe.unlink()
        back.unlink()
    match = re.search(r'data-probe="([^"]*)"', dom)
    assert match, "the probe script did not run"
    seen = json.loads(html.unescape(match.group(1)))
    n_expected = 5 if page == "gallery.html" else 2 * 4 * 5 + 2  # 2 variants x 4 rows x 5 frames + 2 plots
    assert len(seen["images"]) == n_expected
    with Image.open(shot) as im:
        img = np.asarray(im.convert("RGB"), dtype=float)
    painted = 0
    for im in seen["images"]:
        assert im["complete"] and im["w"] > 0 and im["h"] > 0, im  # decoded, not a broken-image icon
        left, top, w, h = (int(round(v)) for v in im["box"])
        assert w >= 100 and h >= 40, im
        if top + h <= height:  # on the screenshot: painted, not a flat box
            region = img[top:top + h, left:left + w]
            assert region.std() > 5, f"{im['src']} not painted at {im['box']}"
            painted += 1
    assert painted >= min(5, n_expected)
    # the back link: resolves to the index, and clicking it opens the leaderboard
    index = (sample_run["out"] / "index.html").resolve().as_uri()
    assert seen["back"].split("#")[0] == index
    landed = _Page()
    landed.feed(after_click)
    assert "per-video" in landed.ids and "summary" in landed.ids and "back" not in landed.ids
