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
