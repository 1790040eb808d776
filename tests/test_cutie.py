"""Cutie against the official code's goldens (golden-init-v2 weights, seed 0, s = 1.2).

Tolerances are those of ``shared/golden/cutie/README.md``: probabilities atol 1e-4, label-map
agreement >= 99.99 %, intermediates within 1e-4 of each tensor's maximum magnitude; memory sizes and
memory events exactly.

Fast tests run the first frames of each golden in float32 (inference is causal, so a prefix equals the
start of the full run; only the prefix's own last frame skips memorisation).  The full videos run in
float64 and, with one thread as the goldens were made, in float32 (``slow``).  Why float64 too
(measured here): with two threads our float32 run of the default golden flips one attention-mask cell
of frame 8 (level 1; the official float64 margin of that decision is 1.26e-5), after which
probabilities differ from the golden by up to 1.5e-3; with one thread it does not flip (max error
5.0e-5).  Float64 has no such fragility and agrees with the float32 goldens to 3.7e-5 (default),
3.7e-5 (fifo), i.e. exactly the README's official float32-vs-float64 conditioning.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from models import golden_init, load_model
from models.cutie.inference import iterate_video

PROB_ATOL = 1e-4
AGREEMENT = 0.9999
REL_TOL = 1e-4

FIFO_CONFIG = dict(mem_every=3, stagger_updates=2, max_mem_frames=3)
LONG_CONFIG = dict(use_long_term=True, mem_every=1, long_term=dict(max_mem_frames=4, min_mem_frames=2,
                                                                  num_prototypes=16, max_num_tokens=80,
                                                                  buffer_tokens=16))
#: golden file -> (overrides, frames whose intermediates are stored, frames run by the fast test)
CASES = {"inference": ({}, (0, 1, 5), 3), "inference_fifo": (FIFO_CONFIG, (0, 1, 2), 4),
         "inference_long": (LONG_CONFIG, (0, 1, 4), 6)}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def cutie():
    return golden_init(load_model("cutie", device="cpu"), seed=0, s=1.2)


@pytest.fixture(scope="module")
def results(cutie, golden):
    """Each golden run once per (name, dtype, frames): outputs, memory sizes, stored intermediates."""
    cache = {}

    def run(name, dtype="float32", frames=None, threads=None):
        key = (name, dtype, frames, threads)
        if key not in cache:
            data = dict(np.load(golden / "cutie" / f"{name}.npz"))
            overrides, debug_frames, _ = CASES[name]
            model = cutie if dtype == "float32" else cutie.double()
            clip = dict(data, frames=data["frames"][:frames]) if frames else data
            old = torch.get_num_threads()
            try:
                if threads:
                    torch.set_num_threads(threads)
                cache[key] = (data, _run(model, clip, overrides, debug_frames))
            finally:
                torch.set_num_threads(old)
                cutie.float()
        return cache[key]
    return run


def _run(model, data, overrides, debug_frames):
    cfg = model.options(overrides)
    data = dict(data, first_mask=data["first_mask"])
    probs, work, perm, long, area, debug = [], [], [], [], [], {}
    with torch.inference_mode():
        for t, prob, order, core in iterate_video(model, data["frames"], data["first_mask"], cfg, debug=True):
            mem = core.memory
            assert order == [1, 2]
            probs.append(prob.numpy())
            bucket = mem.work[0]
            work.append(bucket.size)
            perm.append(bucket.perm)
            long.append(mem.long[0].size if 0 in mem.long else 0)
            area.append([float(mem.obj_memory[o][:, -1].double().sum()) for o in order])
            if t in debug_frames:
                debug[t] = dict(core.last)
    return dict(probs=np.stack(probs), work=work, perm=perm, long=long, area=np.array(area), debug=debug,
                events=list(core.memory.events), long_term_reads=core.memory.long_term_reads)


def test_state_dict_names_and_golden_init_checksums(golden, cutie):
    ref = json.loads((golden / "cutie" / "state_dict_keys.json").read_text())["keys_base"]
    state = cutie.state_dict()
    assert list(state) == [e["name"] for e in ref]  # names AND registration order
    for entry in ref:
        t = state[entry["name"]]
        assert list(t.shape) == entry["shape"], entry["name"]
        assert str(t.dtype).removeprefix("torch.") == entry["dtype"], entry["name"]
        check = entry["golden_init_v2_seed0_s1.2"]
        if "value" in check:
            assert t.item() == check["value"]
            continue
        t64 = t.double()
        assert t64.sum().item() == pytest.approx(check["sum"], rel=1e-9, abs=1e-9), entry["name"]
        assert t64.abs().sum().item() == pytest.approx(check["abs_sum"], rel=1e-9), entry["name"]
        assert t.flatten()[:3].tolist() == check["first"], entry["name"]


def test_small_variant_state_dict_names(golden):
    ref = json.loads((golden / "cutie" / "state_dict_keys.json").read_text())["keys_small"]
    state = load_model("cutie", device="cpu", variant="small").state_dict()
    assert [(k, list(v.shape)) for k, v in state.items()] == [(e["name"], e["shape"]) for e in ref]
    meta = json.loads((golden / "cutie" / "state_dict_keys.json").read_text())["meta"]["small"]
    assert sum(v.numel() for v in state.values() if v.is_floating_point()) == meta["total_float_elements"]


def _ours(last: dict, name: str) -> torch.Tensor:
    if name.startswith("aux_logits_level"):
        return last["aux_logits"][int(name[-1]), 0]
    t = last[name]
    return t[0]


def _compare_debug(ref: dict, frame: int, last: dict) -> list[str]:
    prefix = f"dbg_f{frame}_"
    checked = []
    for key in sorted(k for k in ref if k.startswith(prefix)):
        name = key[len(prefix):]
        expected = ref[key].astype(np.float64)
        base = name.removesuffix("_first16ch").removesuffix("_channel_sums")
        ours = _ours(last, base).double()
        channel_axis = 1 if ours.dim() == 4 else 0
        if name.endswith("_first16ch"):
            ours = ours.narrow(channel_axis, 0, 16)
        elif name.endswith("_channel_sums"):
            ours = ours.sum((-1, -2))
        ours = ours.numpy()
        assert ours.shape == expected.shape, (key, ours.shape, expected.shape)
        scale = max(np.abs(expected).max(), 1e-12)
        err = np.abs(ours - expected).max()
        assert err <= REL_TOL * scale, f"{key}: max abs error {err:.3g} vs {REL_TOL} x {scale:.3g}"
        checked.append(name)
    return checked


def _check_probabilities(data, res):
    probs = res["probs"]
    t = len(probs)
    assert probs.shape == (t, 3, *data["frames"].shape[1:3])
    np.testing.assert_allclose(probs[..., 1::4, 1::4], data["probs_sub"][:t], rtol=0, atol=PROB_ATOL)
    full = [i for i, f in enumerate(data["probs_full_frames"]) if f < t]
    np.testing.assert_allclose(probs[data["probs_full_frames"][full]], data["probs_full"][full], rtol=0,
                               atol=PROB_ATOL)
    agreement = (probs.argmax(1) == data["label_maps"][:t]).mean()
    assert agreement >= AGREEMENT, agreement


def _check_memory(data, res):
    t = len(res["probs"]) - 1  # the last frame run is treated as the video's end (nothing memorised)
    if t + 1 == len(data["frames"]):
        t += 1
    assert res["work"][:t] == data["mem_work_size"][:t].tolist()
    assert res["perm"][:t] == data["mem_work_permanent_size"][:t].tolist()
    assert res["long"][:t] == data["mem_long_size"][:t].tolist()
    np.testing.assert_allclose(res["area"][:t], data["obj_memory_area_sum"][:t], rtol=1e-5)


def _check_intermediates(data, res, name):
    checked = []
    frames = [f for f in CASES[name][1] if f in res["debug"]]
    for frame in frames:
        checked += _compare_debug(data, frame, res["debug"][frame])
    assert len(checked) == sum(k.startswith(tuple(f"dbg_f{f}_" for f in frames)) for k in data)
    return frames


@pytest.mark.parametrize("name, dtype", [("inference", "float32"), ("inference_fifo", "float32"),
                                         ("inference_long", "float32"), ("inference_long", "float64")])
def test_first_frames(results, name, dtype):
    """Probabilities, memory and every stored intermediate of the first frames (all debug frames but
    the default golden's frame 5).

    Long golden, frame 4 (first read of long-term memory), ``sensory_from_decoder_first16ch`` (values
    within +-1): our float64 run differs from the official float32 golden by 8.0e-5, i.e. the golden's
    own rounding uses most of the 1e-4 budget, and our float32 run (one thread) by 1.1e-4.  So that
    golden's intermediates are compared in float64; its float32 probabilities (max error 4.8e-5) and
    memory are still checked.
    """
    data, res = results(name, dtype=dtype, frames=CASES[name][2])
    _check_probabilities(data, res)
    _check_memory(data, res)
    if name == "inference_long" and dtype == "float32":
        return
    assert len(_check_intermediates(data, res, name)) == (2 if name == "inference" else 3)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_full_video_float64(results, name):
    data, res = results(name, dtype="float64")
    _check_probabilities(data, res)
    _check_memory(data, res)
    _check_intermediates(data, res, name)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_full_video_float32_one_thread(results, name):
    data, res = results(name, threads=1)
    _check_probabilities(data, res)
    _check_memory(data, res)
    if name != "inference_long":  # see test_first_frames: that golden's intermediates need float64
        _check_intermediates(data, res, name)


@pytest.mark.slow
def test_memory_events_of_the_goldens(results, golden):
    meta = json.loads((golden / "cutie" / "meta.json").read_text())
    for name in CASES:
        _, res = results(name, dtype="float64")
        m = meta[f"{name}.npz"]
        got = {kind: [e for e in res["events"] if e[0] == kind] for kind in ("fifo", "consolidation",
                                                                            "long_term_removal")}
        assert [(e[2], e[3]) for e in got["fifo"]] == [(r["size_before"], r["size_after"]) for r in m["fifo_removals"]]
        assert len(got["consolidation"]) == len(m["consolidations"])
        assert [(e[2], e[3]) for e in got["consolidation"]] == [(r["work_before"], r["work_after"])
                                                                for r in m["consolidations"]]
        assert [(e[2], e[3]) for e in got["long_term_removal"]] == [(r["size_before"], r["size_after"])
                                                                    for r in m["long_term_removals"]]
        assert res["long_term_reads"] == m["long_term_engaged_reads"]
