"""XMem against the official code's goldens (golden-init-v1 weights, seed 0, s = 1.1).

Why float32 goldens cannot be compared at atol 1e-4 (measured on an AVX-512 Xeon, torch 2.13.0 CPU):
XMem reads memory through a top-30 of similarities, and on these random weights the gap between the
30th and 31st similarity (float64) gets as small as 1.1e-6 (default golden) and 1.3e-7 (long golden),
while float32 rounding of the similarities is up to 2.1e-5.  So a float32 run, ours or the official,
may swap one memory element of one query position, and whether it does depends on the CPU's kernels
and the thread count:

* default golden, 1 thread: one swap, frame 12, query cell (row 10, col 9) of the 15x27 grid, gap
  1.8e-6; the probabilities then differ from the golden by up to 3.5e-4 in a patch around it (frame 12,
  2506 px above 1e-4, carried on to frame 13 by the sensory memory): 0.098 % of the sampled values
  above 1e-4, label agreement 99.992 %.  With 2 threads: no swap, max 5.4e-6.
* long golden, 1 thread: one swap at frame 33 (gap 1.3e-7), max 7.3e-5.
* the issue's machine (another x86-64 CPU, 1 and 2 threads): max 2.05e-3 at frame 13 with 0.23 % of the
  values above 1e-4 (default), 5.1e-4 (long); label agreement 99.985 % / 99.983 %.
* our network in float64 on the golden inputs, on 1 and on 2 threads: max |p - golden| 4.73e-6
  (default) and 7.54e-6 (long), label agreement 99.99855 % and 99.99826 %: the same as the official
  float32-vs-float64 conditioning in ``meta.json`` (4.73e-6 / 9.79e-6 max; argmax agreement
  99.99855 % / 99.99826 %, i.e. the same 24 and 18 disagreeing pixels).  In float64 no top-k set is
  near a tie (float64 rounding ~1e-15 against gaps >= 1.3e-7).

So the difference is float32 rounding flipping a top-k choice, not an implementation difference.
Float32 goldens are compared as the golden README and ``test_stcn.py`` do (``_check_probs``): at least
99 % of the stored values within 1e-4 (worst measured 99.77 %), max <= 5e-3 (worst measured 2.05e-3),
label agreement >= 99.9 % (worst measured 99.985 %).  The implementation is proven by the float64 runs:
max |p64 - golden| at most 1.5x the official float32 rounding of that golden (``meta.json``
conditioning: default 7.1e-6 allowed for 4.73e-6 measured, long 1.47e-5 for 7.54e-6), with label
agreement no lower than the official float32-vs-float64 agreement minus 2 pixels (measured: equal).
Memory sizes and consolidation/removal events are compared exactly; frame-0/1 intermediates within
1e-4 of each tensor's maximum magnitude (README; the frame-1 read has no near tie: gap >= 3.4e-5).
"""
from __future__ import annotations

import json
from contextlib import contextmanager

import numpy as np
import pytest
import torch

from models import golden_init, load_model
from models.xmem.inference import iterate_images, iterate_video, normalise, object_labels

PROB_ATOL = 1e-4      # golden README: float32 values within 1e-4 ...
WITHIN_FRACTION = 0.99  # ... on at least 99 % of them (measured worst 99.77 %)
PROB_MAX = 5e-3       # no value off by more (measured worst 2.05e-3)
AGREEMENT = 0.999     # label maps (measured worst 99.985 %)
REL_TOL = 1e-4
F64_MARGIN = 1.5      # float64 runs: within 1.5x the official float32 rounding (meta.json conditioning)

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


def _close_f32(ours: np.ndarray, ref: np.ndarray, what: str) -> None:
    """The float32 rule of the golden README / test_stcn.py (see the module docstring for why)."""
    diff = np.abs(ours.astype(np.float64) - ref)
    within = (diff <= PROB_ATOL).mean()
    assert within >= WITHIN_FRACTION, f"{what}: only {within:.4%} of values within {PROB_ATOL}"
    assert diff.max() <= PROB_MAX, f"{what}: max |p - p_ref| = {diff.max():.3g}"


def _check_probs(data, out):
    probs = out["probs"]
    assert probs.shape[0] == len(data["frames"])
    _close_f32(probs[..., 1::4, 1::4], data["probs_sub"], "probs_sub")
    for i, frame in enumerate(data["probs_full_frames"]):
        _close_f32(probs[frame], data["probs_full"][i], f"probs_full[{frame}]")
    agreement = (probs.argmax(1) == data["label_maps"]).mean()
    assert agreement >= AGREEMENT, f"label agreement {agreement:.5%}"


@contextmanager
def _default_dtype(dtype: torch.dtype):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # the memory's fresh tensors follow the default dtype
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


@pytest.fixture(scope="module")
def xmem64():
    return golden_init(load_model("xmem", device="cpu"), seed=0, s=1.1).double().eval()


def _run64(net64, data, overrides, frames: int) -> np.ndarray:
    """Float64 probabilities (T, K+1, H, W) of the first ``frames`` frames (inference is causal, so they
    equal a full run's)."""
    cfg = {**net64.config, **overrides}
    video, mask = data["frames"][:frames], data["first_mask"]
    onehot = torch.stack([torch.from_numpy(mask == label) for label in object_labels(mask)]).double()
    out = []
    with _default_dtype(torch.float64), torch.inference_mode():
        for _, prob, _ in iterate_images(net64, frames, lambda t: normalise(video[t]).double(), onehot, cfg):
            assert prob.dtype == torch.float64
            out.append(prob.numpy())
    return np.stack(out)


def _check_float64(data, meta, probs64):
    """Our float64 run vs the official float32 golden: as close as the official float32 is to float64."""
    frames = len(probs64)
    conditioning = meta["conditioning"]
    bound = F64_MARGIN * max(conditioning["per_frame_max_abs_diff"][:frames])
    diff = np.abs(probs64[..., 1::4, 1::4] - data["probs_sub"][:frames])
    assert diff.max() <= bound, f"float64 max |p - golden| = {diff.max():.3g} > {bound:.3g}"
    for i, frame in enumerate(data["probs_full_frames"]):
        if frame < frames:
            full = np.abs(probs64[frame] - data["probs_full"][i]).max()
            assert full <= bound, f"frame {frame}: {full:.3g}"
    # the official float32-vs-float64 argmax disagreements over the whole video bound those of any prefix
    wrong = (probs64.argmax(1) != data["label_maps"][:frames]).sum()
    official = round((1 - conditioning["argmax_agreement"]) * data["label_maps"].size)
    assert wrong <= official + 2, f"{wrong} label disagreements (official float32 vs float64: {official})"


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


def test_float64_long_golden_first_frames(golden, xmem64):
    """Frames 0-7 of the long golden (consolidations at 3, 5, 7) in float64: tight."""
    data = np.load(golden / "xmem" / "inference_long.npz")
    meta = json.loads((golden / "xmem" / "meta.json").read_text())["inference_long.npz"]
    _check_float64(data, meta, _run64(xmem64, data, LONG_CONFIG, 8))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["inference.npz", "inference_long.npz"])
def test_float64_full_videos(golden, xmem64, name):
    data = np.load(golden / "xmem" / name)
    meta = json.loads((golden / "xmem" / "meta.json").read_text())[name]
    overrides = LONG_CONFIG if name == "inference_long.npz" else {}
    _check_float64(data, meta, _run64(xmem64, data, overrides, len(data["frames"])))


def test_segment_interface(golden, golden_xmem):
    data = np.load(golden / "xmem" / "inference_long.npz")
    frames, mask = data["frames"][:4], data["first_mask"]
    assert set(np.unique(mask)) == {0, 1, 2}
    # frames 0..3 only depend on memory written up to frame 2, so they equal the golden's
    probs = golden_xmem.segment(frames, mask, **LONG_CONFIG)
    assert probs.dtype == np.float32 and probs.shape == (3, 4, 120, 216)
    _close_f32(probs.transpose(1, 0, 2, 3)[..., 1::4, 1::4], data["probs_sub"][:4], "segment()")
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
