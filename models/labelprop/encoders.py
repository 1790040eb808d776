"""Feature encoders for label propagation: CRW's ResNet-18 at output stride 8, and a weight-free one.

Both map uint8 RGB frames (T, H, W, 3) to feature maps (T, C, ceil(H/8), ceil(W/8)); the
propagation L2-normalises them, so only directions matter.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Mapping

import cv2
import numpy as np
import torch
from torch import nn

from models.inputs import check_frames
from models.checkpoint import CheckpointError, load_strict, read_state_dict
from models.resnet import resnet18

__all__ = ["ResNet18Encoder", "PixelEncoder", "encoder_state_dict", "load_resnet18_weights", "STRIDE"]

STRIDE = 8
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _grid(height: int, width: int) -> tuple[int, int]:
    return -(-height // STRIDE), -(-width // STRIDE)


class ResNet18Encoder(nn.Module):
    """torchvision ResNet-18 with layer3's stride set to 1, cut after layer3 (256 channels, stride 8).

    ``padding_mode='reflect'`` is CRW's ``scratch`` model (the released checkpoint);
    ``'zeros'`` is ``scratch_zeropad`` / ImageNet weights.
    """

    channels = 256

    def __init__(self, padding_mode: str = "reflect", batch_size: int = 5) -> None:
        super().__init__()
        self.padding_mode = padding_mode
        self.batch_size = batch_size
        self.trunk = resnet18(strides=(1, 2, 1, 1), num_layers=3, padding_mode=padding_mode)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def preprocess(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        """uint8 (T, H, W, 3) RGB -> ImageNet-normalised float (T, 3, H, W) on the encoder's device."""
        x = torch.as_tensor(np.asarray(frames)).to(self.mean.device)
        x = x.permute(0, 3, 1, 2).float() / 255.0
        return (x - self.mean) / self.std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised images (B, 3, H, W) -> layer3 features (B, 256, ceil(H/8), ceil(W/8))."""
        return self.trunk(x)

    def encode(self, frames: np.ndarray) -> torch.Tensor:
        """Frames in mini-batches (BatchNorm is in eval mode, so batching changes nothing)."""
        out = []
        with torch.no_grad():
            for start in range(0, len(frames), self.batch_size):
                out.append(self(self.preprocess(frames[start:start + self.batch_size])))
        return torch.cat(out)


class PixelEncoder(nn.Module):
    """Weight-free features: random Fourier features of (Lab colour, grid position) per stride-8 cell.

    Why: with no trained weights available, the method should still run meaningfully.  For
    ``x = (L/σc, a/σc, b/σc, row/σp, col/σp)`` the features ``[cos(Wx), sin(Wx)] / sqrt(C/2)`` have
    unit norm and their dot product is ``mean_i cos(w_i·(x - y))``, an approximation of the
    Gaussian kernel ``exp(-|x - y|² / 2)``: cosine affinity then means "similar colour nearby".
    Colours are area-averaged onto the same grid the labels use; ``W`` is drawn from ``seed``.
    """

    def __init__(self, channels: int = 128, colour_sigma: float = 10.0, position_sigma: float = 16.0,
                 seed: int = 0) -> None:
        super().__init__()
        if channels < 2 or channels % 2:
            raise ValueError(f"pixels encoder needs an even number of channels >= 2, got {channels}")
        self.channels = channels
        self.colour_sigma = colour_sigma
        self.position_sigma = position_sigma
        gen = torch.Generator().manual_seed(seed)
        self.register_buffer("projection", torch.randn(channels // 2, 5, generator=gen), persistent=False)

    def cell_descriptors(self, frames: np.ndarray) -> torch.Tensor:
        """(T, H, W, 3) uint8 -> (T, 5, h, w): scaled Lab colour and grid position per cell."""
        frames = check_frames(frames)
        h, w = _grid(*frames.shape[1:3])
        out = np.empty((len(frames), 5, h, w), dtype=np.float32)
        rows, cols = np.mgrid[0:h, 0:w].astype(np.float32)
        for t, frame in enumerate(frames):
            lab = cv2.cvtColor(frame.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
            cells = cv2.resize(lab, (w, h), interpolation=cv2.INTER_AREA)
            out[t, :3] = np.moveaxis(cells, -1, 0) / self.colour_sigma
            out[t, 3] = rows / self.position_sigma
            out[t, 4] = cols / self.position_sigma
        return torch.from_numpy(out)

    def encode(self, frames: np.ndarray) -> torch.Tensor:
        x = self.cell_descriptors(frames).to(self.projection.device)
        phase = torch.einsum("dc,tchw->tdhw", self.projection, x)
        return torch.cat([phase.cos(), phase.sin()], 1) / (self.channels / 2) ** 0.5


def _torch_load_allowing_namespace(path: Path) -> dict[str, torch.Tensor]:
    """CRW checkpoints pickle their argparse ``args``; allow exactly that class, nothing else."""
    with torch.serialization.safe_globals([argparse.Namespace]):
        return read_state_dict(path)


def encoder_state_dict(checkpoint: str | Path | Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], str]:
    """Turn a CRW training checkpoint or a torchvision ResNet-18 file into trunk weights.

    Returns ``(state, kind)`` with ``kind`` ``"crw"`` (keys under ``encoder.model.``; the
    ``selfsim_fc`` head is dropped, and the old ``convN.1.weight`` names are renamed as CRW's
    test.py does) or ``"torchvision"``.  ``layer4`` and ``fc`` are dropped: the propagation uses
    layer3.
    """
    if isinstance(checkpoint, (str, Path)):
        state = _torch_load_allowing_namespace(Path(checkpoint))
    else:
        state = read_state_dict(checkpoint)
    prefix = "encoder.model."
    if any(name.startswith(prefix) for name in state):
        kind = "crw"
        state = {name[len(prefix):]: v for name, v in state.items() if name.startswith(prefix)}
        renamed = {}
        for name, value in state.items():
            if name.endswith(("conv1.1.weight", "conv2.1.weight")):
                name = name[: -len(".1.weight")] + ".weight"
            renamed[name] = value
        state = renamed
    else:
        kind = "torchvision"
    state = {name: v for name, v in state.items()
             if not name.startswith(("layer4.", "fc.")) and not name.endswith("num_batches_tracked")}
    if not state:
        raise CheckpointError(f"{checkpoint if isinstance(checkpoint, (str, Path)) else '<state dict>'}: "
                              "no ResNet-18 weights found")
    return state, kind


def load_resnet18_weights(encoder: ResNet18Encoder, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Strict load of trunk weights (``num_batches_tracked`` counters are optional)."""
    merged = {name: value for name, value in encoder.trunk.state_dict().items()
              if name.endswith("num_batches_tracked")}
    merged.update(state)
    load_strict(encoder.trunk, merged, source)
