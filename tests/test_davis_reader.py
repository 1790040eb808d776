"""DAVIS reader: the happy path on the synthetic sample, Full-Resolution, and every bad-input error."""
from __future__ import annotations

import inspect
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from davis_c.datasets import Davis2017

from davis_c.davis import DavisError, Video
from davis_c.masks import write_mask


@pytest.fixture
def root(tiny_davis_sample, tmp_path) -> Path:
    """A private, editable copy of the tiny sample."""
    dst = tmp_path / "DAVIS"
    shutil.copytree(tiny_davis_sample, dst)
    return dst


def _first(root: Path) -> str:
    return (root / "ImageSets/2017/val.txt").read_text().split()[0]


def test_reads_videos_lazily(root):
    ds = Davis2017(root)
    assert ds.videos == (root / "ImageSets/2017/val.txt").read_text().split()
    assert len(ds) == 2
    it = iter(ds)
    assert inspect.isgenerator(it)
    videos = list(it)
    for v in videos:
        assert isinstance(v, Video)
        assert v.frames.dtype == np.uint8 and v.frames.shape == (8, 64, 112, 3)
        assert v.masks.dtype == np.uint8 and v.masks.shape == (8, 64, 112)
        assert v.frame_names == [f"{t:05d}" for t in range(8)]
        ids = sorted(set(np.unique(v.masks[0]).tolist()) - {0, 255})
        assert v.object_ids == tuple(ids) and len(ids) >= 1
    # frames are the RGB JPEG contents, masks the palette indices
    v = ds.load(ds.videos[0])
    with Image.open(root / "JPEGImages/480p" / v.name / "00003.jpg") as img:
        np.testing.assert_array_equal(v.frames[3], np.asarray(img.convert("RGB")))
    with Image.open(root / "Annotations/480p" / v.name / "00003.png") as img:
        np.testing.assert_array_equal(v.masks[3], np.asarray(img))


def test_void_is_kept_and_not_an_object(root):
    name = _first(root)
    png = root / "Annotations/480p" / name / "00000.png"
    m = np.asarray(Image.open(png)).copy()
    m[:3, :] = 255
    write_mask(png, m)
    v = Davis2017(root).load(name)
    assert (v.masks[0, :3] == 255).all()
    assert 255 not in v.object_ids


def test_full_resolution(root):
    for top in ("JPEGImages", "Annotations"):
        (root / top / "480p").rename(root / top / "Full-Resolution")
    ds = Davis2017(root, resolution="Full-Resolution")
    assert ds.load(ds.videos[0]).frames.shape == (8, 64, 112, 3)
    with pytest.raises(DavisError, match="frame folder not found"):
        Davis2017(root).load(ds.videos[0])
    with pytest.raises(DavisError, match="unknown resolution"):
        Davis2017(root, resolution="1080p")


def test_missing_root_and_image_set(root, tmp_path):
    with pytest.raises(DavisError, match="nowhere"):
        Davis2017(tmp_path / "nowhere")
    with pytest.raises(DavisError, match=r"ImageSets/2017/test-dev\.txt"):
        Davis2017(root, split="test-dev")
    (root / "ImageSets/2017/val.txt").write_text("\n\n")
    with pytest.raises(DavisError, match="lists no video"):
        Davis2017(root)


@pytest.mark.parametrize("bad", ["..", "../secret", "/etc", "a/b", "C:\\x", "..\\x"])
def test_names_escaping_the_root(root, bad):
    (root / "ImageSets/2017/val.txt").write_text(f"{_first(root)}\n{bad}\n")
    with pytest.raises(DavisError, match="escape the dataset root"):
        Davis2017(root)
    (root / "ImageSets/2017/val.txt").write_text(f"{_first(root)}\n")
    with pytest.raises(DavisError, match="escape the dataset root"):
        Davis2017(root).load(bad)
    with pytest.raises(DavisError, match="escape the dataset root"):
        Davis2017(root, split="../val")


def test_missing_frame_and_annotation_folders(root):
    name = _first(root)
    shutil.rmtree(root / "JPEGImages/480p" / name)
    with pytest.raises(DavisError, match=f"video '{name}'.*frame folder not found"):
        Davis2017(root).load(name)
    (root / "JPEGImages/480p" / name).mkdir()
    with pytest.raises(DavisError, match=f"no JPEG frame in .*{name}"):
        Davis2017(root).load(name)
    shutil.rmtree(root / "Annotations/480p" / name)
    with pytest.raises(DavisError, match="annotation folder not found"):
        Davis2017(root).load(name)


def test_frame_mask_count_and_name_mismatch(root):
    name = _first(root)
    (root / "Annotations/480p" / name / "00005.png").unlink()
    with pytest.raises(DavisError, match=f"video '{name}': 8 frames in .* but 7 annotations"):
        Davis2017(root).load(name)
    (root / "Annotations/480p" / name / "00004.png").rename(root / "Annotations/480p" / name / "00099.png")
    (root / "JPEGImages/480p" / name / "00005.jpg").unlink()
    with pytest.raises(DavisError, match=r"00004\.jpg has no annotation"):
        Davis2017(root).load(name)


def test_size_mismatches(root):
    name = _first(root)
    jpg = root / "JPEGImages/480p" / name / "00002.jpg"
    Image.new("RGB", (100, 64)).save(jpg)
    with pytest.raises(DavisError, match=r"00002\.jpg is 100x64 but .* 112x64"):
        Davis2017(root).load(name)
    Image.new("RGB", (112, 64)).save(jpg)
    write_mask(root / "Annotations/480p" / name / "00006.png", np.ones((60, 112), np.uint8))
    with pytest.raises(DavisError, match=r"00006\.png is 112x60"):
        Davis2017(root).load(name)


def test_unreadable_files(root):
    name = _first(root)
    (root / "JPEGImages/480p" / name / "00001.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(DavisError, match=r"00001\.jpg: cannot read frame"):
        Davis2017(root).load(name)
    shutil.copy(root / "JPEGImages/480p" / name / "00000.jpg", root / "JPEGImages/480p" / name / "00001.jpg")
    data = (root / "JPEGImages/480p" / name / "00003.jpg").read_bytes()
    (root / "JPEGImages/480p" / name / "00003.jpg").write_bytes(data[: len(data) // 3])
    with pytest.raises(DavisError, match=r"00003\.jpg"):
        Davis2017(root).load(name)
    shutil.copy(root / "JPEGImages/480p" / name / "00000.jpg", root / "JPEGImages/480p" / name / "00003.jpg")
    (root / "Annotations/480p" / name / "00002.png").write_bytes(b"garbage")
    with pytest.raises(DavisError, match=r"00002\.png: cannot read mask"):
        Davis2017(root).load(name)


def test_rgb_mask_is_refused(root):
    name = _first(root)
    Image.new("RGB", (112, 64), (128, 0, 0)).save(root / "Annotations/480p" / name / "00004.png")
    with pytest.raises(DavisError, match=r"00004\.png: mask must be a palette"):
        Davis2017(root).load(name)


def test_first_mask_without_object(root):
    name = _first(root)
    m = np.zeros((64, 112), np.uint8)
    m[:5] = 255  # void only is still "no object"
    write_mask(root / "Annotations/480p" / name / "00000.png", m)
    with pytest.raises(DavisError, match=r"video '.*': first-frame annotation .*00000\.png contains no object"):
        Davis2017(root).load(name)
