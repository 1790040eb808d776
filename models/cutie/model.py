"""The user-facing Cutie model: network + eval config + ``segment``, and the checkpoint loader.

``models.load_model("cutie", checkpoint, device, **config)`` lands in :func:`load`.  The variant
(``base``: ResNet-50 pixel encoder, ``small``: ResNet-18) is read from the checkpoint's tensors, so
``cutie-base-mega.pth`` and ``cutie-small-mega.pth`` (and the ``-nomose`` / ``-wmose`` releases) all
load with the same call.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar, Mapping

import numpy as np
import torch

from models.base import OptionError, TTTHooks, VOSModel, option_defaults
from models.checkpoint import CheckpointError, load_strict, read_state_dict
from models.cutie import ttt as cutie_ttt
from models.cutie.golden import golden_init_v2_rule
from models.cutie.inference import segment_video
from models.cutie.network import VARIANTS, CutieNet

__all__ = ["Cutie", "CutieOptions", "DEFAULT_CONFIG", "variant_from_state_dict", "load"]


@dataclasses.dataclass(frozen=True)
class CutieOptions:
    """Official DAVIS-2017 evaluation settings (``eval_config.yaml`` + ``dataset=d17-val``), with the
    ``long_term.*`` group flattened to ``long_term_*`` (the nested ``long_term={...}`` is accepted too).
    ``size`` is the reader's shorter-side limit (480: DAVIS 480p frames are not resized);
    ``max_internal_size`` -1 = no internal resize; ``flip_aug`` must stay False."""

    top_k: int = 30
    mem_every: int = 5
    stagger_updates: int = 5
    max_mem_frames: int = 5
    use_long_term: bool = False
    long_term_count_usage: bool = True
    long_term_max_mem_frames: int = 10
    long_term_min_mem_frames: int = 5
    long_term_num_prototypes: int = 128
    long_term_max_num_tokens: int = 10000
    long_term_buffer_tokens: int = 2000
    chunk_size: int = -1
    flip_aug: bool = False
    max_internal_size: int = -1
    size: int = 480


#: the options' defaults as a dict
DEFAULT_CONFIG: dict[str, Any] = option_defaults(CutieOptions)
_LONG_TERM_NAMES = {"count_usage", "max_mem_frames", "min_mem_frames", "num_prototypes", "max_num_tokens",
                    "buffer_tokens"}


class Cutie(CutieNet, VOSModel, TTTHooks):
    """Cutie with its inference settings; ``segment`` is the toolkit-wide VOS interface (:mod:`models.base`)."""

    family: ClassVar[str] = "Cutie"
    Options: ClassVar[type] = CutieOptions
    ttt_module = cutie_ttt
    #: golden init v2 (see :mod:`models.cutie.golden`), picked up by :func:`models.golden_init`
    golden_init_rule = staticmethod(golden_init_v2_rule)

    def __init__(self, variant: str = "base", **config: Any) -> None:
        super().__init__(variant)
        self._init_options(config)

    @classmethod
    def _adjust_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        """The official nested ``long_term={...}`` group is flattened; ``flip_aug=True`` is refused."""
        nested = options.pop("long_term", None)
        if nested is not None:
            if not isinstance(nested, Mapping) or set(nested) - _LONG_TERM_NAMES:
                raise OptionError(f"long_term={nested!r}: Cutie expects a mapping with keys among "
                                  f"{sorted(_LONG_TERM_NAMES)}", "long_term")
            options.update({f"long_term_{k}": v for k, v in nested.items()})
        if options.get("flip_aug"):
            raise OptionError("flip_aug=True: not supported (the official DAVIS evaluation uses False)", "flip_aug")
        return options

    def _segment(self, frames: np.ndarray, masks, cfg: dict[str, Any], *, progress: bool) -> np.ndarray:
        return segment_video(self, frames, masks, cfg, progress=progress)


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
