"""The released e-OSVOS checkpoint layout, its strict loader and the goldens' initialisation.

A released file (``best_val_meta_iter.model``) is ``torch.save({'meta_optim_state_dict': ...,
'vis_win_names': ..., 'meta_iter': int, 'meta_epoch': int})``; the meta-optimiser's state holds, for
every one of the 201 network parameters ``name`` (torchvision-0.4 names, ``.`` written as ``-``):

* ``model_init_<name>`` -- the meta-learned initialisation;
* ``log_init_lr_<name>`` -- the learned learning rates, one per output neuron (shape
  ``(p.shape[0],) + (1,) * (p.dim() - 1)``).  Despite the name they are raw rates: no exp.

:func:`read_checkpoint` loads such a file with ``torch.load(weights_only=True)`` and checks every
key and shape; :func:`golden_checkpoint` builds the goldens' initialisation (golden README §2).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from common.checkpoint import read_mapping
from models.checkpoint import CheckpointError, check_state_dict
from models.golden_init import golden_state_dict

__all__ = ["INIT_PREFIX", "LR_PREFIX", "CONTAINER_KEY", "lr_shape", "checkpoint_key", "read_checkpoint",
           "golden_checkpoint", "golden_init_rule", "golden_lr_rule", "meta_state_dict"]

INIT_PREFIX = "model_init_"
LR_PREFIX = "log_init_lr_"
CONTAINER_KEY = "meta_optim_state_dict"


def lr_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Shape of the per-neuron learning rate of a parameter of ``shape`` (dim 0 = neuron)."""
    return (shape[0],) if len(shape) == 1 else (shape[0],) + (1,) * (len(shape) - 1)


def checkpoint_key(prefix: str, name: str) -> str:
    return prefix + name.replace(".", "-")


def meta_state_dict(init: Mapping[str, torch.Tensor], lrs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The ``meta_optim_state_dict`` of parameters ``init`` and rates ``lrs`` (LRs first, as released)."""
    out = {checkpoint_key(LR_PREFIX, k): v for k, v in lrs.items()}
    out.update({checkpoint_key(INIT_PREFIX, k): v for k, v in init.items()})
    return out


def read_checkpoint(checkpoint: str | Path | Mapping[str, Any], model: nn.Module
                    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Return ``(init, lrs)`` keyed by ``model``'s parameter names from a released file (or its dict).

    Accepts the full container (``{'meta_optim_state_dict': ...}``) or the meta-optimiser state itself.
    Every parameter needs both entries with the right shapes; anything else is refused, naming the keys.
    Negative learning rates are refused (the meta-training clamps them to ``>= 0``).
    """
    obj, source = read_mapping(checkpoint)
    if CONTAINER_KEY in obj:
        obj = obj[CONTAINER_KEY]
        if not isinstance(obj, Mapping):
            raise CheckpointError(f"{source}: {CONTAINER_KEY} is {type(obj).__name__}, not a dict")
    for k, v in obj.items():
        if not isinstance(v, torch.Tensor):
            raise CheckpointError(f"{source}: entry {k!r} is {type(v).__name__}, not a tensor")
    params = dict(model.named_parameters())
    expected = {checkpoint_key(INIT_PREFIX, k): p for k, p in params.items()}
    expected.update({checkpoint_key(LR_PREFIX, k): p.new_empty(lr_shape(tuple(p.shape))) for k, p in params.items()})
    check_state_dict(expected, obj, source)
    init = {k: obj[checkpoint_key(INIT_PREFIX, k)] for k in params}
    lrs = {k: obj[checkpoint_key(LR_PREFIX, k)] for k in params}
    negative = [k for k, v in lrs.items() if bool((v < 0).any()) or not bool(torch.isfinite(v).all())]
    if negative:
        raise CheckpointError(f"{source}: negative or non-finite learning rates in {negative[:5]}")
    return init, lrs


def golden_init_rule(name: str, ref: torch.Tensor, gen: torch.Generator, s: float) -> torch.Tensor:
    """e-OSVOS golden weights (golden README §2), in the :data:`models.golden_init.ExtraRule` form."""
    shape = tuple(ref.shape)
    if len(shape) >= 2:
        value = torch.randn(shape, generator=gen, dtype=torch.float32) / math.sqrt(math.prod(shape[1:]))
        if name.endswith("bbox_pred.weight"):
            value = value * 0.01
        return value
    if name.endswith(".weight"):
        return 1.0 + 0.1 * torch.randn(shape, generator=gen, dtype=torch.float32)
    value = 0.05 * torch.randn(shape, generator=gen, dtype=torch.float32)
    if name == "roi_heads.box_predictor.cls_score.bias":
        value[1] += 3.0
    return value


def golden_lr_rule(name: str, ref: torch.Tensor, gen: torch.Generator, s: float) -> torch.Tensor:
    """e-OSVOS golden learning rates: ``1e-3 * (1 + 0.1 * randn(lr_shape))`` (``ref`` has the LR shape)."""
    return 1e-3 * (1.0 + 0.1 * torch.randn(tuple(ref.shape), generator=gen, dtype=torch.float32))


def golden_checkpoint(model: nn.Module) -> dict[str, torch.Tensor]:
    """``meta_optim_state_dict`` of the goldens' initialisation (weights: seed 0, rates: seed 1)."""
    params = {k: p.detach() for k, p in model.named_parameters()}
    init = golden_state_dict(params, seed=0, extra_rule=golden_init_rule)
    lr_refs = {k: torch.empty(lr_shape(tuple(p.shape))) for k, p in params.items()}
    lrs = golden_state_dict(lr_refs, seed=1, extra_rule=golden_lr_rule)
    return meta_state_dict({k: init[k] for k in params}, {k: lrs[k] for k in params})
