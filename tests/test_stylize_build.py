"""End to end: ``davis_c.build`` with ``--style-weights/--styles`` builds style1 x 3 strengths on the
synthetic sample, with random weights written by the test and flagged as random in the file."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

import davis_c
from davis_c import corruptions
from davis_c.build import build
from davis_c.sample import make_sample
from davis_c.stylize import StyleTransfer, describe_style_setup, load_style_corruptions, save_random_style_weights


@pytest.fixture(scope="module")
def built(tmp_path_factory, shared):
    d = tmp_path_factory.mktemp("style_build")
    root = make_sample(d / "DAVIS", videos=2, frames=3, height=48, width=90, seed=0)
    weights = save_random_style_weights(d / "random_style_net.pt", seed=0)
    styles = shared / "davis_c_styles"
    passes = []
    real = StyleTransfer.stylize_pair
    with pytest.MonkeyPatch.context() as mp:   # count the network passes of the build
        mp.setattr(corruptions, "_STYLES", {})   # the in-process build installs styles: keep them local
        mp.setattr(StyleTransfer, "stylize_pair", lambda self, frames, style: passes.append(len(frames))
                   or real(self, frames, style))
        build(root, d / "davis_c.h5", corruptions=["style1"], style_weights=weights, styles_dir=styles,
              device="cpu", progress=False, codec="png", log=lambda *_: None)
    return d / "davis_c.h5", weights, styles, passes


def test_build_style1_all_strengths(built):
    path, weights, styles, _ = built
    with davis_c.open(path) as store:
        assert store.corruptions == ["style1"] and store.strengths == ["low", "med", "high"]
        video = store.videos[0]
        clean = store.clean(video).frames
        low, med, high = (store[s, "style1", video].frames for s in ("low", "med", "high"))
    assert low.shape == high.shape == clean.shape
    assert np.array_equal(low, med)                 # as in the official release
    assert not np.array_equal(low, high)
    direct = load_style_corruptions(weights, styles, device="cpu")["style1"].all_strengths(clean)
    assert np.array_equal(low, direct[3]) and np.array_equal(high, direct[5])   # png codec: lossless


def test_one_network_pass_per_video_for_three_strengths(built):
    _, _, _, passes = built
    assert passes == [3, 3]        # 2 videos x 3 frames, each stylised once for low, med and high


def test_random_weights_are_flagged_in_the_file(built):
    path, weights, styles, _ = built
    attrs = describe_style_setup(weights, styles)
    assert attrs["style_weights_random_init"] is True and attrs["style_images_official"] is True
    assert load_style_corruptions(weights, styles, device="cpu").attrs == attrs
    shards = path.with_name(f"{path.stem}_shards")
    for strength in ("low", "med", "high"):
        with h5py.File(shards / f"{strength}__style1.h5", "r") as f:   # plain h5py, no toolkit reader
            assert bool(f.attrs["style_weights_random_init"]) is True
            assert f.attrs["style_weights_sha256"] == attrs["style_weights_sha256"]
    with h5py.File(path, "r") as f:                                    # the index records it too
        assert bool(f.attrs["style_weights_random_init"]) is True
        assert bool(f["high/style1"].attrs["style_weights_random_init"]) is True
    with h5py.File(shards / "clean.h5", "r") as f:                    # weight-free data is not flagged
        assert "style_weights_random_init" not in f.attrs


@pytest.mark.slow
def test_style_build_byte_identical_across_workers(built, tmp_path):
    """--workers 2 (spawned workers, torch threads = cores // 2) stores the same bytes as --workers 1."""
    import hashlib

    path, weights, styles, _ = built
    root = path.parent / "DAVIS"
    hashes = []
    for n in (1, 2):
        out = tmp_path / f"w{n}" / "davis_c.h5"
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(corruptions, "_STYLES", {})
            build(root, out, corruptions=["style1", "style2"], style_weights=weights, styles_dir=styles,
                  workers=n, device="cpu", progress=False, log=lambda *_: None)
        hashes.append({p.relative_to(out.parent).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                       for p in sorted(out.parent.rglob("*.h5"))})
    assert hashes[0] == hashes[1] and len(hashes[0]) == 1 + 1 + 6
