"""The "golden init v1" weight recipe used by every golden vector in ``shared/golden``.

No official weights can be downloaded here, so the goldens were produced with weights drawn by a
fixed recipe from one seeded generator.  Reproducing the recipe bit for bit lets tests compare our
networks with the official code on equal weights.  The recipe is model-agnostic (STCN uses
``s=1.0``, XMem ``s=1.1``).
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["golden_init", "golden_state_dict"]


def golden_state_dict(state: dict[str, torch.Tensor], seed: int = 0, s: float = 1.0) -> dict[str, torch.Tensor]:
    """Return a new state dict with the recipe's values for every entry of ``state``."""
    gen = torch.Generator(device="cpu")
    gen.manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    for name in sorted(state):
        ref = state[name]
        if not ref.is_floating_point():
            out[name] = torch.zeros_like(ref, device="cpu")  # counters: no draw, fresh value
            continue
        shape = tuple(ref.shape)
        if name.endswith("running_var") and ref.dim() == 1:
            value = 1 + 0.1 * torch.rand(shape, generator=gen, dtype=torch.float32)
        else:
            draw = torch.randn(shape, generator=gen, dtype=torch.float32)
            if ref.dim() == 4:
                value = draw * ((s / (shape[1] * shape[2] * shape[3])) ** 0.5)
            elif ref.dim() == 2:
                value = draw * ((s / shape[1]) ** 0.5)
            elif name.endswith("running_mean"):
                value = 0.1 * draw
            elif name.endswith("weight"):
                value = 1 + 0.1 * draw
            elif name.endswith("bias"):
                value = 0.05 * draw
            else:
                raise ValueError(f"golden init v1 has no rule for {name!r} with shape {shape}")
        out[name] = value.to(ref.dtype)
    return out


def golden_init(model: nn.Module, seed: int = 0, s: float = 1.0) -> nn.Module:
    """Overwrite ``model``'s weights in place with golden-init-v1 values; returns the model.

    A model whose goldens use a model-specific recipe (e.g. SAM 2's "golden init v2") provides
    ``golden_state_dict(seed=..., s=...)``; that recipe is used instead.
    """
    own = getattr(model, "golden_state_dict", None)
    state = model.state_dict()
    new = own(seed=seed, s=s) if callable(own) else golden_state_dict(state, seed=seed, s=s)
    model.load_state_dict(new, strict=True)
    return model
