"""ResNet trunks with torchvision-compatible state-dict names.

torchvision has no CPU wheel here, and the official STCN / XMem / CRW checkpoints store their
trunks under torchvision's names (``conv1``, ``bn1``, ``layer1.0.conv1``, ``downsample.0`` ...), so
we write the trunk once and let each model pick its variant:

* ``bias=True``  -- STCN's value encoder (its ``mod_resnet`` puts a bias on every conv);
* ``in_channels`` -- 5 for value encoders (RGB + object mask + "others" mask);
* ``strides``    -- per-stage strides; CRW sets layer3/layer4 to 1 for output stride 8;
* ``padding_mode`` -- CRW's ``scratch`` encoder uses reflection padding on every padded conv;
* ``num_layers`` -- how many stages to build (trunks used up to ``layer3`` omit ``layer4``).

The trunk only builds modules; models decide which stages they call and in what order.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

__all__ = ["BasicBlock", "Bottleneck", "ResNetTrunk", "Res2Trunk", "resnet18", "resnet50"]


def _conv(in_ch: int, out_ch: int, kernel: int, stride: int = 1, *, bias: bool = False,
          padding_mode: str = "zeros") -> nn.Conv2d:
    pad = kernel // 2
    return nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=pad, bias=bias,
                     padding_mode=padding_mode if pad else "zeros")


class BasicBlock(nn.Module):
    """Two 3x3 convs with a residual (ResNet-18/34)."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 *, bias: bool = False, padding_mode: str = "zeros") -> None:
        super().__init__()
        self.conv1 = _conv(inplanes, planes, 3, stride, bias=bias, padding_mode=padding_mode)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv(planes, planes, 3, bias=bias, padding_mode=padding_mode)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 (strided, torchvision v1.5) -> 1x1 x4 with a residual (ResNet-50)."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 *, bias: bool = False, padding_mode: str = "zeros") -> None:
        super().__init__()
        self.conv1 = _conv(inplanes, planes, 1, bias=bias)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv(planes, planes, 3, stride, bias=bias, padding_mode=padding_mode)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv(planes, planes * 4, 1, bias=bias)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNetTrunk(nn.Module):
    """Stem (conv1/bn1/relu/maxpool) plus ``layer1..layerN`` under torchvision's names.

    ``forward`` runs the whole trunk and returns the last stage; models that need intermediate
    features call the submodules themselves.
    """

    def __init__(self, block: type[BasicBlock] | type[Bottleneck], layers: Sequence[int], *,
                 in_channels: int = 3, bias: bool = False, strides: Sequence[int] = (1, 2, 2, 2),
                 num_layers: int = 4, padding_mode: str = "zeros") -> None:
        super().__init__()
        if not 1 <= num_layers <= len(layers):
            raise ValueError(f"num_layers must be in 1..{len(layers)}, got {num_layers}")
        self.inplanes = 64
        self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=bias,
                               padding_mode=padding_mode)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.num_layers = num_layers
        for i in range(num_layers):
            stage = self._make_layer(block, 64 * 2 ** i, layers[i], strides[i], bias, padding_mode)
            setattr(self, f"layer{i + 1}", stage)

    def _make_layer(self, block, planes: int, blocks: int, stride: int, bias: bool,
                    padding_mode: str) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride=stride, bias=bias),
                nn.BatchNorm2d(planes * block.expansion),
            )
        stage = [block(self.inplanes, planes, stride, downsample, bias=bias, padding_mode=padding_mode)]
        self.inplanes = planes * block.expansion
        stage += [block(self.inplanes, planes, bias=bias, padding_mode=padding_mode)
                  for _ in range(1, blocks)]
        return nn.Sequential(*stage)

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for i in range(self.num_layers):
            x = getattr(self, f"layer{i + 1}")(x)
        return x


def resnet18(**kwargs) -> ResNetTrunk:
    """ResNet-18 trunk (BasicBlock, [2, 2, 2, 2]); keyword options as :class:`ResNetTrunk`."""
    return ResNetTrunk(BasicBlock, [2, 2, 2, 2], **kwargs)


def resnet50(**kwargs) -> ResNetTrunk:
    """ResNet-50 trunk (Bottleneck, [3, 4, 6, 3]); keyword options as :class:`ResNetTrunk`."""
    return ResNetTrunk(Bottleneck, [3, 4, 6, 3], **kwargs)


class Res2Trunk(nn.Module):
    """A trunk up to layer3 under the names of the STM-family checkpoints (XMem's key encoder, Cutie's pixel
    encoder): the stem, torchvision's ``layer1`` as ``res2``, ``layer2``, ``layer3``; ``forward`` returns the
    stride-16, 8 and 4 features."""

    def __init__(self, net: ResNetTrunk) -> None:
        super().__init__()
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.res2, self.layer2, self.layer3 = net.layer1, net.layer2, net.layer3

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        f4 = self.res2(x)
        f8 = self.layer2(f4)
        return self.layer3(f8), f8, f4
