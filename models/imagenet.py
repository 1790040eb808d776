"""ImageNet normalisation: the mean/std every backbone of the toolkit was trained with, and the
uint8 -> normalised float transform of STCN and XMem (``ToTensor`` + ``Normalize``)."""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "normalise"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalise(frames: np.ndarray | torch.Tensor, device=None, dtype=torch.float32) -> torch.Tensor:
    """uint8 RGB (T, H, W, 3) -> normalised float (T, 3, H, W), like ToTensor + Normalize."""
    if isinstance(frames, np.ndarray):  # torch wants a writable, contiguous buffer
        frames = frames if frames.flags.writeable and frames.flags.c_contiguous else np.array(frames)
    x = torch.as_tensor(frames)
    if x.dtype != torch.uint8 or x.dim() != 4 or x.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 (T, H, W, 3), got {tuple(x.shape)} {x.dtype}")
    x = x.to(device).permute(0, 3, 1, 2).to(torch.float32).div_(255)
    mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
    return x.sub_(mean).div_(std).to(dtype)
