"""The label-propagation VOS model: an encoder plus CRW's k-NN propagation behind ``segment``."""
from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any, ClassVar, Mapping, Optional

import numpy as np
import torch
from torch import nn

from models.base import OwnTTT, VOSModel
from models.labelprop import ttt as labelprop_ttt
from models.inputs import check_video, given_masks, object_first_frames
from models.labelprop.encoders import (PixelEncoder, ResNet18Encoder, encoder_state_dict,
                                       load_resnet18_weights)
from models.labelprop.propagation import (FrameFeatures, label_values_of, labels_to_grid,
                                          propagate_soft, upsample_soft)

__all__ = ["LabelPropagation", "LabelPropagationOptions", "load", "ENCODERS"]

ENCODERS = ("resnet18", "pixels")


@dataclasses.dataclass(frozen=True)
class LabelPropagationOptions:
    """The reference CLI's DAVIS values: ``k`` nearest neighbours, spatial ``radius`` in feature cells
    (None or ``float("inf")``: unrestricted), ``context`` frames, softmax ``temperature``."""

    k: int = 10
    radius: Optional[float] = 12
    context: int = 20
    temperature: float = 0.07


class LabelPropagation(nn.Module, VOSModel, OwnTTT):
    """Encoder + k-NN label propagation; ``segment`` follows the shared model interface (:mod:`models.base`).

    The propagation options (k, radius, context, temperature) may be overridden per call; an override of
    None keeps the model's value.  Test-time training is CRW's own protocol (:mod:`models.labelprop.ttt`).
    """

    family: ClassVar[str] = "labelprop"
    Options: ClassVar[type] = LabelPropagationOptions
    ttt_module = labelprop_ttt

    def __init__(self, encoder: nn.Module, *, encoder_name: str, **options: Any) -> None:
        super().__init__()
        self.encoder = encoder
        self.encoder_name = encoder_name
        self._init_options(options)
        # set by test_time_adapt: encoder weights per block of target frames
        self.ttt_schedule: list[tuple[int, dict[str, torch.Tensor]]] | None = None

    @property
    def device(self) -> torch.device:
        for tensor in list(self.encoder.parameters()) + list(self.encoder.buffers()):
            return tensor.device
        return torch.device("cpu")

    def encode(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 (T, H, W, 3) RGB -> features (T, C, ceil(H/8), ceil(W/8)) on the model's device."""
        with torch.no_grad():
            return self.encoder.encode(frames)

    def features_for(self, frames: np.ndarray) -> FrameFeatures:
        if self.ttt_schedule is None:
            return FrameFeatures(self.encode(frames))
        return labelprop_ttt.ScheduledFeatures(self, frames)

    def options(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The options in force with ``overrides`` on top (an override of None keeps the model's value)."""
        return super().options({k: v for k, v in (overrides or {}).items() if v is not None})

    def _segment(self, frames: np.ndarray, masks, opts: dict[str, Any], *, progress: bool) -> np.ndarray:
        """Frame 0 is the first-frame annotation moved to the feature grid and back (as the reference
        saves it)."""
        if isinstance(masks, dict) or hasattr(masks, "items"):
            given = given_masks(frames, masks)
            if list(given) != [0]:
                return self._segment_given(np.asarray(frames), given, opts, progress)
            masks = given[0]
        frames, first_mask = check_video(frames, masks)
        source = self.features_for(frames)
        values = label_values_of(first_mask)
        first_soft = torch.from_numpy(labels_to_grid(first_mask, values, source.grid))
        soft = propagate_soft(source, first_soft, progress=progress, **opts)["soft"].cpu().numpy()
        out = np.empty((len(values), *frames.shape[:3]), dtype=np.float32)
        for t in range(len(frames)):
            out[:, t] = np.moveaxis(upsample_soft(soft[t], frames.shape[1:3]), -1, 0)
        return out

    def _segment_given(self, frames: np.ndarray, given: dict, opts: dict, progress: bool) -> np.ndarray:
        """Objects given on later frames (our extension; the CRW reference only reads frame 0): propagation
        starts at the first given frame t0, which is the long-term slot; on a later given frame the given
        objects replace the propagated labels under their pixels (``propagate_soft(later=...)``)."""
        t0 = min(given)
        labels = sorted(object_first_frames(given))
        values = np.asarray([0] + labels, dtype=np.int64)
        sub = frames[t0:]
        source = self.features_for(sub)
        first_soft = torch.from_numpy(labels_to_grid(given[t0], values, source.grid))
        later = {}
        for t, m in given.items():
            if t == t0:
                continue
            grid = labels_to_grid(m, values, source.grid)  # background channel = 1 - coverage
            objects = grid.copy()
            objects[..., 0] = 0
            later[t - t0] = (torch.from_numpy(1 - grid[..., 0]), torch.from_numpy(objects))
        soft = propagate_soft(source, first_soft, progress=progress, later=later, **opts)["soft"].cpu().numpy()
        out = np.zeros((len(values), *frames.shape[:3]), dtype=np.float32)
        out[0, :t0] = 1.0
        for t in range(len(sub)):
            out[:, t0 + t] = np.moveaxis(upsample_soft(soft[t], frames.shape[1:3]), -1, 0)
        first = object_first_frames(given)
        for c, label in enumerate(labels, 1):  # exactly 0 before an object's first frame
            out[c, :first[label]] = 0
        return out

    def copy(self) -> "LabelPropagation":
        return copy.deepcopy(self)


def load(checkpoint: str | Path | Mapping[str, Any] | None = None, device: Any = None, *,
         encoder: str = "resnet18", padding_mode: str | None = None, k: int = 10,
         radius: float | None = 12, context: int = 20, temperature: float = 0.07,
         channels: int = 128, colour_sigma: float = 10.0, position_sigma: float = 16.0,
         seed: int = 0) -> LabelPropagation:
    """Build a label-propagation model (``models.load_model("labelprop", ...)``).

    encoder ``resnet18``: CRW's stride-8 ResNet-18; ``checkpoint`` is a CRW training checkpoint
    (reflection padding, as CRW's ``scratch`` model) or a torchvision ResNet-18 file (zero
    padding); ``padding_mode`` overrides that choice; no checkpoint gives untrained weights.
    encoder ``pixels``: weight-free colour+position features (``channels``, ``colour_sigma``,
    ``position_sigma``, ``seed``); takes no checkpoint.
    """
    if encoder == "pixels":
        if checkpoint is not None:
            raise ValueError("the 'pixels' encoder has no weights; pass checkpoint=None "
                             "(or use encoder='resnet18')")
        net: nn.Module = PixelEncoder(channels=channels, colour_sigma=colour_sigma,
                                      position_sigma=position_sigma, seed=seed)
    elif encoder == "resnet18":
        state, kind = (None, "crw") if checkpoint is None else encoder_state_dict(checkpoint)
        mode = padding_mode or ("reflect" if kind == "crw" else "zeros")
        net = ResNet18Encoder(padding_mode=mode)
        if state is not None:
            source = str(checkpoint) if isinstance(checkpoint, (str, Path)) else "<state dict>"
            load_resnet18_weights(net, state, source)
    else:
        raise ValueError(f"unknown labelprop encoder {encoder!r}; choose one of {', '.join(ENCODERS)}")
    model = LabelPropagation(net, encoder_name=encoder, k=k, radius=radius, context=context,
                             temperature=temperature)
    if device is not None:
        model = model.to(device)
    return model.eval()
