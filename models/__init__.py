"""Matching-based VOS models behind one contract (:mod:`models.base`).

Every model returned by :func:`load_model` offers
``segment(frames, masks, **options) -> float32 array (K+1, T, H, W)`` (background first, objects in
sorted label order), so the harness, test-time training and the leaderboard treat them alike.

Model families are registered by name in :mod:`models.registry` (the one name -> builder table); the import
happens only when a family is asked for, so ``import models`` loads no model family (it does import torch,
for ``golden_init``).  Adding a family: ``docs/models.md``.

Module map: ``base`` (the family contract), ``registry`` (names -> builders), ``checkpoint`` (safe strict
loading), ``golden_init`` (the reproducible weights recipe of the goldens), ``inputs`` (validation of
frames and given masks), shared math: ``aggregate``, ``imagenet``, ``padding``, ``groupconv``, ``readout``;
shared blocks ``resnet`` / ``cbam``; ``ttt`` (test-time training: losses, sampler, adaptation loop,
presets), and one package per family: ``stcn``, ``xmem``, ``cutie``, ``sam2``, ``labelprop``, each with
``model.py`` (class + ``load``) and ``ttt.py`` (TTT hooks), and ``eosvos`` (e-OSVOS: first-frame fine-tuning of
a Mask R-CNN inside ``segment``, so no TTT hooks).
"""
from __future__ import annotations

from models.golden_init import golden_init
from models.registry import MODELS, available_models, builder, load_model, register

__all__ = ["load_model", "available_models", "builder", "register", "golden_init", "MODELS"]
