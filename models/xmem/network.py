"""The XMem network (ECCV 2022) with the official state-dict names.

Only the module structure matters here: every weight comes from a checkpoint (or golden-init-v1),
so the ImageNet download and the orthogonal/xavier initialisations of the official constructor are
left out.  "Group" tensors have shape (batch, objects, channels, h, w); group convolutions fold the
object axis into the batch axis so every object is processed by the same weights.

The module exposes the four operations the inference core and test-time training compose:
:meth:`XMemNet.encode_key`, :meth:`XMemNet.encode_value`, :meth:`XMemNet.read_memory_full`
(training-style full-softmax read) and :meth:`XMemNet.decode`.
"""
from __future__ import annotations


import torch
import torch.nn.functional as F
from torch import nn

from models.aggregate import aggregate
from models.cbam import CBAM
from models.groupconv import GatedUpdate, GConv2D, MultiScaleGatedUpdate, avg_pool, fold, unfold
from models.readout import similarity
from models.resnet import Res2Trunk, resnet18, resnet50

__all__ = ["XMemNet"]


# --------------------------------------------------------------------------------------------
# group helpers


class GroupResBlock(nn.Module):
    """relu-conv-relu-conv plus a skip that is a 3x3 conv when the width changes."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.downsample = None if in_dim == out_dim else GConv2D(in_dim, out_dim, 3, padding=1)
        self.conv1 = GConv2D(in_dim, out_dim, 3, padding=1)
        self.conv2 = GConv2D(out_dim, out_dim, 3, padding=1)

    def forward(self, g: torch.Tensor) -> torch.Tensor:
        out = self.conv2(F.relu(self.conv1(F.relu(g))))
        skip = g if self.downsample is None else self.downsample(g)
        return out + skip


class FeatureFusionBlock(nn.Module):
    """Concatenate the shared image feature in front of each object's g, then ResBlock/CBAM/ResBlock."""

    def __init__(self, x_in: int, g_in: int, g_mid: int, g_out: int) -> None:
        super().__init__()
        self.block1 = GroupResBlock(x_in + g_in, g_mid)
        self.attention = CBAM(g_mid)
        self.block2 = GroupResBlock(g_mid, g_out)

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        b, n = g.shape[:2]
        g = torch.cat([x.unsqueeze(1).expand(-1, n, -1, -1, -1), g], 2)
        g = self.block1(g)
        r = unfold(self.attention(fold(g)), b, n)
        return self.block2(g + r)


class UpsampleBlock(nn.Module):
    def __init__(self, skip_dim: int, up_dim: int, out_dim: int) -> None:
        super().__init__()
        self.skip_conv = nn.Conv2d(skip_dim, up_dim, 3, padding=1)
        self.out_conv = GroupResBlock(up_dim, out_dim)

    def forward(self, skip: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        b, n = g.shape[:2]
        up = unfold(F.interpolate(fold(g), scale_factor=2, mode="bilinear", align_corners=False), b, n)
        return self.out_conv(up + self.skip_conv(skip).unsqueeze(1))


# --------------------------------------------------------------------------------------------
# encoders / decoder


class KeyProjection(nn.Module):
    def __init__(self, in_dim: int, key_dim: int) -> None:
        super().__init__()
        self.key_proj = nn.Conv2d(in_dim, key_dim, 3, padding=1)
        self.d_proj = nn.Conv2d(in_dim, 1, 3, padding=1)
        self.e_proj = nn.Conv2d(in_dim, key_dim, 3, padding=1)

    def forward(self, x: torch.Tensor, need_s: bool, need_e: bool):
        shrinkage = self.d_proj(x) ** 2 + 1 if need_s else None
        selection = torch.sigmoid(self.e_proj(x)) if need_e else None
        return self.key_proj(x), shrinkage, selection


class ValueEncoder(nn.Module):
    """ResNet-18 (5-channel input: RGB, own mask, others; no conv bias) + fusion + hidden reinforcement."""

    def __init__(self, value_dim: int, hidden_dim: int) -> None:
        super().__init__()
        trunk = resnet18(in_channels=5, num_layers=3)
        self.conv1, self.bn1, self.relu, self.maxpool = trunk.conv1, trunk.bn1, trunk.relu, trunk.maxpool
        self.layer1, self.layer2, self.layer3 = trunk.layer1, trunk.layer2, trunk.layer3
        self.fuser = FeatureFusionBlock(1024, 256, value_dim, value_dim)
        self.hidden_reinforce = GatedUpdate(value_dim, hidden_dim) if hidden_dim > 0 else None

    def forward(self, image: torch.Tensor, f16: torch.Tensor, h: torch.Tensor, masks: torch.Tensor,
                others: torch.Tensor, deep_update: bool = True):
        b, n = masks.shape[:2]
        g = torch.cat([image.unsqueeze(1).expand(-1, n, -1, -1, -1),
                       torch.stack([masks, others], 2)], 2)
        g = fold(g)
        g = self.relu(self.maxpool(self.bn1(self.conv1(g))))
        g = self.layer3(self.layer2(self.layer1(g)))
        g = self.fuser(f16, unfold(g, b, n))
        if deep_update and self.hidden_reinforce is not None:
            h = self.hidden_reinforce(g, h)
        return g, h


class Decoder(nn.Module):
    def __init__(self, value_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fuser = FeatureFusionBlock(1024, value_dim + hidden_dim, 512, 512)
        self.hidden_update = MultiScaleGatedUpdate((512, 256, 257), 256, hidden_dim, avg_pool) if hidden_dim > 0 else None
        self.up_16_8 = UpsampleBlock(512, 512, 256)
        self.up_8_4 = UpsampleBlock(256, 256, 256)
        self.pred = nn.Conv2d(256, 1, 3, padding=1)

    def forward(self, f16, f8, f4, hidden, readout, h_out: bool = True):
        b, n = readout.shape[:2]
        g = readout if self.hidden_update is None else torch.cat([readout, hidden], 2)
        g16 = self.fuser(f16, g)
        g8 = self.up_16_8(f8, g16)
        g4 = self.up_8_4(f4, g8)
        logits = self.pred(F.relu(fold(g4)))
        new_hidden = None
        if h_out and self.hidden_update is not None:
            g4 = torch.cat([g4, unfold(logits, b, n)], 2)
            new_hidden = self.hidden_update(g16, g8, g4, hidden)
        logits = F.interpolate(logits, scale_factor=4, mode="bilinear", align_corners=False)
        return new_hidden, unfold(logits, b, n)[:, :, 0]


# --------------------------------------------------------------------------------------------
# shared maths


# --------------------------------------------------------------------------------------------
# top level


class XMemNet(nn.Module):
    """The four XMem sub-networks under their official names (``key_encoder``, ``value_encoder``,
    ``key_proj``, ``decoder``)."""

    def __init__(self, key_dim: int = 64, value_dim: int = 512, hidden_dim: int = 64) -> None:
        super().__init__()
        self.key_dim, self.value_dim, self.hidden_dim = key_dim, value_dim, hidden_dim
        self.key_encoder = Res2Trunk(resnet50(num_layers=3))  # ResNet-50 up to layer3
        self.value_encoder = ValueEncoder(value_dim, hidden_dim)
        self.key_proj = KeyProjection(1024, key_dim)
        self.decoder = Decoder(value_dim, hidden_dim)

    def encode_key(self, frame: torch.Tensor, need_sk: bool = True, need_ek: bool = True):
        """frame (B, 3, H, W) -> key, shrinkage|None, selection|None, f16, f8, f4."""
        f16, f8, f4 = self.key_encoder(frame)
        key, shrinkage, selection = self.key_proj(f16, need_sk, need_ek)
        return key, shrinkage, selection, f16, f8, f4

    def encode_value(self, frame: torch.Tensor, f16: torch.Tensor, hidden: torch.Tensor,
                     masks: torch.Tensor, deep_update: bool = True):
        """masks (B, N, H, W) soft object maps -> value (B, N, Cv, h, w), hidden (B, N, Ch, h, w)."""
        n = masks.shape[1]
        if n == 1:
            others = torch.zeros_like(masks)
        else:  # explicit sums (not total - own) so rounding matches the official code
            others = torch.stack([masks[:, [j for j in range(n) if j != i]].sum(1) for i in range(n)], 1)
        return self.value_encoder(frame, f16, hidden, masks, others, deep_update)

    def decode(self, f16, f8, f4, readout, hidden, h_out: bool = True, selector: torch.Tensor | None = None):
        """Decode every object; returns (new hidden|None, log-odds (B, N+1, H, W), probs (B, N+1, H, W))."""
        new_hidden, logits = self.decoder(f16, f8, f4, hidden, readout, h_out=h_out)
        prob = torch.sigmoid(logits)
        if selector is not None:
            prob = prob * selector
        agg_logits = aggregate(prob, dim=1)
        return new_hidden, agg_logits, F.softmax(agg_logits, dim=1)

    def read_memory_full(self, query_key: torch.Tensor, query_selection: torch.Tensor | None,
                         mem_key: torch.Tensor, mem_shrinkage: torch.Tensor | None,
                         mem_value: torch.Tensor) -> torch.Tensor:
        """Training-style read (full softmax over all memory, max subtracted).

        query (B, Ck, h, w); memory key (B, Ck, T, h, w), shrinkage (B, 1, T, h, w),
        value (B, N, Cv, T, h, w) -> readout (B, N, Cv, h, w).
        """
        b, n, cv = mem_value.shape[:3]
        h, w = query_key.shape[-2:]
        sim = similarity(mem_key.flatten(2), None if mem_shrinkage is None else mem_shrinkage.flatten(2),
                         query_key.flatten(2), None if query_selection is None else query_selection.flatten(2))
        affinity = torch.softmax(sim, dim=2)  # (B, P, N)
        out = torch.bmm(mem_value.flatten(1, 2).flatten(2), affinity.transpose(1, 2))
        return out.view(b, n, cv, h, w)
