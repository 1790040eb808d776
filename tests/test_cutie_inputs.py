"""Cutie's segment contract: given masks on later frames (new buckets), output layout, schedule helpers,
input validation.  cutie-small with golden-init weights on tiny videos keeps this cheap."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models import golden_init, load_model
from models.cutie.inference import iterate_video, pad16, stagger_offsets, unpad

H, W = 64, 96   # 4 x 6 stride-16 grid


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def vos():
    return golden_init(load_model("cutie", device="cpu", variant="small"), seed=0, s=1.2)


@pytest.fixture(scope="module")
def video():
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 255, (6, H // 8, W // 8, 3)).repeat(8, 1).repeat(8, 2).astype(np.uint8)
    masks = np.zeros((6, H, W), np.uint8)
    masks[:, 8:30, 10:40] = 3
    masks[:, 36:60, 50:90] = 7
    return frames, masks


def test_stagger_offsets_and_padding_follow_the_official_rules():
    assert stagger_offsets(5, 5) == {1, 2, 3, 4, 5}
    assert stagger_offsets(3, 2) == {1, 3}
    assert stagger_offsets(4, 3) == {1, 2, 4}
    assert stagger_offsets(1, 5) == {1}
    x = torch.ones(3, 165, 854)
    padded, pad = pad16(x)
    assert padded.shape[-2:] == (176, 864) and pad == (5, 5, 5, 6)
    assert torch.equal(unpad(padded, pad), x)


def test_first_mask_forms_agree_and_labels_are_sorted(vos, video):
    frames, masks = video
    a = vos.segment(frames, masks[0])
    b = vos.segment(frames, {0: masks[0]})
    assert a.shape == (3, 6, H, W) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a.sum(0), 1, atol=1e-5)
    # frame 0 is the aggregated given mask: label 3 -> channel 1, label 7 -> channel 2
    assert (a[:, 0].argmax(0) == np.select([masks[0] == 3, masks[0] == 7], [1, 2], 0)).all()


def test_object_given_on_a_later_frame_gets_its_own_bucket(vos, video):
    frames, masks = video
    late = masks[3].copy()
    late[late == 3] = 0                       # frame 3 states only object 7
    first = masks[0].copy()
    first[first == 7] = 0
    given = {0: first, 3: late}
    probs = vos.segment(frames, given)
    assert probs.shape == (3, 6, H, W)
    assert (probs[2, :3] == 0).all() and (probs[0, :3] + probs[1, :3] == pytest.approx(1, abs=1e-5))
    assert (probs[2, 3][late == 7] > 0.999).all()           # the given object on its frame
    assert (probs[1, 3][late == 7] < 1e-3).all()            # given pixels win over the prediction
    np.testing.assert_allclose(probs.sum(0), 1, atol=1e-5)
    with torch.inference_mode():
        steps = list(iterate_video(vos, frames, given, vos.config))
    core = steps[-1][3]
    assert steps[-1][2] == [3, 7]
    assert [b.objects for b in core.memory.work.values()] == [[3], [7]]
    hw = 4 * 6
    # bucket 0: frame 0 permanent + memory frame 3; bucket 1: frame 3 permanent (5 is the last frame)
    assert [(b.size, b.perm) for b in core.memory.work.values()] == [(2 * hw, hw), (hw, hw)]
    # a video whose first mask comes later: earlier frames are background only
    delayed = vos.segment(frames, {2: masks[2]})
    assert (delayed[0, :2] == 1).all() and (delayed[1:, :2] == 0).all()


def test_bad_input_is_refused(vos, video):
    frames, masks = video
    with pytest.raises(ValueError, match="uint8"):
        vos.segment(frames.astype(np.float32), masks[0])
    with pytest.raises(ValueError, match="shape"):
        vos.segment(frames, masks[0][:10])
    with pytest.raises(ValueError, match="no object"):
        vos.segment(frames, np.zeros((H, W), np.uint8))
    with pytest.raises(ValueError, match="frame 9"):
        vos.segment(frames, {9: masks[0]})
