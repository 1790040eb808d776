"""Models given masks on later frames (models.inputs contract): object 2 appears at frame 4."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from davis_c.sample import render_video
from models import golden_init

T, H, W, APPEAR = 10, 48, 80, 4


@pytest.fixture(scope="module")
def video():
    frames, labels = render_video(np.random.default_rng([2, 0]), T, H, W, n_objects=2, hidden_before={2: APPEAR})
    assert not (labels[:APPEAR] == 2).any() and (labels[APPEAR] == 2).sum() > 20
    given = {0: np.where(labels[0] == 1, 1, 0).astype(np.uint8),
             APPEAR: np.where(labels[APPEAR] == 2, 2, 0).astype(np.uint8)}
    return frames, labels, given


@pytest.fixture(scope="module")
def stcn():
    from models.stcn import load

    return golden_init(load(device="cpu"), seed=0, s=1.0)


@pytest.fixture(scope="module")
def xmem():
    from models.xmem import load

    return golden_init(load(device="cpu"), seed=0, s=1.0)


def _check_contract(probs: np.ndarray, given: dict) -> None:
    assert probs.dtype == np.float32 and probs.shape == (3, T, H, W)
    assert np.all(probs[2, :APPEAR] == 0)  # object 2 is 0 before its first frame
    m2 = given[APPEAR] == 2
    assert probs[2, APPEAR][m2].min() > 0.99  # the given mask is taken as is on its frame
    assert probs[1, APPEAR][m2].max() < 0.01  # ... and other objects are cleared under it
    np.testing.assert_allclose(probs.sum(0), 1.0, atol=1e-5)


@pytest.mark.parametrize("model", ["stcn", "xmem"])
def test_dict_with_only_frame_0_is_the_first_mask_path(model, video, request):
    net = request.getfixturevalue(model)
    frames, labels, _ = video
    first = labels[0]
    a = net.segment(frames, first)
    b = net.segment(frames, {0: first})
    assert np.array_equal(a, b)


@pytest.mark.parametrize("model", ["stcn", "xmem"])
def test_object_two_given_at_frame_4(model, video, request):
    net = request.getfixturevalue(model)
    frames, labels, given = video
    probs = net.segment(frames, given)
    _check_contract(probs, given)
    # Until object 2 arrives, object 1 is segmented exactly as if it were alone.
    alone = net.segment(frames, given[0])
    np.testing.assert_allclose(probs[[0, 1], :APPEAR], alone[:, :APPEAR], atol=2e-5)
    # The new object changes what follows (it joins memory and the aggregation).
    assert not np.allclose(probs[1, APPEAR + 1:], alone[1, APPEAR + 1:], atol=1e-3)


@pytest.mark.parametrize("model", ["stcn", "xmem"])
def test_all_objects_given_late_equals_a_video_starting_there(model, video, request):
    """Masks first given on frame 4: frames 0-3 are background and frames 4.. are the segmentation of the
    video cut at frame 4 (memory schedule restarts at the given frame, as in the official scripts)."""
    net = request.getfixturevalue(model)
    frames, labels, _ = video
    m = labels[APPEAR]
    probs = net.segment(frames, {APPEAR: m})
    assert np.all(probs[0, :APPEAR] == 1) and np.all(probs[1:, :APPEAR] == 0)
    cut = net.segment(frames[APPEAR:], m)
    np.testing.assert_allclose(probs[:, APPEAR:], cut, atol=2e-5)


def test_xmem_groups_with_long_term_memory(xmem, video):
    """Small memory settings so that consolidation into long-term memory happens with two object groups."""
    frames, labels, given = video
    opts = dict(mem_every=1, min_mid_term_frames=2, max_mid_term_frames=3, num_prototypes=8)
    probs = xmem.segment(frames, given, **opts)
    _check_contract(probs, given)
    alone = xmem.segment(frames, given[0], **opts)
    np.testing.assert_allclose(probs[[0, 1], :APPEAR], alone[:, :APPEAR], atol=2e-5)
    late = xmem.segment(frames, {APPEAR: labels[APPEAR]}, **opts)
    np.testing.assert_allclose(late[:, APPEAR:], xmem.segment(frames[APPEAR:], labels[APPEAR], **opts), atol=2e-5)


def test_xmem_grouped_memory_consolidates_both_groups(xmem, video):
    from models.xmem.later import GroupedCore
    from models.xmem.memory import MemoryConfig
    from models.xmem.inference import normalise, pad16

    frames, labels, given = video
    core = GroupedCore(xmem, mem_every=1, memory=MemoryConfig(min_mid_term_frames=2, max_mid_term_frames=3,
                                                              num_prototypes=8))
    with torch.inference_mode():
        for t in range(T):
            image, _ = pad16(normalise(frames[t]))
            mask = valid = None
            if t in given:
                m = torch.from_numpy(given[t])
                known = [1] if t == 0 else [1, 2]
                mask = pad16(torch.stack([(m == k) for k in known]).float())[0]
                valid = [known.index(int(k)) for k in np.unique(given[t]) if k]
            core.step(image, mask, end=t == T - 1, valid=valid)
    mem = core.memory
    assert mem.work.groups == [[0], [1]] and mem.consolidations >= 3
    assert mem.long.num_groups == 2  # the later group reached long-term memory too
    hw = mem.hw
    assert mem.work.v_size(0) == mem.work.size and mem.work.v_size(1) <= mem.work.size
    assert mem.long.v_size(1) <= mem.long.v_size(0) == mem.long.size and hw == 3 * 5


@pytest.fixture(scope="module")
def labelprop():
    from models.labelprop import load

    return load(encoder="pixels", device="cpu")


def test_labelprop_object_two_given_at_frame_4(labelprop, video):
    frames, labels, given = video
    probs = labelprop.segment(frames, given)
    assert probs.dtype == np.float32 and probs.shape == (3, T, H, W)
    assert np.all(probs[2, :APPEAR] == 0)
    from models.labelprop.propagation import labels_to_grid, upsample_soft

    # on its frame, object 2 is its given mask moved to the stride-8 grid and back (as frame 0 is)
    grid = labels_to_grid(given[APPEAR], np.array([0, 1, 2]), (H // 8, W // 8))
    np.testing.assert_allclose(probs[2, APPEAR], upsample_soft(grid, (H, W))[..., 2], atol=1e-6)
    assert probs[2, APPEAR].max() > 0.6 and probs[2, APPEAR][given[APPEAR] == 0].mean() < 0.05
    np.testing.assert_allclose(probs.sum(0), 1.0, atol=1e-5)
    alone = labelprop.segment(frames, given[0])
    np.testing.assert_allclose(probs[[0, 1], :APPEAR], alone[:, :APPEAR], atol=1e-6)
    assert probs[2, APPEAR + 1:].max() > 0.5  # object 2 is propagated after its frame
    late = labelprop.segment(frames, {APPEAR: labels[APPEAR]})
    assert np.all(late[0, :APPEAR] == 1)
    np.testing.assert_allclose(late[:, APPEAR:], labelprop.segment(frames[APPEAR:], labels[APPEAR]), atol=1e-6)


def test_ttt_anchor_rule(labelprop, video):
    from models.ttt import ttt_anchor

    frames, labels, given = video

    class NoSegment:
        def segment(self, *a, **k):
            raise AssertionError("all objects are given on one frame: no prediction is needed")

    t, m = ttt_anchor(NoSegment(), frames, {0: labels[0]})
    assert t == 0 and np.array_equal(m, labels[0])
    t, m = ttt_anchor(labelprop, frames, given)
    assert t == APPEAR and set(np.unique(m).tolist()) == {0, 1, 2}
    assert (m[given[APPEAR] == 2] == 2).all()  # the object given on t* keeps its mask
    # elsewhere: the un-adapted model's prediction on t* from the masks given up to t* (nothing later)
    pred = labelprop.segment(frames[:APPEAR + 1], given).argmax(0)[APPEAR]
    outside = given[APPEAR] == 0
    assert np.array_equal(m[outside], pred[outside].astype(np.uint8)) and (m == 1).sum() > 50
