"""The forward-and-back cycle of a TTT sample, for families whose training pass is an ``encode`` of every
sample frame followed by a ``propagate`` through them (XMem's and Cutie's)."""
from __future__ import annotations

from typing import Any, Callable

__all__ = ["cycle_with"]


def cycle_with(encode: Callable[..., dict], propagate_fn: Callable[..., list], net: Any, batch: dict, *,
               backwards: bool = True):
    """Forward a -> ... -> z and (with ``backwards``) back z -> ... -> a.

    ``encode(net, rgb) -> {name: (B, T, ...)}``; ``propagate_fn(net, feats, first_masks, selector) ->
    [(log-odds, prob), ...]`` for frames 1..T-1.  The backward half starts from the last forward frame's
    soft prediction (not detached).  Returns the lists of log-odds of the forward and backward frames (the
    last backward entry is frame a), the latter None without ``backwards``.
    """
    feats = encode(net, batch["rgb"])
    selector = batch["selector"].to(batch["rgb"].dtype)
    fwd = propagate_fn(net, feats, batch["gt"][:, :, 0, 0], selector)
    if not backwards:
        return [x[0] for x in fwd], None
    reverse = {name: x.flip(1) for name, x in feats.items()}
    bwd = propagate_fn(net, reverse, fwd[-1][1], selector)
    return [x[0] for x in fwd], [x[0] for x in bwd]
