"""PyTorch port of Magenta's arbitrary-image-stylization network (Ghiasi et al., BMVC 2017).

Two parts, exactly as in the TF graph:

* style predictor: Inception-v3 trunk to Mixed_6e (ReLU6, batch norm without gamma, eps 1e-3,
  average pools that exclude padding), spatial mean, a 768 -> 100 bottleneck (the style
  embedding) and 13 affine heads giving one (gamma, beta) pair per conditional-norm layer;
* transformer: reflect-padded convs, a batch-normed encoder, 5 residual blocks and a decoder
  with conditional instance norm, nearest upsampling and a sigmoid output.

The state dict has exactly the 359 tensors of the TF checkpoint (no BN scale, no conv biases), so
a converted checkpoint loads strictly.  Frames are fed at full size; the output is
4*ceil(H/4) x 4*ceil(W/4) and callers crop it (:func:`crop_output`).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .architecture import (
    BN_EPS, CONTRACT, EMBEDDING_DIM, EXPAND, IN_EPS, MIXED, RESIDUAL, STEM, STYLE_LAYERS, TRUNK_CHANNELS,
    Conv, Pool,
)

__all__ = ["StyleNet", "StyleParams", "style_layer_key", "output_size", "crop_output", "MIN_STYLE_SIDE"]

#: smallest style-image side for which Mixed_6e still has one pixel.
MIN_STYLE_SIDE = 43
#: smallest content side the reflect pads allow.
MIN_CONTENT_SIDE = 5

#: (gamma, beta) per conditional-norm layer, in :data:`STYLE_LAYERS` order; each (N or 1, C).
StyleParams = tuple[tuple[Tensor, Tensor], ...]


def style_layer_key(tf_layer: str) -> str:
    """Module key of a style head: "transformer/residual/residual3/conv2" -> "residual3_conv2"."""
    parts = tf_layer.split("/")[1:]           # drop "transformer"
    if parts[0] == "residual":
        return f"{parts[1]}_{parts[2]}"
    return f"expand_{parts[1]}"               # "expand/conv1/conv"


def output_size(height: int, width: int) -> tuple[int, int]:
    """Network output size for a content frame: each stride-2 reflect-padded conv gives ceil(n/2)."""
    return 4 * -(-height // 4), 4 * -(-width // 4)


def crop_output(out: Tensor, height: int, width: int) -> Tensor:
    """Keep the top-left ``height x width`` region, as the official script does (NCHW)."""
    return out[..., :height, :width]


class FrozenBatchNorm(nn.Module):
    """Inference batch norm with no scale (slim ``scale=False``): (x - mean)/sqrt(var + eps) + bias."""

    def __init__(self, channels: int, eps: float = BN_EPS) -> None:
        super().__init__()
        self.eps = eps
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x: Tensor) -> Tensor:
        return F.batch_norm(x, self.running_mean, self.running_var, None, self.bias, False, 0.0, self.eps)


class ConvBN(nn.Module):
    """Bias-free conv, frozen BN, activation.  ``pad`` is zero padding ("SAME"), ``reflect`` reflect padding."""

    def __init__(self, spec: Conv, *, reflect: bool = False, act: str = "relu6") -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(spec.cout, spec.cin, spec.kh, spec.kw))
        self.bn = FrozenBatchNorm(spec.cout)
        self.stride, self.act, self.reflect = spec.stride, act, reflect
        self.padding = (spec.kh // 2, spec.kw // 2) if (spec.same and not reflect) else (0, 0)
        self.reflect_pad = spec.kh // 2

    def forward(self, x: Tensor) -> Tensor:
        if self.reflect:
            p = self.reflect_pad
            x = F.pad(x, (p, p, p, p), mode="reflect")
        x = self.bn(F.conv2d(x, self.weight, None, self.stride, self.padding))
        return F.relu6(x, inplace=True) if self.act == "relu6" else F.relu(x, inplace=True)


class CondConv(nn.Module):
    """Reflect pad, bias-free conv; the conditional instance norm is applied by the caller."""

    def __init__(self, spec: Conv) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(spec.cout, spec.cin, spec.kh, spec.kw))
        self.pad = spec.kh // 2

    def forward(self, x: Tensor) -> Tensor:
        p = self.pad
        return F.conv2d(F.pad(x, (p, p, p, p), mode="reflect"), self.weight)


def conditional_instance_norm(x: Tensor, gamma: Tensor, beta: Tensor, eps: float = IN_EPS) -> Tensor:
    """Per-image, per-channel normalisation (biased variance) then the style's gamma * x + beta.

    Computed like TF's ``nn.moments`` + ``batch_normalization``: the mean, then the mean of the
    squared difference (two passes: accurate, and on CPU much faster than ``var_mean`` on
    channels-last tensors), then one fused ``x * scale + shift``.
    """
    mean = x.mean(dim=(2, 3), keepdim=True)
    var = (x - mean).square_().mean(dim=(2, 3), keepdim=True)
    scale = gamma[:, :, None, None] * torch.rsqrt(var + eps)
    return torch.addcmul(beta[:, :, None, None] - mean * scale, x, scale)


class StyleHead(nn.Module):
    """The two 1x1 convs on the embedding: ``beta`` (TF ``Conv``) and ``gamma`` (TF ``Conv_1``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.beta = nn.Linear(EMBEDDING_DIM, channels)
        self.gamma = nn.Linear(EMBEDDING_DIM, channels)


def _mixed_module(branches: Sequence[Sequence[Conv | Pool]]) -> nn.ModuleDict:
    return nn.ModuleDict({
        f"Branch_{b}": nn.ModuleDict({op.name: ConvBN(op) for op in ops if isinstance(op, Conv)})
        for b, ops in enumerate(branches)
    })


def _run(ops: Sequence[Conv | Pool], modules: nn.ModuleDict, x: Tensor) -> Tensor:
    for op in ops:
        if isinstance(op, Pool):
            x = F.max_pool2d(x, 3, 2) if op.kind == "max" else F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
        else:
            x = modules[op.name](x)
    return x


class StyleNet(nn.Module):
    """Style predictor + transformer.  Inputs are float RGB in [0, 1], NCHW."""

    def __init__(self, seed: int | None = 0) -> None:
        super().__init__()
        self.InceptionV3 = nn.ModuleDict({op.name: ConvBN(op) for op in STEM if isinstance(op, Conv)})
        for block, branches in MIXED.items():
            self.InceptionV3[block] = _mixed_module(branches)
        self.bottleneck = nn.Linear(TRUNK_CHANNELS, EMBEDDING_DIM)
        self.style_params = nn.ModuleDict({style_layer_key(name): StyleHead(c) for name, c in STYLE_LAYERS})
        self.transformer = nn.Module()
        self.transformer.contract = nn.ModuleDict({c.name: ConvBN(c, reflect=True, act="relu") for c in CONTRACT})
        self.transformer.residual = nn.ModuleDict({
            r: nn.ModuleDict({f"conv{k}": CondConv(Conv(f"conv{k}", 3, 3, 128, 128)) for k in (1, 2)})
            for r in RESIDUAL
        })
        self.transformer.expand = nn.ModuleDict({c.name: nn.ModuleDict({"conv": CondConv(c)}) for c, _ in EXPAND})
        if seed is not None:
            self.random_init_(seed)
        self.eval()

    @torch.no_grad()
    def random_init_(self, seed: int) -> "StyleNet":
        """Deterministic random weights that keep activations in a sane range (tests, demos only)."""
        gen = torch.Generator().manual_seed(seed)
        for name, tensor in self.state_dict(keep_vars=True).items():
            t = tensor.data
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
            elif name.endswith(("running_mean", "bn.bias")):
                t.copy_(0.1 * torch.randn(t.shape, generator=gen))
            elif name.startswith("style_params") and name.endswith("bias"):
                t.copy_((1.0 if ".gamma." in name else 0.0) + 0.1 * torch.randn(t.shape, generator=gen))
            elif name.startswith("style_params"):
                t.copy_(0.05 * torch.randn(t.shape, generator=gen))
            else:   # conv / bottleneck weights: He-style scaling by fan-in
                fan_in = t[0].numel()
                t.copy_(torch.randn(t.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
        return self

    # --- style predictor ------------------------------------------------------------------------
    def trunk(self, style: Tensor) -> Tensor:
        """Inception-v3 features at Mixed_6e (N, 768, h, w)."""
        if min(style.shape[-2:]) < MIN_STYLE_SIDE:
            raise ValueError(f"style image {tuple(style.shape[-2:])} is too small: each side must be >= {MIN_STYLE_SIDE} px")
        x = _run(STEM, self.InceptionV3, style)
        for block, branches in MIXED.items():
            mods = self.InceptionV3[block]
            x = torch.cat([_run(ops, mods[f"Branch_{b}"], x) for b, ops in enumerate(branches)], dim=1)
        return x

    def embed(self, style: Tensor) -> Tensor:
        """100-d style embedding: spatial mean of the trunk, then the bottleneck (any style size)."""
        return self.bottleneck(self.trunk(style).mean(dim=(2, 3)))

    def style_norm_params(self, embedding: Tensor) -> StyleParams:
        """(gamma, beta) for the 13 conditional-norm layers; gamma is used as is (not 1 + gamma)."""
        heads = [self.style_params[style_layer_key(name)] for name, _ in STYLE_LAYERS]
        return tuple((h.gamma(embedding), h.beta(embedding)) for h in heads)

    # --- transformer ------------------------------------------------------------------------------
    def stylize(self, content: Tensor, params: StyleParams) -> Tensor:
        """Stylized image in (0, 1), size 4*ceil(H/4) x 4*ceil(W/4) (crop with :func:`crop_output`)."""
        if min(content.shape[-2:]) < MIN_CONTENT_SIDE:
            raise ValueError(f"content frame {tuple(content.shape[-2:])} is too small: each side must be >= {MIN_CONTENT_SIDE} px")
        t = self.transformer
        x = content
        for name in t.contract:
            x = t.contract[name](x)
        it = iter(params)
        for r in RESIDUAL:
            block = t.residual[r]
            g, b = next(it)
            y = F.relu(conditional_instance_norm(block["conv1"](x), g, b), inplace=True)
            g, b = next(it)
            x = conditional_instance_norm(block["conv2"](y), g, b).add_(x)   # nothing after the sum
        for i, (spec, up) in enumerate(EXPAND):
            if up > 1:
                x = F.interpolate(x, scale_factor=up, mode="nearest")
            g, b = next(it)
            x = conditional_instance_norm(t.expand[spec.name]["conv"](x), g, b)
            x = torch.sigmoid(x) if i == len(EXPAND) - 1 else F.relu(x, inplace=True)
        return x

    def forward(self, content: Tensor, style: Tensor) -> Tensor:
        """Full network as the TF-Hub module: (content, style) -> stylized, uncropped."""
        return self.stylize(content, self.style_norm_params(self.embed(style)))
