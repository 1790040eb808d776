"""The opt-in memory mode of test-time training: activation checkpointing of the network's parts.

A TTT step keeps every activation of the cycle (three 480p frames through the key encoder, the value
encoder and the decoder, forward and back) for its backward pass: about 6.8 GB for STCN tt-MCC on the CPU.
In this mode each direct child module of the network that holds parameters (STCN: ``key_encoder``,
``value_encoder``, ``key_proj``, ``key_comp``, ``decoder``) keeps only its inputs; its inside is computed
again during the backward pass (``torch.utils.checkpoint``, non-reentrant, RNG state preserved).  The
loss, the gradients and the updates are those of the exact mode in exact arithmetic, but the recomputed
forward may round differently, so the adapted weights -- and the masks -- are **not guaranteed
bit-identical** to the default mode; that is why it is off by default, part of the unit's identity when
on (``--set ttt_params.checkpointing=true``), and measured in ``benchmarks/bench_ttt.py --checkpointing``
(memory, time and the J&F difference; figures in docs/performance.md).
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

__all__ = ["checkpointed", "checkpointed_modules"]


def checkpointed_modules(model: nn.Module) -> list[str]:
    """Names of the parts checkpointed in memory mode: the model's ``ttt_checkpoint_modules`` if it names
    them, else every direct child that holds parameters."""
    names = getattr(model, "ttt_checkpoint_modules", None)
    if names is not None:
        return list(names)
    return [n for n, m in model.named_children() if next(m.parameters(), None) is not None]


@contextlib.contextmanager
def checkpointed(model: nn.Module) -> Iterator[list[str]]:
    """Within the block, the parts of :func:`checkpointed_modules` run under activation checkpointing
    whenever gradients are on (no effect under ``no_grad``); yields their names.  Run the loss *and* its
    ``backward()`` inside the block."""
    names = checkpointed_modules(model)
    wrapped: list[nn.Module] = []
    try:
        for name in names:
            module = model.get_submodule(name)
            forward = module.forward

            def run(*args, _forward=forward, **kwargs):
                if not torch.is_grad_enabled():
                    return _forward(*args, **kwargs)
                return checkpoint(_forward, *args, use_reentrant=False, **kwargs)

            module.forward = run  # an instance attribute: nn.Module.__call__ finds it before the class's
            wrapped.append(module)
        yield names
    finally:
        for module in wrapped:
            module.__dict__.pop("forward", None)
