"""The user-facing e-OSVOS model: the released meta-learned state + schedule + ``segment``, and its loader.

``models.load_model("eosvos", checkpoint, device, **config)`` lands in :func:`load`.  The module's
state dict *is* the released ``meta_optim_state_dict`` (``model_init_*`` and ``log_init_lr_*``
buffers), so ``--random-init`` (``models.golden_init``) loads the goldens' initialisation
(:func:`models.eosvos.checkpoint.golden_checkpoint`) through the same strict path.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, ClassVar, Literal, Mapping

import numpy as np
import torch
from torch import nn

from models.base import OptionError, VOSModel, option_defaults
from models.checkpoint import CheckpointError
from models.eosvos.checkpoint import (INIT_PREFIX, LR_PREFIX, checkpoint_key, golden_checkpoint, lr_shape,
                                      read_checkpoint)
from models.eosvos.inference import Schedule, segment_frames
from models.eosvos.network import MaskRCNN
from models.eosvos.ops import SEMANTICS
from models.inputs import check_video, given_masks

__all__ = ["EOSVOS", "EOSVOSOptions", "DEFAULT_CONFIG", "NETWORK_DEFAULTS", "load"]

@dataclasses.dataclass(frozen=True)
class EOSVOSOptions:
    """The fine-tuning schedule (official DAVIS-2017 evaluation settings, ``DAVIS-2017`` + ``e-OSVOS`` named
    configs, with 10 steps): ``num_epochs`` steps on frame 0 (e-OSVOS-10 / -50 / -100) on batches of
    ``batch_size`` augmented copies (``augment``: flip + rotation/scale, random_train_transform); step e of
    online chunk c is seeded ``seed + e + c``; online adaptation every ``ona_step`` frames (0 = off; the -OnA
    configs: 5) with ``ona_epochs`` steps on frame 0 + the propagated masks thresholded at ``min_prop``;
    ``dtype`` float64 is the goldens' yardstick where float32 decisions tie."""

    num_epochs: int = 10
    batch_size: int = 3
    augment: bool = True
    seed: int = 1
    ona_step: int = 0
    ona_epochs: int = 10
    min_prop: float = 0.5
    dtype: Literal["float32", "float64"] = "float32"


#: the segment options' defaults
DEFAULT_CONFIG: dict[str, Any] = option_defaults(EOSVOSOptions)
#: the network's settings, fixed when it is built (``load(..., semantics=, min_size=, max_size=)``):
#: torchvision behaviour (tv04: what the released checkpoints were trained with; tv028: today's) and the
#: network input's shorter side / longer-side cap (official 800 / 1333; smaller = faster, not the official numbers)
NETWORK_DEFAULTS: dict[str, Any] = {"semantics": "tv04", "min_size": 800, "max_size": 1333}
#: background "probability" in the output: just below 0.5, so an argmax over (background, objects)
#: gives the official merge (background where every object is below 0.5, ties to the object)
BACKGROUND = float(np.nextafter(np.float32(0.5), np.float32(0)))


def _check_network(cfg: Mapping[str, Any]) -> dict[str, Any]:
    cfg = {**NETWORK_DEFAULTS, **cfg}
    if cfg["semantics"] not in SEMANTICS:
        raise ValueError(f"semantics must be one of {SEMANTICS}, got {cfg['semantics']!r}")
    for key in ("min_size", "max_size"):
        if isinstance(cfg[key], bool) or not isinstance(cfg[key], int) or cfg[key] < 1:
            raise ValueError(f"{key} must be an integer >= 1, got {cfg[key]!r}")
    return cfg


class EOSVOS(nn.Module, VOSModel):
    """e-OSVOS: per object, fine-tune the Mask R-CNN from the meta-learned init with the learned
    per-neuron rates on frame 0, then segment; ``segment`` follows the shared model interface
    (:mod:`models.base`).  Its adaptation is part of ``segment`` (the fine-tuning), so it has no TTT hooks;
    objects must all be given on frame 0 (:attr:`first_frame_only`), and channel 0 of the output is a constant
    just below 0.5 rather than a softmax share (:attr:`sums_to_one`): its argmax is the official merge."""

    family: ClassVar[str] = "e-OSVOS"
    Options: ClassVar[type] = EOSVOSOptions
    first_frame_only: ClassVar[bool] = True
    sums_to_one: ClassVar[bool] = False

    def __init__(self, *, semantics: str = "tv04", min_size: int = 800, max_size: int = 1333, **options: Any) -> None:
        super().__init__()
        self.network_config = _check_network({"semantics": semantics, "min_size": min_size, "max_size": max_size})
        self._init_options(options)
        net = MaskRCNN(**self.network_config)
        self._names = [n for n, _ in net.named_parameters()]
        for name, p in net.named_parameters():
            self.register_buffer(checkpoint_key(LR_PREFIX, name), torch.zeros(lr_shape(tuple(p.shape))))
        for name, p in net.named_parameters():
            self.register_buffer(checkpoint_key(INIT_PREFIX, name), p.detach().clone())
        object.__setattr__(self, "net", net)  # the working copy, fine-tuned per object (not in the state dict)
        #: costs of the last ``segment`` call (seconds; fine-tuning incl. online adaptation)
        self.last_timing: dict[str, Any] = {}

    @classmethod
    def _adjust_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        """Value rules beyond the types: step counts and sizes are non-negative / positive."""
        for key in ("num_epochs", "batch_size", "ona_step", "ona_epochs"):
            low = 0 if key != "batch_size" else 1
            value = options.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value < low:
                raise OptionError(f"{key}={value!r}: e-OSVOS expects an integer >= {low}", key)
        return options

    def meta_parameters(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """(init, learning rates) keyed by the network's parameter names."""
        init = {n: getattr(self, checkpoint_key(INIT_PREFIX, n)) for n in self._names}
        lrs = {n: getattr(self, checkpoint_key(LR_PREFIX, n)) for n in self._names}
        return init, lrs

    def golden_state_dict(self, seed: int = 0, s: float = 1.0) -> dict[str, torch.Tensor]:
        """The goldens' initialisation (golden README §2; ``seed``/``s`` other than 0/1 are refused)."""
        if seed != 0 or s != 1.0:
            raise ValueError("the e-OSVOS golden init is defined for seed 0 and scale 1 only")
        return golden_checkpoint(self.net)

    def _apply(self, fn, *args, **kwargs):  # keep the unregistered working network on the same device
        super()._apply(fn, *args, **kwargs)
        self.net._apply(fn, *args, **kwargs)
        return self

    def _segment(self, frames: np.ndarray, masks, cfg: dict[str, Any], *, progress: bool) -> np.ndarray:
        """frames uint8 (T, H, W, 3) RGB; masks: the first-frame label map (H, W) (or ``{0: map}``)
        -> float32 (K+1, T, H, W): channel 0 background (just below 0.5 everywhere), then each object's
        probability in sorted label order (frame 0: the given mask)."""
        given = given_masks(frames, masks)
        if list(given) != [0]:
            raise ValueError("e-OSVOS fine-tunes on frame 0: objects must all be given on frame 0 "
                             f"(masks were given on frames {list(given)})")
        frames, first = check_video(frames, given[0])
        first = np.where(first == 255, 0, first)
        schedule = Schedule(num_epochs=cfg["num_epochs"], batch_size=cfg["batch_size"], augment=cfg["augment"],
                            seed=cfg["seed"], ona_step=cfg["ona_step"], ona_epochs=cfg["ona_epochs"],
                            min_prop=cfg["min_prop"])
        init, lrs = self.meta_parameters()
        dtype = torch.float64 if cfg["dtype"] == "float64" else torch.float32
        t0 = time.perf_counter()
        ids, runs = segment_frames(self.net, init, lrs, frames, first, schedule, dtype)
        total = time.perf_counter() - t0
        T, H, W = frames.shape[:3]
        out = np.empty((len(ids) + 1, T, H, W), dtype=np.float32)
        out[0] = BACKGROUND
        for k, run in enumerate(runs):
            out[k + 1] = run.probs.numpy()
            out[k + 1, 0] = (first == ids[k])
        finetune = sum(r.finetune_s for r in runs)
        self.last_timing = {"finetune_s": finetune, "finetune_s_per_object": finetune / max(len(runs), 1),
                            "segment_s": sum(r.segment_s for r in runs), "total_s": total,
                            "objects": len(runs)}
        return out


def load(checkpoint: str | Path | Mapping[str, Any] | None = None, device: Any = None, **config: Any) -> EOSVOS:
    """Build e-OSVOS and load a released checkpoint (``best_val_meta_iter.model`` layout) strictly.

    ``checkpoint=None`` leaves zero learning rates and an untrained init (use ``models.golden_init``).
    """
    model = EOSVOS(**config)  # semantics / min_size / max_size build the network; the rest are segment options
    if checkpoint is not None:
        init, lrs = read_checkpoint(checkpoint, model.net)
        state = {checkpoint_key(LR_PREFIX, k): v for k, v in lrs.items()}
        state.update({checkpoint_key(INIT_PREFIX, k): v for k, v in init.items()})
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise CheckpointError(f"{checkpoint}: {exc}") from exc
    if device is not None and torch.device(device).type != "cpu":
        raise ValueError(f"e-OSVOS runs on the CPU here (its detection ops are CPU ports); got device {device!r}")
    return model.eval()
