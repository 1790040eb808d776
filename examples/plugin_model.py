"""Plug your own VOS model into ``harness.run`` (the ``model: module:function`` route of ``--config``).

The model implements the toolkit's family contract (:mod:`models.base`, ``docs/models.md``) like the
built-in families: a class with its declared options (a dataclass), ``_segment``, and a builder
``load(checkpoint=None, device=None, **load_options)``.  It then gets, for free, the same ``segment``
(``segment(frames, masks, **options) -> (K+1, T, H, W)`` probabilities, background first, objects in sorted
label order), the same option check (an unknown or ill-typed option is refused by name, before a run
starts), and train/eval mode restored after ``segment``.  Point a method file at :func:`load`; see
``plugin_model.yaml``:

    python -m harness.run --config examples/plugin_model.yaml --out results   # from the repository root
    python -m leaderboard.build --results results --out leaderboard_out
"""
import dataclasses
from typing import ClassVar

import numpy as np
import torch

from models.base import VOSModel
from models.inputs import given_masks


@dataclasses.dataclass(frozen=True)
class CopyOptions:
    """The options ``segment`` accepts, with their defaults and types (checked by ``models.base``)."""

    confidence: float = 1.0   # probability of the copied label; the rest is spread over the other channels


def copy_first_mask(frames, first_mask, confidence=1.0):
    """A stand-in "model" (the first mask on every frame): replace it with a call to your own model."""
    ids = [int(v) for v in np.unique(first_mask) if v != 0]
    onehot = np.stack([first_mask == 0] + [first_mask == i for i in ids]).astype(np.float32)
    soft = onehot * confidence + (1 - onehot) * (1 - confidence) / len(ids)
    return np.repeat(soft[:, None], len(frames), axis=1)


class CopyModel(torch.nn.Module, VOSModel):
    """A family of one model: what ``harness.run`` needs is ``eval()`` and ``segment(frames, masks, **options)``."""

    family: ClassVar[str] = "plugin"
    Options: ClassVar[type] = CopyOptions

    def __init__(self, **options) -> None:
        super().__init__()
        self._init_options(options)

    def _segment(self, frames, masks, options, *, progress):
        given = given_masks(frames, masks)  # the toolkit's check of the given-masks contract
        if list(given) != [0]:
            raise ValueError("this example gives the model the first-frame mask only")
        n_objects = len([v for v in np.unique(given[0]) if v != 0])
        probs = np.asarray(copy_first_mask(frames, given[0], **options), dtype=np.float32)
        if probs.shape != (n_objects + 1, *np.shape(frames)[:3]):
            raise ValueError(f"segment returned {probs.shape}, expected (K+1, T, H, W) with K={n_objects}")
        return probs


def load(checkpoint=None, device="cpu", **options):
    """Called by harness.run with the method's ``load`` settings; ``checkpoint`` is None (weight-free)."""
    return CopyModel(**options).eval()
