"""Plug your own VOS model into ``harness.run`` (the ``model: module:function`` route of ``--config``).

Wrap any callable ``segment(frames, first_mask) -> (K+1, T, H, W)`` probabilities (background first, then
the objects in sorted label order) and point a method file at :func:`load`; see ``plugin_model.yaml``:

    python -m harness.run --config examples/plugin_model.yaml --out results   # from the repository root
    python -m leaderboard.build --results results --out leaderboard_out
"""
import numpy as np

from models.inputs import given_masks


def copy_first_mask(frames, first_mask):
    """A stand-in "model" (the first mask on every frame): replace it with a call to your own model."""
    ids = [int(v) for v in np.unique(first_mask) if v != 0]
    onehot = np.stack([first_mask == 0] + [first_mask == i for i in ids]).astype(np.float32)
    return np.repeat(onehot[:, None], len(frames), axis=1)


class CallableModel:
    """What ``harness.run`` needs from a model: ``eval()`` and ``segment(frames, masks, **segment)``."""

    def __init__(self, fn):
        self.fn = fn

    def eval(self):
        return self

    def segment(self, frames, masks, **kwargs):
        given = given_masks(frames, masks)  # the toolkit's check of the given-masks contract
        if list(given) != [0]:
            raise ValueError("this wrapper gives the model the first-frame mask only")
        n_objects = len([v for v in np.unique(given[0]) if v != 0])
        probs = np.asarray(self.fn(frames, given[0], **kwargs), dtype=np.float32)
        if probs.shape != (n_objects + 1, *np.shape(frames)[:3]):
            raise ValueError(f"segment returned {probs.shape}, expected (K+1, T, H, W) with K={n_objects}")
        return probs


def load(checkpoint=None, device="cpu", **config):
    """Called by harness.run with the method's ``load`` settings; ``checkpoint`` is None (weight-free)."""
    return CallableModel(copy_first_mask)
