"""The user-facing XMem model: network + eval config + ``segment``, and the checkpoint loader.

``models.load_model("xmem", checkpoint, device, **config)`` lands in :func:`load`.  The key, value
and hidden dimensions are read from the checkpoint exactly as the official ``XMem`` constructor
does, so ``XMem.pth``, ``XMem-s012.pth``, ``XMem-s2.pth`` and the no-sensory variant all load.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from models.checkpoint import CheckpointError, load_strict, read_state_dict
from models.xmem import ttt as xmem_ttt
from models.inputs import given_masks
from models.xmem.inference import iterate_images, normalise, segment_video
from models.xmem.later import segment_given
from models.xmem.network import XMemNet

__all__ = ["XMem", "DEFAULT_CONFIG", "dims_from_state_dict", "load"]

#: official eval.py defaults (``size``: -1 = native resolution; eval.py's default 480 resizes the
#: shorter side to 480, an identity for DAVIS 480p frames; ``enable_long_term_count_usage=None`` =
#: eval.py's per-video rule).
DEFAULT_CONFIG: dict[str, Any] = {
    "top_k": 30,
    "mem_every": 5,
    "deep_update_every": -1,
    "enable_long_term": True,
    "enable_long_term_count_usage": None,
    "min_mid_term_frames": 5,
    "max_mid_term_frames": 10,
    "num_prototypes": 128,
    "max_long_term_elements": 10000,
    "size": -1,
}
_DIM_KEYS = ("key_dim", "value_dim", "hidden_dim")


class XMem(XMemNet):
    """XMem with its inference settings; ``segment`` is the toolkit-wide VOS interface."""

    def __init__(self, key_dim: int = 64, value_dim: int = 512, hidden_dim: int = 64, **config: Any) -> None:
        super().__init__(key_dim, value_dim, hidden_dim)
        self.config = _check_config({**DEFAULT_CONFIG, **config})

    def segment(self, frames: np.ndarray, first_mask, *, progress: bool = False,
                **overrides: Any) -> np.ndarray:
        """frames uint8 (T, H, W, 3) RGB, first_mask uint8 (H, W) label map or ``{frame: label map}``
        (models.inputs) -> float32 (K+1, T, H, W) probabilities (background first, objects in sorted
        label order; 0 before an object's first frame).

        Keyword overrides (e.g. ``top_k``, ``mem_every``, ``enable_long_term``) apply to this call.
        Objects given on later frames are added as the official eval.py does (:mod:`models.xmem.later`).
        """
        cfg = _check_config({**self.config, **overrides})
        given = None
        if isinstance(first_mask, dict) or hasattr(first_mask, "items"):
            given = given_masks(frames, first_mask)
            if list(given) == [0]:
                first_mask, given = given[0], None
        was_training = self.training
        self.eval()
        try:
            if given is not None:
                return segment_given(self, np.asarray(frames), given, cfg)
            return segment_video(self, frames, first_mask, cfg, progress=progress)
        finally:
            self.train(was_training)

    # ------------------------------------------------------------------ models.ttt hooks
    #: frames and masks are padded to multiples of this for TTT samples
    ttt_pad = 16

    def prepare(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 (T, H, W, 3) -> normalised float (T, 3, H, W) on the model's device."""
        device = next(self.parameters()).device
        return torch.stack([normalise(f, device) for f in np.asarray(frames)])

    @torch.no_grad()
    def ttt_pseudo_labels(self, images: torch.Tensor, first_labels: torch.Tensor, **segment_kw: Any) -> torch.Tensor:
        """Standard inference on normalised frames -> (T, H, W) uint8 class maps (frame 0 = given)."""
        cfg = _check_config({**self.config, **segment_kw})
        k = int(first_labels.max())
        onehot = torch.stack([first_labels == i for i in range(1, k + 1)]).to(images.dtype)
        labels = torch.empty((images.shape[0], *images.shape[-2:]), dtype=torch.uint8, device=images.device)
        was_training = self.training
        self.eval()
        try:
            for t, prob, _ in iterate_images(self, images.shape[0], lambda i: images[i], onehot, cfg):
                labels[t] = prob.argmax(0).to(torch.uint8)
        finally:
            self.train(was_training)
        labels[0] = first_labels.to(torch.uint8)
        return labels

    def ttt_freeze_groups(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in xmem_ttt.FREEZE_GROUPS.items()}

    def ttt_cycle(self, batch: dict, *, backwards: bool = True):
        """tt-MCC / tt-Ent forward (and backward) passes; see :mod:`models.xmem.ttt`."""
        return xmem_ttt.cycle(self, batch, backwards=backwards)

    def ttt_single(self, batch: dict) -> torch.Tensor:
        """tt-AE pass on frame 0; see :mod:`models.xmem.ttt`."""
        return xmem_ttt.single(self, batch)

    def ttt_sample_indices(self, n_frames: int, num_frames: int, max_jump: int, rng: np.random.Generator) -> list[int]:
        """XMem octuplets (distinct frames grown from frame 0); see :func:`models.xmem.ttt.sample_indices`."""
        return xmem_ttt.sample_indices(n_frames, num_frames, max_jump, rng)

    def ttt_max_sampled_frames(self, num_frames: int, max_jump: int) -> int:
        """How many leading frames :meth:`ttt_sample_indices` can reach (training frames to prepare)."""
        return xmem_ttt.max_sampled_frames(num_frames, max_jump)

    def extra_repr(self) -> str:
        return f"key_dim={self.key_dim}, value_dim={self.value_dim}, hidden_dim={self.hidden_dim}"


def _check_config(cfg: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(cfg) - set(DEFAULT_CONFIG))
    if unknown:
        raise TypeError(f"unknown XMem option(s) {unknown}; known: {sorted(DEFAULT_CONFIG)}")
    return cfg


def dims_from_state_dict(state: Mapping[str, torch.Tensor], source: str = "checkpoint") -> dict[str, int]:
    """key/value/hidden dims the way the official code infers them (hidden 0 if no hidden update)."""
    try:
        key_dim = int(state["key_proj.key_proj.weight"].shape[0])
        value_dim = int(state["value_encoder.fuser.block2.conv2.weight"].shape[0])
    except KeyError as exc:
        raise CheckpointError(f"{source} is not an XMem checkpoint: missing {exc.args[0]!r}") from None
    transform = state.get("decoder.hidden_update.transform.weight")
    hidden_dim = 0 if transform is None else int(transform.shape[0]) // 3
    return {"key_dim": key_dim, "value_dim": value_dim, "hidden_dim": hidden_dim}


def _single_to_multi_object(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # single-object checkpoints lack the "others" input channel; eval appends it as zeros
    w = state.get("value_encoder.conv1.weight")
    if w is not None and w.dim() == 4 and w.shape[1] == 4:
        state = dict(state)
        state["value_encoder.conv1.weight"] = torch.cat([w, w.new_zeros(w.shape[0], 1, *w.shape[2:])], 1)
    return state


def load(checkpoint: str | Path | Mapping[str, Any] | None = None, device: Any = None, **config: Any) -> XMem:
    """Build XMem, load ``checkpoint`` (path or state dict) strictly, move to ``device`` (None: CUDA
    when available), eval mode.

    ``config`` holds eval options (see :data:`DEFAULT_CONFIG`) and, without a checkpoint, the
    dims ``key_dim``/``value_dim``/``hidden_dim`` (64/512/64).  With a checkpoint the dims come
    from its tensors; an explicitly given dim that disagrees is an error.
    """
    dims = {k: config.pop(k) for k in _DIM_KEYS if k in config}
    state = None
    if checkpoint is not None:
        source = str(checkpoint) if isinstance(checkpoint, (str, Path)) else "XMem state dict"
        state = _single_to_multi_object(read_state_dict(checkpoint))
        found = dims_from_state_dict(state, source)
        clash = {k: (v, found[k]) for k, v in dims.items() if v != found[k]}
        if clash:
            raise CheckpointError(f"{source}: requested dims disagree with the checkpoint "
                                  + ", ".join(f"{k}={a} vs {b}" for k, (a, b) in clash.items()))
        dims = found
    model = XMem(**{"key_dim": 64, "value_dim": 512, "hidden_dim": 64, **dims}, **config)
    if state is not None:
        load_strict(model, state, source)
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return model.to(torch.device(device)).eval()
