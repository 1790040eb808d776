"""DAVIS-C HDF5 store: round trip through the builder, plain-h5py readability, reader errors."""
from __future__ import annotations

import cv2
import h5py
import numpy as np
import pytest

import davis_c
from davis_c.build import build
from davis_c.corruptions import STRENGTHS, corrupt
from davis_c.datasets import Davis2017
from davis_c.store import FORMAT, StoreError, decode_frame, derive_seed, encode_frame

CORRS = ["gaussian_noise", "contrast", "saturate", "glass_blur", "cartoon", "motion_blur", "crf_compression"]


@pytest.fixture(scope="module")
def store_path(tiny_davis_sample, tmp_path_factory):
    out = tmp_path_factory.mktemp("store") / "davis_c.h5"
    build(tiny_davis_sample, out, corruptions=CORRS, seed=5, progress=False, log=lambda m: None)
    return out


def test_layout_and_attrs(store_path, tiny_davis_sample):
    ds = Davis2017(tiny_davis_sample)
    with davis_c.open(store_path) as store:
        assert store.videos == ds.videos
        assert store.strengths == ["low", "med", "high"]
        assert store.corruptions == CORRS
        assert store.variants[0] == "clean" and "high/glass_blur" in store.variants
        assert store.attrs["format"] == FORMAT and store.attrs["seed"] == 5
        assert store.attrs["toolkit_version"] == davis_c.__version__ and store.attrs["codec"] == "jpeg"
        a = store.shard_attrs("med", "saturate")
        assert a["parameters"] == {"multiplier": 5.0, "offset": 0.1} and a["severity"] == 4
        assert a["complete"] is True and a["corruption_kind"] == "image"
        assert "ffmpeg" in store.shard_attrs("low", "crf_compression")
        assert len(store.shard_attrs()["source_sha256"]) == len(ds.videos)


def test_clean_round_trip(store_path, tiny_davis_sample):
    ds = Davis2017(tiny_davis_sample)
    with davis_c.open(store_path) as store:
        for name in ds.videos:
            want = ds.load(name)
            got = store.clean(name)
            np.testing.assert_array_equal(got.frames, want.frames)
            np.testing.assert_array_equal(got.masks, want.masks)
            assert got.object_ids == want.object_ids and got.frame_names == want.frame_names
            jpgs, _ = ds.frame_paths(name)
            assert store.images(None, None, name) == [p.read_bytes() for p in jpgs]  # copied bytes


@pytest.mark.parametrize("corruption", [c for c in CORRS if c != "crf_compression"])
def test_corrupted_frames_equal_library_then_jpeg(store_path, tiny_davis_sample, corruption):
    ds = Davis2017(tiny_davis_sample)
    name = ds.videos[1]
    clean = ds.load(name)
    with davis_c.open(store_path) as store:
        for strength, sev in STRENGTHS.items():
            video = store[strength, corruption, name]
            want = corrupt(clean.frames, corruption, sev, seed=derive_seed(5, corruption, strength, name))
            jpeg = np.stack([decode_frame(encode_frame(f, "jpeg"), "x") for f in want])
            np.testing.assert_array_equal(video.frames, jpeg)
            np.testing.assert_array_equal(video.masks, clean.masks)
            assert video.frame_names == clean.frame_names


def test_crf_frames_and_variant_keys(store_path, tiny_davis_sample):
    ds = Davis2017(tiny_davis_sample)
    name = ds.videos[0]
    with davis_c.open(store_path) as store:
        v = store["high/crf_compression", name]
        assert v.frames.shape == ds.load(name).frames.shape
        np.testing.assert_array_equal(store["clean", name].frames, store.clean(name).frames)


def test_readable_with_plain_h5py(store_path, tiny_davis_sample):
    name = Davis2017(tiny_davis_sample).videos[0]
    with h5py.File(store_path, "r") as f:
        data = f[f"low/saturate/{name}/frames"][0]
        img = cv2.imdecode(data, cv2.IMREAD_COLOR)
        assert img is not None and img.shape[2] == 3
        assert f[f"clean/{name}/masks"].dtype == np.uint8
        assert f[f"high/glass_blur/{name}"].attrs["seed"] == derive_seed(5, "glass_blur", "high", name)


def test_png_codec_is_lossless(tiny_davis_sample, tmp_path):
    out = tmp_path / "png.h5"
    build(tiny_davis_sample, out, corruptions=["contrast", "glass_blur"], strengths=["high"], codec="png",
          progress=False, log=lambda m: None)
    ds = Davis2017(tiny_davis_sample)
    name = ds.videos[0]
    with davis_c.open(out) as store:
        got = store["high", "glass_blur", name].frames
        want = corrupt(ds.load(name).frames, "glass_blur", 5, seed=derive_seed(0, "glass_blur", "high", name))
        np.testing.assert_array_equal(got, want)


def test_reader_errors(store_path, tmp_path):
    with pytest.raises(StoreError, match="not found"):
        davis_c.open(tmp_path / "missing.h5")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(StoreError, match="junk.h5"):
        davis_c.open(tmp_path / "junk.h5")
    with davis_c.open(store_path) as store:
        with pytest.raises(KeyError, match="no variant"):
            store["low", "pixelate", store.videos[0]]
        with pytest.raises(KeyError, match="not in"):
            store["low", "saturate", "nope"]
