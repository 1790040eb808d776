"""XMem against the official code's goldens (golden-init-v1 weights, seed 0, s = 1.1).

Tolerances are those of ``shared/golden/xmem/README.md``: probabilities atol 1e-4, label-map
agreement >= 99.9 %, intermediates within 1e-4 of each tensor's maximum magnitude; memory sizes and
consolidation/removal events exactly.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from models import golden_init, load_model
from models.xmem.inference import iterate_video

PROB_ATOL = 1e-4
AGREEMENT = 0.999
REL_TOL = 1e-4

LONG_CONFIG = dict(mem_every=1, min_mid_term_frames=2, max_mid_term_frames=4, num_prototypes=16,
                   max_long_term_elements=200)


@pytest.fixture(scope="module")
def golden_xmem():
    return golden_init(load_model("xmem", device="cpu"), seed=0, s=1.1)


def test_state_dict_names_and_golden_init_checksums(golden, golden_xmem):
    ref = json.loads((golden / "xmem" / "state_dict_keys.json").read_text())["keys"]
    state = golden_xmem.state_dict()
    assert list(state) == [e["name"] for e in ref]  # names AND registration order
    for entry in ref:
        t = state[entry["name"]]
        assert list(t.shape) == entry["shape"], entry["name"]
        assert str(t.dtype).removeprefix("torch.") == entry["dtype"], entry["name"]
        check = entry["golden_init_v1_seed0"]
        if "value" in check:
            assert t.item() == check["value"]
            continue
        t64 = t.double()
        assert t64.sum().item() == pytest.approx(check["sum"], rel=1e-9, abs=1e-9), entry["name"]
        assert t64.abs().sum().item() == pytest.approx(check["abs_sum"], rel=1e-9), entry["name"]
        assert t.flatten()[:3].tolist() == check["first"], entry["name"]


def _run(model, data, overrides):
    """Run the video, collecting probabilities, memory sizes and frame-0/1 intermediates."""
    cfg = {**model.config, **overrides}
    probs, work, long, lt_reads, debug = [], [], [], [], {}
    consolidations, removals = [], []
    with torch.inference_mode():
        for t, prob, core in iterate_video(model, data["frames"], data["first_mask"], cfg):
            mem = core.memory
            probs.append(prob.numpy())
            work.append(mem.work.size)
            long.append(mem.long.size)
            if len(consolidations) < mem.consolidations:
                consolidations.append(t)
            if len(removals) < len(mem.removals):
                removals.append(t)
            lt_reads.append(mem.long_term_reads)
            if t <= 1:
                debug[t] = dict(core.last)
    return dict(probs=np.stack(probs), work=work, long=long, consolidation_frames=consolidations,
                removal_frames=removals, removal_sizes=list(core.memory.removals),
                long_term_reads=lt_reads[-1], debug=debug)


def _squeeze(t: torch.Tensor, name: str) -> np.ndarray:
    if name != "aggregated_logits_padded" and t.dim() > 3:
        t = t[0]
    return t.double().numpy()


_DBG_NAMES = {"memory_readout": "readout", "aggregated_logits_padded": "logits"}


def _check_intermediates(data, debug):
    checked = 0
    for name in data.files:
        if not name.startswith("dbg_"):
            continue
        frame, what = int(name[5]), name[7:]
        ref = data[name]
        if what == "f16_channel_sums":
            ours = debug[frame]["f16"][0].double().sum((1, 2)).numpy()
        else:
            base = what.removesuffix("_first16ch").removesuffix("_channel_sums")
            ours = _squeeze(debug[frame][_DBG_NAMES.get(base, base)], base)
            if what.endswith("_first16ch"):
                ours = ours[:, :16]
            elif what.endswith("_channel_sums"):
                ours = ours.sum((-1, -2))
        assert ours.shape == ref.shape, name
        scale = np.abs(ref).max()
        assert np.abs(ours - ref).max() <= REL_TOL * scale, f"{name}: {np.abs(ours - ref).max()} vs {scale}"
        checked += 1
    return checked


def _check_probs(data, out):
    probs = out["probs"]
    assert probs.shape[0] == len(data["frames"])
    np.testing.assert_allclose(probs[..., 1::4, 1::4], data["probs_sub"], rtol=0, atol=PROB_ATOL)
    for i, frame in enumerate(data["probs_full_frames"]):
        np.testing.assert_allclose(probs[frame], data["probs_full"][i], rtol=0, atol=PROB_ATOL)
    agreement = (probs.argmax(1) == data["label_maps"]).mean()
    assert agreement >= AGREEMENT


def test_default_golden(golden, golden_xmem):
    data = np.load(golden / "xmem" / "inference.npz")
    meta = json.loads((golden / "xmem" / "meta.json").read_text())["inference.npz"]
    out = _run(golden_xmem, data, {})
    _check_probs(data, out)
    assert _check_intermediates(data, out["debug"]) == 12
    assert out["work"] == meta["memory_sizes_after_each_frame"]["work"]
    assert out["long"] == meta["memory_sizes_after_each_frame"]["long"]
    assert out["consolidation_frames"] == [] and out["long_term_reads"] == 0
    schedule = meta["schedule"]
    # frame 1 is not a memory frame: the decoder refreshed the sensory memory
    assert "hidden_from_decoder" in out["debug"][1] and 1 in schedule["decoder_hidden_update_frames"]


def test_long_golden_consolidation_and_removal(golden, golden_xmem):
    data = np.load(golden / "xmem" / "inference_long.npz")
    out = _run(golden_xmem, data, LONG_CONFIG)
    _check_probs(data, out)
    assert _check_intermediates(data, out["debug"]) == 11
    assert out["work"] == data["mem_work_size"].tolist()
    assert out["long"] == data["mem_long_size"].tolist()
    assert out["consolidation_frames"] == data["consolidation_frames"].tolist()
    assert out["removal_frames"] == data["removal_frames"].tolist()
    assert [list(x) for x in out["removal_sizes"]] == data["removal_long_size_before_after"].tolist()
    assert out["long_term_reads"] == 36


def test_segment_interface(golden, golden_xmem):
    data = np.load(golden / "xmem" / "inference_long.npz")
    frames, mask = data["frames"][:4], data["first_mask"]
    assert set(np.unique(mask)) == {0, 1, 2}
    # frames 0..3 only depend on memory written up to frame 2, so they equal the golden's
    probs = golden_xmem.segment(frames, mask, **LONG_CONFIG)
    assert probs.dtype == np.float32 and probs.shape == (3, 4, 120, 216)
    np.testing.assert_allclose(probs.transpose(1, 0, 2, 3)[..., 1::4, 1::4], data["probs_sub"][:4],
                               rtol=0, atol=PROB_ATOL)
    np.testing.assert_allclose(probs.sum(0), 1.0, atol=1e-5)
    # labels need not be 1..K: objects come in sorted label order (object 1 -> label 9, 2 -> 4)
    relabelled = np.where(mask == 1, 9, np.where(mask == 2, 4, 0)).astype(np.uint8)
    swapped = golden_xmem.segment(frames[:2], relabelled, **LONG_CONFIG)
    np.testing.assert_allclose(swapped[[0, 2, 1]], probs[:, :2], atol=1e-5)
    # 255 (void) is not an object; an empty first mask gives all background
    relabelled[:8, :8] = 255
    void = golden_xmem.segment(frames[:1], relabelled)
    assert void.shape == (3, 1, 120, 216) and (void[:, 0].argmax(0)[:8, :8] == 0).all()
    empty = golden_xmem.segment(frames[:2], np.zeros_like(mask))
    assert empty.shape == (1, 2, 120, 216) and (empty == 1).all()


def test_count_usage_rule_of_eval_py():
    from models.xmem import DEFAULT_CONFIG
    from models.xmem.inference import count_usage_rule

    assert not count_usage_rule(390, DEFAULT_CONFIG)          # 390 / 5 * 128 = 9984 < 10000
    assert count_usage_rule(391, DEFAULT_CONFIG)
    assert count_usage_rule(40, {**DEFAULT_CONFIG, **LONG_CONFIG})
    assert not count_usage_rule(10**6, {**DEFAULT_CONFIG, "enable_long_term": False})


def test_long_term_removal_drops_ties_and_config_checks():
    from models.xmem.memory import MemoryConfig, MemoryStore

    store = MemoryStore(count_usage=True)
    store.add(torch.arange(8.0).view(1, 2, 4), torch.zeros(1, 3, 4), torch.ones(1, 1, 4), None)
    store.use_count = torch.tensor([[[0.5, 0.1, 0.1, 0.9]]])
    store.life_count = torch.ones(1, 1, 4)
    assert store.remove_obsolete(4) == 0 and store.size == 4
    # asked to drop one element: both tied at the threshold go (official behaviour)
    assert store.remove_obsolete(3) == 2
    assert store.key.tolist() == [[[0.0, 3.0], [4.0, 7.0]]] and store.value.shape == (1, 3, 2)
    with pytest.raises(ValueError, match="min_mid_term_frames"):
        MemoryConfig(min_mid_term_frames=1)
