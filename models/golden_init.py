"""The "golden init v1" weight recipe used by every golden vector in ``tests/golden`` (docs/testing.md).

No official weights can be downloaded here, so the goldens were produced with weights drawn by a
fixed recipe from one seeded generator.  Reproducing the recipe bit for bit lets tests compare our
networks with the official code on equal weights.  The recipe is model-agnostic (STCN uses
``s=1.0``, XMem ``s=1.1``).
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

__all__ = ["golden_init", "golden_state_dict", "ExtraRule"]


#: a model-specific extension of the recipe: (name, reference tensor, generator, s) -> value, or None
#: to fall back to the v1 rules (e.g. Cutie's "golden init v2", ``models.cutie.golden``)
ExtraRule = Callable[[str, torch.Tensor, torch.Generator, float], "torch.Tensor | None"]


def golden_state_dict(state: dict[str, torch.Tensor], seed: int = 0, s: float = 1.0, *,
                      extra_rule: ExtraRule | None = None) -> dict[str, torch.Tensor]:
    """Return a new state dict with the recipe's values for every entry of ``state``.

    ``extra_rule`` is consulted first for every key (in the same sorted order, with the same
    generator); where it returns None the v1 rules apply.
    """
    gen = torch.Generator(device="cpu")
    gen.manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    for name in sorted(state):
        ref = state[name]
        if extra_rule is not None:
            value = extra_rule(name, ref, gen, s)
            if value is not None:
                out[name] = value.to(ref.dtype)
                continue
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
    """Overwrite ``model``'s weights in place with golden-init values; returns the model.

    v1 unless the model extends the recipe: a ``golden_init_rule`` attribute (an :data:`ExtraRule`, as
    Cutie's golden init v2), or its own ``golden_state_dict(seed=..., s=...)`` (SAM 2's golden init v2).
    """
    own = getattr(model, "golden_state_dict", None)
    state = model.state_dict()
    if callable(own):
        new = own(seed=seed, s=s)
    else:
        new = golden_state_dict(state, seed=seed, s=s, extra_rule=getattr(model, "golden_init_rule", None))
    model.load_state_dict(new, strict=True)
    return model
