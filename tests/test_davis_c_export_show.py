"""davis_c.export (official folder layout, JPEG bytes copied) and davis_c.show (grid PNG)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

import davis_c
from davis_c import export as E
from davis_c import show as S
from davis_c.build import build

QUIET = {"progress": False, "log": lambda m: None}


@pytest.fixture(scope="module")
def store_path(tiny_davis_sample, tmp_path_factory):
    out = tmp_path_factory.mktemp("exp") / "davis_c.h5"
    build(tiny_davis_sample, out, corruptions=["contrast", "crf_compression"], strengths=["low", "high"], **QUIET)
    return out


def test_export_official_layout_copies_bytes(store_path, tmp_path):
    out = tmp_path / "DAVIS-C"
    assert E.main(["--h5", str(store_path), "--out", str(out), "--quiet"]) == 0
    with davis_c.open(store_path) as store:
        n = 0
        for s in ("low", "high"):
            for c in ("contrast", "crf_compression"):
                for v in store.videos:
                    files = sorted((out / s / c / v).iterdir())
                    assert [f.name for f in files] == [f"{x}.jpg" for x in store.frame_names(v)]
                    assert [f.read_bytes() for f in files] == store.images(s, c, v)
                    n += len(files)
        assert sorted(p.name for p in out.iterdir()) == ["high", "low"]
    assert E.export(store_path, out, progress=False) == n  # rerun: same files, nothing half-written
    assert not list(out.rglob("*.tmp"))


def test_export_filters_and_errors(store_path, tmp_path):
    n = E.export(store_path, tmp_path / "o", strengths=["high"], corruptions=["contrast"], clean=True,
                 progress=False)
    assert (tmp_path / "o" / "clean").is_dir() and not (tmp_path / "o" / "low").exists()
    assert n > 0
    assert E.main(["--h5", str(store_path), "--out", str(tmp_path / "p"), "--corruptions", "fog"]) == 2
    assert E.main(["--h5", str(tmp_path / "missing.h5"), "--out", str(tmp_path / "p")]) == 2


def test_show_grid(store_path, tmp_path):
    png = tmp_path / "grid.png"
    assert S.main(["--h5", str(store_path), "--out", str(png), "--tile-width", "100"]) == 0
    img = cv2.imread(str(png))
    assert img is not None
    # 3 rows (clean, contrast, crf) x 2 strength columns of 100 px tiles, plus labels
    assert img.shape[1] == S._LABEL_W + 2 * 104 and img.shape[0] > 3 * 50
    assert img.std() > 10  # not blank
    with davis_c.open(store_path) as store:
        assert S.main(["--h5", str(store_path), "--video", "nope", "--out", str(png)]) == 2
        assert S.main(["--h5", str(store_path), "--video", store.videos[0], "--frame", "99",
                       "--out", str(png)]) == 2


@pytest.fixture(scope="module")
def blur_store(tiny_davis_sample, tmp_path_factory):
    out = tmp_path_factory.mktemp("show") / "davis_c.h5"
    build(tiny_davis_sample, out, corruptions=["pixelate", "motion_blur"], strengths=["low", "high"], **QUIET)
    return out


def test_zoom_crop_repeats_pixels_around_the_centre():
    frame = np.arange(10 * 12 * 3, dtype=np.uint8).reshape(10, 12, 3)
    crop = S.zoom_crop(frame, 8, 6, zoom=2, center=(6, 5))        # 4 x 3 source pixels around (6, 5)
    np.testing.assert_array_equal(crop, frame[4:7, 4:8].repeat(2, 0).repeat(2, 1))
    edge = S.zoom_crop(frame, 8, 6, zoom=2, center=(0, 0))         # clipped into the frame
    np.testing.assert_array_equal(edge, frame[0:3, 0:4].repeat(2, 0).repeat(2, 1))
    big = S.zoom_crop(frame, 40, 30, zoom=3)                       # larger than the frame: white padding
    np.testing.assert_array_equal(big[:30, :36], frame.repeat(3, 0).repeat(3, 1))
    assert (big[:, 36:] == 255).all()


def test_show_defaults_to_the_middle_frame_with_crops(blur_store):
    with davis_c.open(blur_store) as store:
        v = store.videos[0]
        n = len(store.clean(v))
        assert S.default_frame(n) == n // 2 > 0
        img = S.grid(store, v, tile_width=56, zoom=2)
        np.testing.assert_array_equal(img, S.grid(store, v, n // 2, tile_width=56, zoom=2))
        clean = store.clean(v).frames[n // 2]
        rows, cols = list(store.corruptions), list(store.strengths)
        tile_h = round(clean.shape[0] * 56 / clean.shape[1])
        cell_h = 2 * tile_h + S._GAP
        step_y, step_x = cell_h + S._GAP, 56 + S._GAP
        top = step_y + S._HEADER_H

        def cell(c, s):
            y, x = top + rows.index(c) * step_y, S._LABEL_W + cols.index(s) * step_x
            return img[y:y + tile_h, x:x + 56], img[y + tile_h + S._GAP:y + cell_h, x:x + 56]

        pix = store.frames("high", "pixelate", v)[n // 2]
        np.testing.assert_array_equal(cell("pixelate", "high")[1], S.zoom_crop(pix, 56, tile_h, 2))
        blur = store.frames("high", "motion_blur", v).astype(float)
        change = [np.abs(blur[t] - store.clean(v).frames[t]).mean() for t in (0, n // 2)]
        assert change[1] > 3 * change[0]  # frame 0 is only re-encoded, the middle frame is blurred
        # the clean frame has its own row above the strength headers, scaled like the others; only the
        # outline of the crop region is drawn on it
        shown = img[:tile_h, S._LABEL_W:S._LABEL_W + 56]
        want = cv2.resize(clean, (56, tile_h), interpolation=cv2.INTER_AREA)
        diff = (shown != want).any(-1)
        assert 0 < diff.sum() < 0.5 * diff.size
        assert (shown[diff] == S._CROP_COLOUR).all()
        assert (img[tile_h:top - 1, S._LABEL_W:] != 255).any()  # the strength headers sit under the clean row


def test_show_full_res_and_options(blur_store, tmp_path):
    with davis_c.open(blur_store) as store:
        v = store.videos[0]
        frame = store.clean(v).frames[3]
        h, w = frame.shape[:2]
        img = S.grid(store, v, 3, full_res=True, corruptions=["pixelate"])
        pix = store.frames("low", "pixelate", v)[3]
        y, x = h + S._GAP + S._HEADER_H, S._LABEL_W
        np.testing.assert_array_equal(img[y:y + h, x:x + w], pix)  # full-size tile, pixel for pixel
        assert img.shape[0] == (h + S._GAP) * 2 + S._HEADER_H     # clean row + one corruption row
    png = tmp_path / "g.png"
    assert S.main(["--h5", str(blur_store), "--out", str(png), "--zoom", "3", "--center", "10", "10"]) == 0
    assert cv2.imread(str(png)) is not None
    assert S.main(["--h5", str(blur_store), "--out", str(png), "--corruptions", "fog"]) == 2
