"""The Cutie network (CVPR 2024) with the official state-dict names, for cutie-base and cutie-small.

Only the module structure matters here: every weight comes from a checkpoint (or the golden-init-v2
recipe), so the ImageNet download and the orthogonal/xavier initialisations of the official
constructor are left out.  "Group" tensors have shape (batch, objects, channels, h, w); group
convolutions fold the object axis into the batch axis so every object uses the same weights.

Parts shared with XMem come from there: the ResNet trunks (:mod:`models.resnet`), the group
convolution, the GRU-like sensory update and the anisotropic-L2 similarity
(:mod:`models.xmem.network`).  Cutie's own parts: ECA channel attention residual blocks (instead of
CBAM), 1x1 skip convolutions, the object summarizer and the object transformer.

The module exposes the operations the inference core and test-time training compose:
:meth:`CutieNet.encode_image`, :meth:`CutieNet.encode_mask`, :meth:`CutieNet.pixel_fusion`,
:meth:`CutieNet.readout_query` and :meth:`CutieNet.decode`.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from models.aggregate import aggregate
from models.groupconv import GatedUpdate, GConv2D, MultiScaleGatedUpdate, area_resample, fold, unfold
from models.imagenet import IMAGENET_MEAN, IMAGENET_STD
from models.resnet import Res2Trunk, resnet18, resnet50

__all__ = ["CutieNet", "VARIANTS", "others_of", "positional_encoding"]

#: variant -> pixel-encoder trunk and the channels of its stride-16 / 8 / 4 features
VARIANTS: dict[str, tuple[str, tuple[int, int, int]]] = {
    "base": ("resnet50", (1024, 512, 256)),
    "small": ("resnet18", (256, 128, 64)),
}


# --------------------------------------------------------------------------------------------
# helpers


def _resample_groups(g: torch.Tensor, ratio: float, mode: str) -> torch.Tensor:
    b, n = g.shape[:2]
    kw = {"align_corners": False} if mode == "bilinear" else {}
    return unfold(F.interpolate(fold(g), scale_factor=ratio, mode=mode, **kw), b, n)


def others_of(masks: torch.Tensor) -> torch.Tensor:
    """For every object the clamped sum of all other objects' maps (objects on dim 1)."""
    return (masks.sum(dim=1, keepdim=True) - masks).clamp(0, 1)


def _inv_freq(dim: int = 256, temperature: float = 128.0) -> torch.Tensor:
    half = int(math.ceil(dim / 4) * 2)
    return 1.0 / (temperature ** (torch.arange(0, half, 2).float() / half))


def positional_encoding(inv_freq: torch.Tensor, h: int, w: int, scale: float = 32.0) -> torch.Tensor:
    """(h, w, 4 * len(inv_freq)) sinusoidal encoding: x in the first half, y in the second,
    sin/cos interleaved; positions normalised to [0, scale]."""
    pos_y = torch.arange(h, device=inv_freq.device, dtype=inv_freq.dtype)
    pos_x = torch.arange(w, device=inv_freq.device, dtype=inv_freq.dtype)
    pos_y = pos_y / (pos_y[-1] + 1e-6) * scale
    pos_x = pos_x / (pos_x[-1] + 1e-6) * scale

    def emb(pos):
        angles = pos[:, None] * inv_freq[None, :]
        return torch.stack((angles.sin(), angles.cos()), dim=-1).flatten(-2, -1)

    d = 2 * inv_freq.numel()
    out = torch.zeros((h, w, 2 * d), device=inv_freq.device, dtype=inv_freq.dtype)
    out[:, :, :d] = emb(pos_x)
    out[:, :, d:] = emb(pos_y).unsqueeze(1)
    return out


class _PositionalEncoding(nn.Module):
    """Holds the official ``inv_freq`` buffer (part of the state dict)."""

    def __init__(self, dim: int = 256, temperature: float = 128.0, scale: float = 32.0) -> None:
        super().__init__()
        self.scale = scale
        self.register_buffer("inv_freq", _inv_freq(dim, temperature))

    def forward(self, h: int, w: int) -> torch.Tensor:
        return positional_encoding(self.inv_freq, h, w, self.scale)


# --------------------------------------------------------------------------------------------
# blocks


class CAResBlock(nn.Module):
    """relu-conv3x3-relu-conv3x3, gated per channel by an ECA 1-D conv, plus the input."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(dim, dim, 3, padding=1)
        self.conv2 = nn.Conv2d(dim, dim, 3, padding=1)
        t = int((abs(math.log2(dim)) + 1) // 2)
        k = t if t % 2 else t + 1
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv = nn.Conv1d(1, 1, kernel_size=k, padding=(k - 1) // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(F.relu(self.conv1(F.relu(x))))
        b, c = y.shape[:2]
        gate = self.conv(self.pool(y).view(b, 1, c)).transpose(-1, -2).unsqueeze(-1).sigmoid()
        return y * gate + x


class GroupResBlock(nn.Module):
    """relu-conv-relu-conv plus a skip that is a 1x1 conv when the width changes (XMem: 3x3)."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.downsample = None if in_dim == out_dim else GConv2D(in_dim, out_dim, 1)
        self.conv1 = GConv2D(in_dim, out_dim, 3, padding=1)
        self.conv2 = GConv2D(out_dim, out_dim, 3, padding=1)

    def forward(self, g: torch.Tensor) -> torch.Tensor:
        out = self.conv2(F.relu(self.conv1(F.relu(g))))
        return out + (g if self.downsample is None else self.downsample(g))


class _Distributor(nn.Module):
    # only exists to give the fusion projections their official names (distributor.x/g_transform)
    def __init__(self, x_in: int, g_in: int, out: int) -> None:
        super().__init__()
        self.x_transform = nn.Conv2d(x_in, out, 1)
        self.g_transform = GConv2D(g_in, out, 1)

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        x = self.x_transform(x)
        g = self.g_transform(g)
        return x.unsqueeze(1).expand(-1, g.shape[1], -1, -1, -1) + g


class GroupFeatureFusionBlock(nn.Module):
    """1x1 projections of the shared feature and of each object's g, added, then two CAResBlocks."""

    def __init__(self, x_in: int, g_in: int, out: int) -> None:
        super().__init__()
        self.distributor = _Distributor(x_in, g_in, out)
        self.block1 = CAResBlock(out)
        self.block2 = CAResBlock(out)

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        b, n = g.shape[:2]
        g = self.block2(self.block1(fold(self.distributor(x, g))))
        return unfold(g, b, n)


class MaskUpsampleBlock(nn.Module):
    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.out_conv = GroupResBlock(in_dim, out_dim)

    def forward(self, g: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        g = _resample_groups(g, 2, "bilinear")
        return self.out_conv(skip.unsqueeze(1).expand(-1, g.shape[1], -1, -1, -1) + g)


class _Transforms(nn.Module):
    def __init__(self, in_dims, out_dims) -> None:
        super().__init__()
        self.transforms = nn.ModuleList(nn.Conv2d(i, o, 1) for i, o in zip(in_dims, out_dims))


# --------------------------------------------------------------------------------------------
# encoders / decoder


class KeyProjection(nn.Module):
    def __init__(self, in_dim: int, mid_dim: int, key_dim: int) -> None:
        super().__init__()
        self.pix_feat_proj = nn.Conv2d(in_dim, mid_dim, 1)
        self.key_proj = nn.Conv2d(mid_dim, key_dim, 3, padding=1)
        self.d_proj = nn.Conv2d(mid_dim, 1, 3, padding=1)
        self.e_proj = nn.Conv2d(mid_dim, key_dim, 3, padding=1)

    def forward(self, f16: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.pix_feat_proj(f16)
        shrinkage = self.d_proj(x) ** 2 + 1
        selection = torch.sigmoid(self.e_proj(x))
        return self.key_proj(x), shrinkage, selection


class MaskEncoder(nn.Module):
    """ResNet-18 on [RGB, own mask, others] per object (note: BN -> max-pool -> ReLU), fusion with the
    shared pixel feature, and the deep sensory update."""

    def __init__(self, pixel_dim: int, value_dim: int, sensory_dim: int) -> None:
        super().__init__()
        net = resnet18(in_channels=5, num_layers=3)
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3 = net.layer1, net.layer2, net.layer3
        self.fuser = GroupFeatureFusionBlock(pixel_dim, 256, value_dim)
        self.sensory_update = GatedUpdate(value_dim, sensory_dim)

    def forward(self, image: torch.Tensor, pix_feat: torch.Tensor, sensory: torch.Tensor,
                masks: torch.Tensor, others: torch.Tensor, deep_update: bool = True):
        b, n = masks.shape[:2]
        g = torch.cat([image.unsqueeze(1).expand(-1, n, -1, -1, -1), torch.stack([masks, others], 2)], 2)
        g = self.relu(self.maxpool(self.bn1(self.conv1(fold(g)))))
        g = self.layer3(self.layer2(self.layer1(g)))
        g = self.fuser(pix_feat, unfold(g, b, n))
        new_sensory = self.sensory_update(g, sensory) if deep_update else sensory
        return g, new_sensory


class PixelFeatureFuser(nn.Module):
    def __init__(self, pixel_dim: int, value_dim: int, sensory_dim: int, embed_dim: int) -> None:
        super().__init__()
        self.fuser = GroupFeatureFusionBlock(pixel_dim, value_dim, embed_dim)
        self.sensory_compress = GConv2D(sensory_dim + 2, value_dim, 1)

    def forward(self, pix_feat, visual_readout, sensory, last_mask, last_others) -> torch.Tensor:
        sensory_readout = self.sensory_compress(torch.cat([sensory, torch.stack([last_mask, last_others], 2)], 2))
        return self.fuser(pix_feat, visual_readout + sensory_readout)


class MaskDecoder(nn.Module):
    def __init__(self, ms_dims: tuple[int, int, int], embed_dim: int, sensory_dim: int,
                 up_dims: tuple[int, int, int] = (256, 128, 128)) -> None:
        super().__init__()
        self.sensory_update = MultiScaleGatedUpdate((up_dims[0], up_dims[1], up_dims[2] + 1), sensory_dim, sensory_dim,
                                                    area_resample)
        self.decoder_feat_proc = _Transforms(ms_dims[1:], up_dims[:-1])
        self.up_16_8 = MaskUpsampleBlock(up_dims[0], up_dims[1])
        self.up_8_4 = MaskUpsampleBlock(up_dims[1], up_dims[2])
        self.pred = nn.Conv2d(up_dims[-1], 1, 3, padding=1)

    def forward(self, f8, f4, readout, sensory, update_sensory: bool = True):
        """-> (new sensory or the old one, stride-4 logits (B, N, H/4, W/4), decoder features)."""
        b, n = readout.shape[:2]
        t = self.decoder_feat_proc.transforms
        f8, f4 = t[0](f8), t[1](f4)
        p8 = self.up_16_8(readout, f8)
        p4 = self.up_8_4(p8, f4)
        logits = self.pred(F.relu(fold(p4)))
        if update_sensory:
            p4 = torch.cat([p4, unfold(logits, b, n)], 2)
            sensory = self.sensory_update(readout, p8, p4, sensory)
        return sensory, unfold(logits, b, n)[:, :, 0]


# --------------------------------------------------------------------------------------------
# object summarizer and object transformer


class ObjectSummarizer(nn.Module):
    def __init__(self, value_dim: int = 256, embed_dim: int = 256, num_summaries: int = 16) -> None:
        super().__init__()
        self.num_summaries = num_summaries
        self.pos_enc = _PositionalEncoding(embed_dim)
        self.input_proj = nn.Linear(value_dim, embed_dim)
        self.feature_pred = nn.Sequential(nn.Linear(embed_dim, embed_dim), nn.ReLU(inplace=True),
                                          nn.Linear(embed_dim, embed_dim))
        self.weights_pred = nn.Sequential(nn.Linear(embed_dim, embed_dim), nn.ReLU(inplace=True),
                                          nn.Linear(embed_dim, num_summaries))

    def forward(self, masks: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        """masks (B, N, H, W) padded resolution, value (B, N, C, h, w) -> summaries (B, N, Q, C + 1)
        (weighted sums, then the total weight "area" in the last channel)."""
        h, w = value.shape[-2:]
        masks = F.interpolate(masks, size=(h, w), mode="area").unsqueeze(-1)
        half = self.num_summaries // 2
        allowed = torch.cat([masks.expand(-1, -1, -1, -1, half), (1 - masks).expand(-1, -1, -1, -1, half)], -1)
        value = self.input_proj(value.permute(0, 1, 3, 4, 2))
        value = value + self.pos_enc(h, w)
        feature = self.feature_pred(value)
        weights = self.weights_pred(value).sigmoid() * allowed
        sums = torch.einsum("bkhwq,bkhwc->bkqc", weights, feature)
        area = weights.flatten(start_dim=2, end_dim=3).sum(2).unsqueeze(-1)
        return torch.cat([sums, area], -1)


class _Attention(nn.Module):
    """Pre-norm attention of the object transformer; ``cross_attn``/``self_attn`` naming as official.

    The residual is added to the *normalised* input (official behaviour)."""

    def __init__(self, dim: int, heads: int, name: str, norm: bool = True) -> None:
        super().__init__()
        self._name = name
        setattr(self, name, nn.MultiheadAttention(dim, heads, batch_first=True))
        self.norm = nn.LayerNorm(dim) if norm else nn.Identity()

    def forward(self, x, mem, x_pe, mem_pe, attn_mask=None):
        x = self.norm(x)
        out = getattr(self, self._name)(x + x_pe, mem + mem_pe, mem, attn_mask=attn_mask, need_weights=False)[0]
        return x + out


class _SelfAttention(_Attention):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__(dim, heads, "self_attn")

    def forward(self, x, pe):  # type: ignore[override]
        x = self.norm(x)
        q = x + pe
        return x + self.self_attn(q, q, x, need_weights=False)[0]


class _FFN(nn.Module):
    def __init__(self, dim: int, ff_dim: int) -> None:
        super().__init__()
        self.linear1 = nn.Linear(dim, ff_dim)
        self.linear2 = nn.Linear(ff_dim, dim)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.linear2(F.relu(self.linear1(self.norm(x))))


class _PixelFFN(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.conv = CAResBlock(dim)

    def forward(self, pixel_flat: torch.Tensor, b: int, n: int, h: int, w: int) -> torch.Tensor:
        x = pixel_flat.view(b * n, h, w, -1).permute(0, 3, 1, 2).contiguous()
        return unfold(self.conv(x), b, n)


class QueryTransformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int, ff_dim: int) -> None:
        super().__init__()
        self.read_from_pixel = _Attention(dim, heads, "cross_attn")
        self.self_attn = _SelfAttention(dim, heads)
        self.ffn = _FFN(dim, ff_dim)
        self.read_from_query = _Attention(dim, heads, "cross_attn", norm=False)
        self.pixel_ffn = _PixelFFN(dim)

    def forward(self, query, pixel, query_pe, pixel_pe, attn_mask):
        b, n, _, h, w = pixel.shape
        pixel_flat = pixel.flatten(3, 4).flatten(0, 1).transpose(1, 2).contiguous()
        query = self.read_from_pixel(query, pixel_flat, query_pe, pixel_pe, attn_mask)
        query = self.self_attn(query, query_pe)
        query = self.ffn(query)
        pixel_flat = self.read_from_query(pixel_flat, query, pixel_pe, query_pe)
        return query, self.pixel_ffn(pixel_flat, b, n, h, w)


class QueryTransformer(nn.Module):
    def __init__(self, embed_dim: int = 256, heads: int = 8, num_queries: int = 16, ff_dim: int = 2048,
                 num_blocks: int = 3) -> None:
        super().__init__()
        self.embed_dim, self.num_heads, self.num_queries = embed_dim, heads, num_queries
        self.query_init = nn.Embedding(num_queries, embed_dim)
        self.query_emb = nn.Embedding(num_queries, embed_dim)
        self.summary_to_query_init = nn.Linear(embed_dim, embed_dim)
        self.summary_to_query_emb = nn.Linear(embed_dim, embed_dim)
        self.pixel_init_proj = GConv2D(embed_dim, embed_dim, 1)
        self.pixel_emb_proj = GConv2D(embed_dim, embed_dim, 1)
        self.spatial_pe = _PositionalEncoding(embed_dim)
        self.blocks = nn.ModuleList(QueryTransformerBlock(embed_dim, heads, ff_dim) for _ in range(num_blocks))
        self.mask_pred = nn.ModuleList(nn.Sequential(nn.ReLU(), GConv2D(embed_dim, 1, 1))
                                       for _ in range(num_blocks + 1))

    def forward(self, pixel: torch.Tensor, obj_memory: torch.Tensor, selector: torch.Tensor | None = None):
        """pixel (B, N, C, h, w) pixel readout; obj_memory (B, N, Q, C + 1) accumulated summaries.

        Returns (memory readout (B, N, C, h, w), list of aux logits (B, N, h, w), one per level).
        """
        b, n, _, h, w = pixel.shape
        obj_memory = obj_memory.reshape(b * n, self.num_queries, self.embed_dim + 1)
        values = obj_memory[..., :-1] / (obj_memory[..., -1:] + 1e-4)
        query = self.query_init.weight.unsqueeze(0).expand(b * n, -1, -1) + self.summary_to_query_init(values)
        query_pe = self.query_emb.weight.unsqueeze(0).expand(b * n, -1, -1) + self.summary_to_query_emb(values)

        pixel_init = self.pixel_init_proj(pixel)
        pixel_emb = self.pixel_emb_proj(pixel).flatten(3, 4).flatten(0, 1).transpose(1, 2).contiguous()
        pixel_pe = self.spatial_pe(h, w).flatten(0, 1).unsqueeze(0) + pixel_emb
        pixel = pixel_init

        aux = [self.mask_pred[0](pixel).squeeze(2)]
        attn_mask = self._attention_mask(aux[-1], selector)
        for i, block in enumerate(self.blocks):
            query, pixel = block(query, pixel, query_pe, pixel_pe, attn_mask)
            aux.append(self.mask_pred[i + 1](pixel).squeeze(2))
            if i + 1 < len(self.blocks):
                attn_mask = self._attention_mask(aux[-1], selector)
        return pixel, aux

    def _attention_mask(self, logits: torch.Tensor, selector: torch.Tensor | None) -> torch.Tensor:
        """(B*N*heads, Q, h*w) boolean mask, True = blocked: the first Q/2 queries of an object see only
        its foreground cells, the rest only the other cells; a fully blocked row is opened."""
        prob = logits.sigmoid()
        if selector is not None:
            prob = prob * selector
        log_odds = aggregate(prob, dim=1)
        fg = (log_odds[:, 1:] >= log_odds.max(dim=1, keepdim=True)[0]).flatten(start_dim=2)
        half = self.num_queries // 2

        def rows(m):
            return m.unsqueeze(2).unsqueeze(2).repeat(1, 1, self.num_heads, half, 1).flatten(0, 2)

        mask = torch.cat([rows(~fg), rows(fg)], dim=1)
        mask[torch.where(mask.sum(-1) == mask.shape[-1])] = False
        return mask


class _LinearPredictor(nn.Module):
    def __init__(self, x_dim: int, pix_dim: int) -> None:
        super().__init__()
        self.projection = GConv2D(x_dim, pix_dim + 1, 1)


class _AuxComputer(nn.Module):
    """The training-only auxiliary head: present in the checkpoints, never evaluated here."""

    def __init__(self, sensory_dim: int, embed_dim: int) -> None:
        super().__init__()
        self.sensory_aux = _LinearPredictor(sensory_dim, embed_dim)


# --------------------------------------------------------------------------------------------
# top level


class CutieNet(nn.Module):
    """The Cutie sub-networks under their official names and registration order."""

    def __init__(self, variant: str = "base", *, pixel_dim: int = 256, key_dim: int = 64, value_dim: int = 256,
                 sensory_dim: int = 256, embed_dim: int = 256) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown Cutie variant {variant!r}; expected one of {', '.join(VARIANTS)}")
        trunk, ms_dims = VARIANTS[variant]
        self.variant = variant
        self.key_dim, self.value_dim, self.sensory_dim, self.embed_dim = key_dim, value_dim, sensory_dim, embed_dim
        # ResNet-50 (base) or ResNet-18 (small) up to layer3
        self.pixel_encoder = Res2Trunk({"resnet50": resnet50, "resnet18": resnet18}[trunk](num_layers=3))
        self.pix_feat_proj = nn.Conv2d(ms_dims[0], pixel_dim, 1)
        self.key_proj = KeyProjection(ms_dims[0], pixel_dim, key_dim)
        self.mask_encoder = MaskEncoder(pixel_dim, value_dim, sensory_dim)
        self.mask_decoder = MaskDecoder(ms_dims, embed_dim, sensory_dim)
        self.pixel_fuser = PixelFeatureFuser(pixel_dim, value_dim, sensory_dim, embed_dim)
        self.object_transformer = QueryTransformer(embed_dim)
        self.object_summarizer = ObjectSummarizer(value_dim, embed_dim)
        self.aux_computer = _AuxComputer(sensory_dim, embed_dim)
        self.register_buffer("pixel_mean", torch.tensor(IMAGENET_MEAN).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(IMAGENET_STD).view(-1, 1, 1), False)

    def normalise(self, image: torch.Tensor) -> torch.Tensor:
        """[0, 1] RGB (..., 3, H, W) -> ImageNet-normalised (done inside the network, as official)."""
        return (image - self.pixel_mean) / self.pixel_std

    def encode_image(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """image (B, 3, H, W) in [0, 1], padded -> f16, f8, f4, pix_feat, key, shrinkage, selection."""
        f16, f8, f4 = self.pixel_encoder(self.normalise(image))
        key, shrinkage, selection = self.key_proj(f16)
        return {"f16": f16, "f8": f8, "f4": f4, "pix_feat": self.pix_feat_proj(f16), "key": key,
                "shrinkage": shrinkage, "selection": selection}

    def encode_mask(self, image: torch.Tensor, pix_feat: torch.Tensor, sensory: torch.Tensor,
                    masks: torch.Tensor, deep_update: bool = True):
        """masks (B, N, H, W) soft object maps -> mask value (B, N, Cv, h, w), new sensory,
        this frame's object summaries (B, N, Q, C + 1)."""
        value, new_sensory = self.mask_encoder(self.normalise(image), pix_feat, sensory, masks, others_of(masks),
                                               deep_update=deep_update)
        return value, new_sensory, self.object_summarizer(masks, value)

    def pixel_fusion(self, pix_feat, visual_readout, sensory, last_mask) -> torch.Tensor:
        """last_mask (B, N, H, W) previous output at padded resolution -> pixel readout (B, N, C, h, w)."""
        last_mask = F.interpolate(last_mask, size=sensory.shape[-2:], mode="area")
        return self.pixel_fuser(pix_feat, visual_readout, sensory, last_mask, others_of(last_mask))

    def readout_query(self, pixel_readout, obj_memory, selector=None):
        return self.object_transformer(pixel_readout, obj_memory, selector)

    def decode(self, f8, f4, readout, sensory, *, update_sensory: bool = True, selector=None):
        """-> (sensory, stride-4 logits (B, N, H/4, W/4), log-odds (B, N+1, H, W), probs (B, N+1, H, W)).

        Aggregation happens at stride 4 and the log-odds are upsampled (unlike XMem)."""
        sensory, logits = self.mask_decoder(f8, f4, readout, sensory, update_sensory=update_sensory)
        prob = torch.sigmoid(logits)
        if selector is not None:
            prob = prob * selector
        log_odds = F.interpolate(aggregate(prob, dim=1), scale_factor=4, mode="bilinear", align_corners=False)
        return sensory, logits, log_odds, F.softmax(log_odds, dim=1)

    def extra_repr(self) -> str:
        return f"variant={self.variant!r}"
