"""The opt-in memory mode of TTT (activation checkpointing, models/ttt/checkpointing.py): it really
recomputes the parts in the backward pass, leaves the network as it found it, is off by default, and the
harness accepts it as a TTT setting.  Memory, time and J&F difference: benchmarks/bench_ttt.py
--checkpointing (docs/performance.md)."""
from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch

from models import golden_init, ttt
from models.stcn import STCN
from models.ttt.checkpointing import checkpointed, checkpointed_modules


def _video(t: int = 6):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (t, 48, 64, 3), dtype=np.uint8)
    mask = np.zeros((48, 64), np.uint8)
    mask[8:24, 8:30] = 1
    mask[28:44, 36:60] = 2
    return frames, mask


@pytest.fixture(scope="module")
def net():
    return golden_init(STCN(), seed=0, s=1.0).eval()


def test_parts_are_recomputed_in_the_backward_pass_and_restored(net, monkeypatch):
    calls = {"n": 0}
    cls = type(net.key_encoder)
    original = cls.forward

    def counting(self, *a, **k):
        calls["n"] += 1
        return original(self, *a, **k)

    monkeypatch.setattr(cls, "forward", counting)
    frames, mask = _video(3)
    seen = {}
    for mode in (False, True):
        calls["n"] = 0
        net.zero_grad(set_to_none=True)
        with checkpointed(net) if mode else contextlib.nullcontext():
            ttt.loss(net, frames, mask, "mcc").backward()
        seen[mode] = calls["n"]
    assert seen == {False: 1, True: 2}  # one batched key pass; in memory mode computed again for backward
    assert checkpointed_modules(net) == ["key_encoder", "value_encoder", "key_proj", "key_comp", "decoder"]
    assert not any("forward" in m.__dict__ for m in net.modules())
    with pytest.raises(RuntimeError), checkpointed(net):
        raise RuntimeError("a failing step")
    assert not any("forward" in m.__dict__ for m in net.modules())  # restored on errors too
    with torch.no_grad(), checkpointed(net):  # under no_grad nothing is checkpointed (nothing to save)
        calls["n"] = 0
        net.encode_key(torch.zeros(1, 3, 48, 64))
        assert calls["n"] == 1


def test_memory_mode_is_opt_in_and_logged(net):
    frames, mask = _video()
    exact = ttt.adapt(net, frames, mask, "mcc", iterations=2, rounds=1, lr=1e-5, seed=0)
    memory = ttt.adapt(net, frames, mask, "mcc", iterations=2, rounds=1, lr=1e-5, seed=0, checkpointing=True)
    assert exact.ttt_log["checkpointing"] is False and memory.ttt_log["checkpointing"] is True
    # same samples; on this CPU the recomputed forward rounds as the first one did, so the losses and the
    # adapted weights come out equal here (not promised in general: see the module docstring)
    assert exact.ttt_log["samples"] == memory.ttt_log["samples"]
    assert exact.ttt_log["losses"] == memory.ttt_log["losses"]
    assert all(torch.equal(a, b) for a, b in zip(exact.parameters(), memory.parameters()))


def test_harness_accepts_it_as_a_ttt_setting():
    from harness.options import check_options

    from harness.methods import MethodError

    check_options({"model": "stcn", "ttt_params": {"checkpointing": True}}, STCN(), ttt={})
    with pytest.raises(MethodError, match="checkpointing_typo"):
        check_options({"model": "stcn", "ttt_params": {"checkpointing_typo": True}}, STCN(), ttt={})
    import models

    with pytest.raises(MethodError, match="checkpointing: not an option of LabelPropagation"):  # its own protocol
        check_options({"model": "labelprop", "ttt_params": {"checkpointing": True}}, models.load_model("labelprop"),
                      ttt={})
