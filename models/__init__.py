"""Matching-based VOS models behind one interface.

Every model returned by :func:`load_model` offers
``segment(frames, first_mask, ...) -> float32 array (K+1, T, H, W)`` (background first, objects in
sorted label order), so the harness, test-time training and the leaderboard treat them alike.

Model families register a loader here by dotted path; the import happens only when a family is
asked for, so ``import models`` loads no model family (it does import torch, for ``golden_init``).

Module map: ``checkpoint`` (safe strict loading), ``golden_init`` (the reproducible weights recipe of the
goldens), ``inputs`` (validation of frames and given masks), ``resnet`` / ``cbam`` (shared building
blocks), ``ttt`` (test-time training: losses, sampler, adaptation loop, presets), and one package per
family: ``stcn``, ``xmem``, ``cutie``, ``sam2``, ``labelprop``, ``eosvos`` (e-OSVOS: first-frame
fine-tuning of a Mask R-CNN).
"""
from __future__ import annotations

import importlib
from typing import Any

from models.golden_init import golden_init

__all__ = ["load_model", "available_models", "golden_init", "MODEL_LOADERS"]

#: model name -> "module:function"; the function takes (checkpoint, device, **config).
MODEL_LOADERS: dict[str, str] = {
    "stcn": "models.stcn:load",
    "xmem": "models.xmem:load",
    "cutie": "models.cutie:load",
    "labelprop": "models.labelprop:load",
    "eosvos": "models.eosvos:load",
    "sam2.1_hiera_t": "models.sam2:load_sam2_1_hiera_t",
    "sam2.1_hiera_s": "models.sam2:load_sam2_1_hiera_s",
    "sam2.1_hiera_b+": "models.sam2:load_sam2_1_hiera_b_plus",
    "sam2.1_hiera_l": "models.sam2:load_sam2_1_hiera_l",
    "sam2_hiera_t": "models.sam2:load_sam2_hiera_t",
    "sam2_hiera_s": "models.sam2:load_sam2_hiera_s",
    "sam2_hiera_b+": "models.sam2:load_sam2_hiera_b_plus",
    "sam2_hiera_l": "models.sam2:load_sam2_hiera_l",
}


def available_models() -> list[str]:
    return sorted(MODEL_LOADERS)


def load_model(name: str, checkpoint: Any = None, device: Any = None, **config: Any):
    """Build model ``name`` and load ``checkpoint`` (a path or a state dict) strictly.

    ``checkpoint=None`` builds the network with untrained weights (use :func:`golden_init` for the
    reproducible recipe the tests rely on).
    """
    try:
        target = MODEL_LOADERS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(available_models())}") from None
    module_name, func_name = target.split(":")
    loader = getattr(importlib.import_module(module_name), func_name)
    return loader(checkpoint=checkpoint, device=device, **config)
