"""The user-facing Cutie model: network + eval config + ``segment``, and the checkpoint loader.

``models.load_model("cutie", checkpoint, device, **config)`` lands in :func:`load`.  The variant
(``base``: ResNet-50 pixel encoder, ``small``: ResNet-18) is read from the checkpoint's tensors, so
``cutie-base-mega.pth`` and ``cutie-small-mega.pth`` (and the ``-nomose`` / ``-wmose`` releases) all
load with the same call.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from models.checkpoint import CheckpointError, load_strict, read_state_dict
from models.cutie import ttt as cutie_ttt
from models.cutie.golden import golden_init_v2_rule
from models.cutie.inference import iterate_images, segment_video
from models.cutie.network import VARIANTS, CutieNet

__all__ = ["Cutie", "DEFAULT_CONFIG", "variant_from_state_dict", "load"]

#: official DAVIS-2017 evaluation settings (``eval_config.yaml`` + ``dataset=d17-val``), with the
#: ``long_term.*`` group flattened to ``long_term_*``.  ``size`` is the reader's shorter-side limit
#: (480: DAVIS 480p frames are not resized); ``max_internal_size`` -1 = no internal resize.
DEFAULT_CONFIG: dict[str, Any] = {
    "top_k": 30,
    "mem_every": 5,
    "stagger_updates": 5,
    "max_mem_frames": 5,
    "use_long_term": False,
    "long_term_count_usage": True,
    "long_term_max_mem_frames": 10,
    "long_term_min_mem_frames": 5,
    "long_term_num_prototypes": 128,
    "long_term_max_num_tokens": 10000,
    "long_term_buffer_tokens": 2000,
    "chunk_size": -1,
    "flip_aug": False,
    "max_internal_size": -1,
    "size": 480,
}
_LONG_TERM_NAMES = {"count_usage", "max_mem_frames", "min_mem_frames", "num_prototypes", "max_num_tokens",
                    "buffer_tokens"}


def _check_config(cfg: Mapping[str, Any]) -> dict[str, Any]:
    cfg = dict(cfg)
    nested = cfg.pop("long_term", None)  # the official nested group is accepted too
    if nested is not None:
        if not isinstance(nested, Mapping) or set(nested) - _LONG_TERM_NAMES:
            raise TypeError(f"long_term must be a mapping with keys among {sorted(_LONG_TERM_NAMES)}, got {nested!r}")
        cfg.update({f"long_term_{k}": v for k, v in nested.items()})
    unknown = sorted(set(cfg) - set(DEFAULT_CONFIG))
    if unknown:
        raise TypeError(f"unknown Cutie option(s) {unknown}; known: {sorted(DEFAULT_CONFIG)} (or long_term={{...}})")
    if cfg.get("flip_aug"):
        raise ValueError("flip_aug=True is not supported (the official DAVIS evaluation uses False)")
    return cfg


class Cutie(CutieNet):
    """Cutie with its inference settings; ``segment`` is the toolkit-wide VOS interface."""

    #: golden init v2 (see :mod:`models.cutie.golden`), picked up by :func:`models.golden_init`
    golden_init_rule = staticmethod(golden_init_v2_rule)

    def __init__(self, variant: str = "base", **config: Any) -> None:
        super().__init__(variant)
        self.config = _check_config({**DEFAULT_CONFIG, **config})

    def segment(self, frames: np.ndarray, masks, *, progress: bool = False, **overrides: Any) -> np.ndarray:
        """frames uint8 (T, H, W, 3) RGB; masks: a first-frame label map (H, W) or {frame: label map}
        (see :mod:`models.inputs`) -> float32 (K+1, T, H, W) probabilities (background first, objects in
        sorted label order, 0 before an object's first frame).

        Keyword overrides (e.g. ``mem_every``, ``use_long_term``, ``long_term={...}``) apply to this call.
        """
        cfg = _check_config({**self.config, **overrides})
        was_training = self.training
        self.eval()
        try:
            return segment_video(self, frames, masks, cfg, progress=progress)
        finally:
            self.train(was_training)

    # ------------------------------------------------------------------ models.ttt hooks
    #: frames and masks are padded to multiples of this for TTT samples
    ttt_pad = 16

    def prepare(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 (T, H, W, 3) -> float (T, 3, H, W) in [0, 1] (Cutie normalises inside the network, so
        zero padding is black, as in the official inference)."""
        device = next(self.parameters()).device
        x = torch.from_numpy(np.ascontiguousarray(frames)).to(device)
        return x.permute(0, 3, 1, 2).float().div(255)

    @torch.no_grad()
    def ttt_pseudo_labels(self, images: torch.Tensor, first_labels: torch.Tensor, **segment_kw: Any) -> torch.Tensor:
        """Standard inference on prepared frames -> (T, H, W) uint8 class maps (frame 0 = given)."""
        cfg = _check_config({**self.config, **segment_kw})
        labels = torch.empty((images.shape[0], *images.shape[-2:]), dtype=torch.uint8, device=images.device)
        was_training = self.training
        self.eval()
        try:
            given = {0: first_labels.long()}
            for t, prob, order, _ in iterate_images(self, images.shape[0], lambda i: images[i], given, cfg):
                lut = torch.tensor([0, *order], device=images.device, dtype=torch.uint8)
                labels[t] = lut[prob.argmax(0)]
        finally:
            self.train(was_training)
        labels[0] = first_labels.to(torch.uint8)
        return labels

    def ttt_freeze_groups(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in cutie_ttt.FREEZE_GROUPS.items()}

    def ttt_cycle(self, batch: dict, *, backwards: bool = True):
        """tt-MCC / tt-Ent forward (and backward) passes; see :mod:`models.cutie.ttt`."""
        return cutie_ttt.cycle(self, batch, backwards=backwards)

    def ttt_single(self, batch: dict) -> torch.Tensor:
        """tt-AE pass on frame 0; see :mod:`models.cutie.ttt`."""
        return cutie_ttt.single(self, batch)

    def ttt_sample_indices(self, n_frames: int, num_frames: int, max_jump: int, rng: np.random.Generator) -> list[int]:
        """8-frame samples grown from frame 0 (XMem's sampler; Cutie also trains on 8-frame sequences)."""
        return cutie_ttt.sample_indices(n_frames, num_frames, max_jump, rng)

    def ttt_max_sampled_frames(self, num_frames: int, max_jump: int) -> int:
        return cutie_ttt.max_sampled_frames(num_frames, max_jump)


def variant_from_state_dict(state: Mapping[str, torch.Tensor], source: str = "checkpoint") -> str:
    """'base' or 'small', from the width of the pixel encoder's stride-16 feature."""
    w = state.get("pix_feat_proj.weight")
    if w is None or w.dim() != 4:
        raise CheckpointError(f"{source} is not a Cutie checkpoint: no 4-D 'pix_feat_proj.weight'")
    for name, (_, dims) in VARIANTS.items():
        if w.shape[1] == dims[0]:
            return name
    raise CheckpointError(f"{source}: pix_feat_proj.weight reads {w.shape[1]} channels; cutie-base has "
                          f"{VARIANTS['base'][1][0]}, cutie-small {VARIANTS['small'][1][0]}")


def load(checkpoint: str | Path | Mapping[str, Any] | None = None, device: Any = None, *,
         variant: str | None = None, **config: Any) -> Cutie:
    """Build Cutie, load ``checkpoint`` (path or state dict) strictly, move to ``device`` (None: CUDA
    when available), eval mode.

    ``variant`` ('base' / 'small', also 'cutie-base' / 'cutie-small') defaults to the checkpoint's
    (or 'base' without one); a variant that disagrees with the checkpoint is an error.  ``config``
    holds eval options (see :data:`DEFAULT_CONFIG`).
    """
    if variant is not None:
        variant = str(variant).lower().removeprefix("cutie-")
        if variant not in VARIANTS:
            raise ValueError(f"unknown Cutie variant {variant!r}; expected base or small")
    state = None
    if checkpoint is not None:
        source = str(checkpoint) if isinstance(checkpoint, (str, Path)) else "Cutie state dict"
        state = read_state_dict(checkpoint)
        w = state.get("mask_encoder.conv1.weight")
        if w is not None and w.dim() == 4 and w.shape[1] == 4:
            raise CheckpointError(f"{source} is a single-object Cutie checkpoint (mask_encoder.conv1 has 4 input "
                                  "channels); only the released multi-object checkpoints are supported")
        found = variant_from_state_dict(state, source)
        if variant is not None and variant != found:
            raise CheckpointError(f"{source} is a cutie-{found} checkpoint, but variant={variant!r} was requested")
        variant = found
    model = Cutie(variant or "base", **config)
    if state is not None:
        load_strict(model, state, source)
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return model.to(torch.device(device)).eval()
