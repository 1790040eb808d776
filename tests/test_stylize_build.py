"""End to end: ``davis_c.build`` with ``--style-weights/--styles`` builds style1 x 3 strengths on the
synthetic sample, with random weights written by the test and flagged as random."""
from __future__ import annotations

import numpy as np
import pytest

import davis_c
from davis_c.build import build
from davis_c.sample import make_sample
from davis_c.stylize import describe_style_setup, load_style_corruptions, save_random_style_weights


@pytest.fixture(scope="module")
def built(tmp_path_factory, shared):
    d = tmp_path_factory.mktemp("style_build")
    root = make_sample(d / "DAVIS", videos=1, frames=3, height=48, width=90, seed=0)
    weights = save_random_style_weights(d / "random_style_net.pt", seed=0)
    styles = shared / "davis_c_styles"
    build(root, d / "davis_c.h5", corruptions=["style1"], style_weights=weights, styles_dir=styles,
          device="cpu", progress=False, codec="png", log=lambda *_: None)
    return d / "davis_c.h5", weights, styles


def test_build_style1_all_strengths(built):
    path, weights, styles = built
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


def test_random_weights_are_flagged(built):
    """What the builder must store with styled shards (davis_c.build does not record it yet: see the
    Styles report); the flag comes from the weights file itself."""
    _, weights, styles = built
    attrs = describe_style_setup(weights, styles)
    assert attrs["style_weights_random_init"] is True and attrs["style_images_official"] is True
    assert load_style_corruptions(weights, styles, device="cpu").attrs == attrs
