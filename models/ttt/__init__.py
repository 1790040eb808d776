"""Test-time training (TTT) for matching-based video object segmentation models.

Implements the protocol of "Test-time Training for Matching-based Video Object Segmentation"
(NeurIPS 2023): before segmenting a test video, a copy of the model is adapted on that video
with a self-supervised loss, starting from the pretrained weights every time.

* ``mcc`` (tt-MCC, mask cycle consistency): propagate the given first-frame mask forward
  0 -> i -> j and back j -> i -> 0; cross-entropy of the returned frame-0 prediction against
  the given mask.  Pseudo-labels of the whole video are re-inferred before every round and only
  decide which triplets are valid (the last frame must show every object).
* ``ent`` (tt-Ent): mean entropy of the forward predictions for frames i and j; only BatchNorm
  affine parameters are trained (official freezing string ``net,ubn``).
* ``ae`` (tt-AE): encode frame 0 with its mask and decode it without matching; cross-entropy.

Public API: :func:`trainable_parameters`, :func:`loss`, :func:`loss_from_batch`, :func:`adapt`,
:func:`load_preset` / :func:`available_presets` (YAML files in ``models/ttt/presets``), and the
sampler :func:`sample_indices` / :func:`sample_triplet` / :func:`build_batch`.

Hook protocol (how a model plugs in; every family gets these methods from :class:`models.base.TTTHooks`,
which delegates to functions of its ``models/<family>/ttt.py``, or from :class:`models.base.OwnTTT`)
-----------------------------------------------------------------------------------------------------------
A model either delegates the whole procedure::

    test_time_adapt(frames, first_mask, **params) -> adapted model

(``adapt`` then just calls it; label propagation uses this), or offers these methods, all on
torch tensors on the model's device:

* ``prepare(frames uint8 (T, H, W, 3)) -> (T, 3, H, W)`` normalised float frames;
* ``ttt_pseudo_labels(images (T, 3, H, W), first_labels (H, W) long, **segment_kw)
  -> (T, H, W)`` class maps (0 background, 1..K objects in sorted label order) from the model's
  standard inference with the current weights;
* ``ttt_cycle(batch, *, backwards: bool) -> (fwd, bwd)``: lists of log-odds ``(B, O+1, H, W)``
  for frames 1..T-1 of the sample going forward, and (when ``backwards``) for the reversed
  sample ending at frame 0 (``bwd[-1]`` is the frame-0 prediction); values of the first frame
  are encoded from ``batch["gt"]``/``batch["sec_gt"]``, later ones from the soft predictions,
  with gradients through the whole cycle;
* ``ttt_single(batch) -> (B, O+1, H, W)`` log-odds of frame 0 decoded from its own value (tt-AE);
* optional ``ttt_pad`` (int, default 16: frames and masks are zero-padded to multiples of it,
  split floor/ceil like STCN) and ``ttt_freeze_groups() -> {token: [name prefixes]}`` for
  model-specific freezing tokens (``net``, ``bn`` and ``ubn`` are generic).

The batch is a dict of tensors built by :func:`build_batch` (B samples, T frames, O objects):
``rgb`` (B, T, 3, H, W) normalised and padded; ``gt`` (B, O, T, 1, H, W) one-hot masks;
``sec_gt`` (B, O, T, 1, H, W) the other objects' masks; ``selector`` (B, O), 0 for a dummy
object; ``cls_gt`` (B, T, H, W) int64 class maps.  Only frame 0 of ``gt``/``sec_gt``/``cls_gt``
enters the losses.  BatchNorm stays in eval mode throughout.
"""
from __future__ import annotations

from models.ttt.anchor import ttt_anchor
from models.ttt.core import KINDS, adapt, loss, loss_from_batch, normalise_kind, trainable_parameters
from models.ttt.presets import available_presets, load_preset
from models.ttt.sampler import build_batch, sample_indices, sample_triplet

__all__ = ["KINDS", "adapt", "ttt_anchor", "loss", "loss_from_batch", "trainable_parameters", "normalise_kind",
           "load_preset", "available_presets", "sample_indices", "sample_triplet", "build_batch"]
