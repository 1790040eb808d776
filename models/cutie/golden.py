"""Cutie's "golden init v2": golden init v1 extended to the tensor kinds v1 has no rule for.

The Cutie goldens (``shared/golden/cutie``) were produced with these weights (seed 0, s = 1.2):
same generator, same sorted key order and same v1 rules, plus

* names ending in ``inv_freq`` (the positional-encoding constants): no draw, the constructed value;
* 3-D tensors (the 1 x 1 x k Conv1d of the channel attention): ``randn * sqrt(s / (I * k))``.
"""
from __future__ import annotations

import torch

__all__ = ["golden_init_v2_rule", "GOLDEN_S"]

#: the scale of the public Cutie goldens
GOLDEN_S = 1.2


def golden_init_v2_rule(name: str, ref: torch.Tensor, gen: torch.Generator, s: float) -> torch.Tensor | None:
    """The v2 additions as a :data:`models.golden_init.ExtraRule` (None: use the v1 rule)."""
    if name.endswith("inv_freq"):
        half = 2 * ref.numel()  # the constructed value, whatever the tensor holds now
        return 1.0 / (128.0 ** (torch.arange(0, half, 2).float() / half))
    if ref.is_floating_point() and ref.dim() == 3:
        o, i, k = ref.shape
        return torch.randn(tuple(ref.shape), generator=gen, dtype=torch.float32) * ((s / (i * k)) ** 0.5)
    return None
