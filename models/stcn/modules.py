"""STCN building blocks under the official state-dict names.

The released checkpoints are plain state dicts of the official network, so every submodule here
carries exactly the official attribute name (``key_encoder.res2``, ``value_encoder.fuser.attention
.ChannelGate.mlp.1`` ...).  The trunks come from :mod:`models.resnet`; only the naming and the
STCN-specific heads live here.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from models.cbam import CBAM
from models.resnet import Bottleneck, BasicBlock, ResNetTrunk

__all__ = ["conv_cat", "ResBlock", "CBAM", "FeatureFusionBlock", "KeyEncoder", "ValueEncoder", "KeyProjection",
           "UpsampleBlock", "Decoder"]


def _conv3(in_ch: int, out_ch: int) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1)


def _add_grouped(per_item: torch.Tensor, shared: torch.Tensor) -> torch.Tensor:
    """per_item (B*G, C, H, W) + shared (B, C, H, W) broadcast over the G items of each batch entry."""
    b = shared.shape[0]
    if b == 1:
        return per_item + shared
    out = per_item.view(b, -1, *per_item.shape[1:]) + shared.unsqueeze(1)
    return out.view(per_item.shape)


def conv_cat(conv: nn.Conv2d, parts: list[tuple[torch.Tensor, bool]]) -> torch.Tensor:
    """``conv(torch.cat(parts, 1))`` where some parts are shared by the G objects of a batch entry.

    Each part is ``(tensor, shared)``; shared parts have batch B, the others B*G.  The shared
    channels are convolved once per batch entry instead of once per object -- the same sum, in
    another order -- which is where STCN spends most of its per-object compute.
    """
    w = conv.weight
    start, per_item, shared = 0, [], []
    for x, is_shared in parts:
        # contiguous: a strided weight slice would send the convolution to a slow fallback kernel
        (shared if is_shared else per_item).append((x, w[:, start:start + x.shape[1]].contiguous()))
        start += x.shape[1]
    if start != w.shape[1]:
        raise ValueError(f"conv expects {w.shape[1]} input channels, got {start}")

    def run(items, bias):
        x = items[0][0] if len(items) == 1 else torch.cat([t for t, _ in items], 1)
        ws = items[0][1] if len(items) == 1 else torch.cat([v for _, v in items], 1)
        return F.conv2d(x, ws, bias, conv.stride, conv.padding)

    if not shared:
        return run(per_item, conv.bias)
    return _add_grouped(run(per_item, None), run(shared, conv.bias))


class ResBlock(nn.Module):
    """Pre-activation residual block without BatchNorm (fuser and decoder).

    ``downsample`` (a 3x3 conv) is registered first, as in the official module, so the state-dict
    order matches the released files.
    """

    def __init__(self, in_ch: int, out_ch: int | None = None) -> None:
        super().__init__()
        out_ch = in_ch if out_ch is None else out_ch
        self.downsample = None if in_ch == out_ch else _conv3(in_ch, out_ch)
        self.conv1 = _conv3(in_ch, out_ch)
        self.conv2 = _conv3(out_ch, out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.conv2(F.relu(self.conv1(F.relu(x))))
        return (x if self.downsample is None else self.downsample(x)) + r

    def forward_cat(self, per_item: torch.Tensor, shared: torch.Tensor) -> torch.Tensor:
        """``forward(cat([per_item, shared repeated per object], 1))`` with the shared part computed once."""
        r = conv_cat(self.conv1, [(F.relu(per_item), False), (F.relu(shared), True)])
        r = self.conv2(F.relu(r))
        return conv_cat(self.downsample, [(per_item, False), (shared, True)]) + r


class FeatureFusionBlock(nn.Module):
    """Fuses the value trunk's stride-16 output with the key encoder's f16 (in that order)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.block1 = ResBlock(in_ch, out_ch)
        self.attention = CBAM(out_ch)
        self.block2 = ResBlock(out_ch, out_ch)

    def forward(self, x: torch.Tensor, f16: torch.Tensor) -> torch.Tensor:
        """x (B*G, 256, h, w) per object, f16 (B, 1024, h, w) shared by the G objects of an entry."""
        x = self.block1.forward_cat(x, f16)
        return self.block2(x + self.attention(x))


class KeyEncoder(ResNetTrunk):
    """ResNet-50 up to layer3; torchvision's ``layer1`` is called ``res2`` in STCN's checkpoints."""

    def __init__(self) -> None:
        super().__init__(Bottleneck, [3, 4, 6, 3], num_layers=3)
        # Rename layer1 -> res2 while keeping the registration order (conv1, bn1, ..., res2, layer2, layer3).
        self._modules = OrderedDict(("res2" if k == "layer1" else k, v) for k, v in self._modules.items())

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        f4 = self.res2(self.stem(x))
        f8 = self.layer2(f4)
        return self.layer3(f8), f8, f4


class ValueEncoder(ResNetTrunk):
    """STCN's ResNet-18 (biases on every conv, 5 input channels) up to layer3, plus the fuser.

    Input channels: normalised RGB, the object's mask, the sum of the other objects' masks.
    """

    def __init__(self, in_channels: int = 5) -> None:
        super().__init__(BasicBlock, [2, 2, 2, 2], in_channels=in_channels, bias=True, num_layers=3)
        self.fuser = FeatureFusionBlock(1024 + 256, 512)

    def forward(self, image: torch.Tensor, key_f16: torch.Tensor, mask: torch.Tensor,
                other: torch.Tensor) -> torch.Tensor:
        """image (B, 3, H, W) and key_f16 (B, 1024, h, w) shared by G objects; mask/other (B*G, 1, H, W)."""
        x = conv_cat(self.conv1, [(image, True), (mask, False), (other, False)])
        x = self.maxpool(self.relu(self.bn1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fuser(x, key_f16)


class KeyProjection(nn.Module):
    def __init__(self, in_ch: int = 1024, key_dim: int = 64) -> None:
        super().__init__()
        self.key_proj = _conv3(in_ch, key_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.key_proj(x)


class UpsampleBlock(nn.Module):
    def __init__(self, skip_ch: int, up_ch: int, out_ch: int) -> None:
        super().__init__()
        self.skip_conv = _conv3(skip_ch, up_ch)
        self.out_conv = ResBlock(up_ch, out_ch)

    def forward(self, skip: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
        """skip (B, C, ...) shared by the G objects of ``up`` (B*G, C, ...): convolved once."""
        up = F.interpolate(up, scale_factor=2, mode="bilinear", align_corners=False)
        return self.out_conv(_add_grouped(up, self.skip_conv(skip)))


class Decoder(nn.Module):
    """[readout, f16_thin] at stride 16 -> one logit map per object at full (padded) resolution.

    Query-frame features are shared by all objects, so their convolutions run once per frame.
    """

    def __init__(self) -> None:
        super().__init__()
        self.compress = ResBlock(1024, 512)
        self.up_16_8 = UpsampleBlock(512, 512, 256)
        self.up_8_4 = UpsampleBlock(256, 256, 256)
        self.pred = _conv3(256, 1)

    def forward(self, readout: torch.Tensor, f16_thin: torch.Tensor, f8: torch.Tensor,
                f4: torch.Tensor) -> torch.Tensor:
        """readout (B*G, 512, h, w) per object; f16_thin, f8, f4 (batch B) shared by the G objects."""
        x = self.up_8_4(f4, self.up_16_8(f8, self.compress.forward_cat(readout, f16_thin)))
        x = self.pred(F.relu(x))
        return F.interpolate(x, scale_factor=4, mode="bilinear", align_corners=False)
