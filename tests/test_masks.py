"""Mask PNG I/O: DAVIS palette, exact ids round trip, refusal of colour renderings, atomic writes."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from davis_c.davis import DavisError
from davis_c.masks import DAVIS_PALETTE, palette_colors, read_mask, write_mask


def test_palette_matches_pascal_voc_colour_map():
    assert isinstance(DAVIS_PALETTE, bytes) and len(DAVIS_PALETTE) == 768
    cmap = np.frombuffer(DAVIS_PALETTE, np.uint8).reshape(256, 3)
    expected = {0: (0, 0, 0), 1: (128, 0, 0), 2: (0, 128, 0), 3: (128, 128, 0), 4: (0, 0, 128),
                5: (128, 0, 128), 6: (0, 128, 128), 7: (128, 128, 128), 8: (64, 0, 0), 9: (192, 0, 0),
                10: (64, 128, 0), 255: (224, 224, 192)}
    for idx, rgb in expected.items():
        assert tuple(cmap[idx]) == rgb, idx
    assert len({tuple(c) for c in cmap}) == 256  # every id has its own colour
    np.testing.assert_array_equal(palette_colors(256), cmap)


def test_palette_equals_the_official_annotation_palette(golden):
    png = golden / "jf/davis_mini/DAVIS/Annotations/480p/seq-plain/00000.png"
    with Image.open(png) as img:
        assert bytes(img.getpalette()) == DAVIS_PALETTE


def test_round_trip_and_format(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 6, size=(37, 53)).astype(np.uint8)
    labels[0, :5] = 255
    path = write_mask(tmp_path / "sub" / "00000.png", labels)
    assert path.is_file()
    with Image.open(path) as img:
        assert img.mode == "P" and img.size == (53, 37)
        assert bytes(img.getpalette()) == DAVIS_PALETTE
        np.testing.assert_array_equal(np.asarray(img), labels)
    out = read_mask(path)
    assert out.dtype == np.uint8 and out.shape == (37, 53)
    np.testing.assert_array_equal(out, labels)
    assert sorted(p.name for p in path.parent.iterdir()) == ["00000.png"]  # no temp file left behind


def test_write_accepts_int_and_bool_but_rejects_bad_ids(tmp_path):
    write_mask(tmp_path / "a.png", np.array([[0, 1], [2, 255]], dtype=np.int64))
    np.testing.assert_array_equal(read_mask(tmp_path / "a.png"), [[0, 1], [2, 255]])
    write_mask(tmp_path / "b.png", np.array([[True, False]]))
    np.testing.assert_array_equal(read_mask(tmp_path / "b.png"), [[1, 0]])
    with pytest.raises(ValueError, match="0..255"):
        write_mask(tmp_path / "c.png", np.array([[0, 256]]))
    with pytest.raises(ValueError, match="2-D"):
        write_mask(tmp_path / "d.png", np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(ValueError, match="integers"):
        write_mask(tmp_path / "e.png", np.zeros((2, 2), np.float32))
    assert not (tmp_path / "c.png").exists()


def test_read_grey_label_png(tmp_path):
    labels = np.array([[0, 1, 2], [3, 0, 1]], np.uint8)
    Image.fromarray(labels, mode="L").save(tmp_path / "l.png")
    np.testing.assert_array_equal(read_mask(tmp_path / "l.png"), labels)


def test_read_rejects_rgb(tmp_path):
    Image.fromarray(np.zeros((4, 5, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(DavisError, match=r"rgb\.png.*'RGB'"):
        read_mask(tmp_path / "rgb.png")


def test_read_rejects_unreadable_and_missing(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"this is not a png")
    with pytest.raises(DavisError, match="broken.png"):
        read_mask(bad)
    with pytest.raises(DavisError, match="missing.png"):
        read_mask(tmp_path / "missing.png")
    # a truncated PNG (valid header, cut data) is also a clear error
    write_mask(tmp_path / "full.png", np.random.default_rng(1).integers(0, 3, (64, 64)).astype(np.uint8))
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DavisError, match="cut.png"):
        read_mask(tmp_path / "cut.png")
