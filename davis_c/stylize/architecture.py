"""The stylization network of Ghiasi et al. (Magenta ``arbitrary_image_stylization``) written as data.

Every learned layer is listed once here, under its TensorFlow scope.  The PyTorch modules
(:mod:`.network`) and the TF-name -> PyTorch-name table (:mod:`.tf_names`) are both built from
these tuples, so the network and the weight converter cannot drift apart.  Facts (names, shapes,
padding, the ``Conv_1_0c_5x5`` / ``Conv2d_1a_1x1`` naming quirks) are those of the official
Magenta graph and checkpoint.
"""
from __future__ import annotations

from typing import NamedTuple

__all__ = [
    "Conv", "Pool", "STEM", "MIXED", "INCEPTION_CONVS", "CONTRACT", "RESIDUAL", "EXPAND",
    "STYLE_LAYERS", "EMBEDDING_DIM", "TRUNK_CHANNELS", "BN_EPS", "IN_EPS",
]

BN_EPS = 1e-3          # slim batch norm (Inception trunk and transformer encoder)
IN_EPS = 1e-5          # conditional instance norm
EMBEDDING_DIM = 100    # style bottleneck
TRUNK_CHANNELS = 768   # Mixed_6e output


class Conv(NamedTuple):
    """One ``conv -> norm -> activation`` unit; ``name`` is its TF scope below the block."""

    name: str
    kh: int
    kw: int
    cin: int
    cout: int
    stride: int = 1
    same: bool = True   # TF "SAME" (always symmetric here: stride 1, odd kernels) or "VALID"


class Pool(NamedTuple):
    """A 3x3 pooling op without variables: ``kind`` is "max" (stride 2, VALID) or "avg" (stride 1, SAME)."""

    name: str
    kind: str


# --- Inception-v3 trunk up to Mixed_6e (scope "InceptionV3/") ----------------------------------
STEM: tuple[Conv | Pool, ...] = (
    Conv("Conv2d_1a_3x3", 3, 3, 3, 32, stride=2, same=False),
    Conv("Conv2d_2a_3x3", 3, 3, 32, 32, same=False),
    Conv("Conv2d_2b_3x3", 3, 3, 32, 64),
    Pool("MaxPool_3a_3x3", "max"),
    Conv("Conv2d_3b_1x1", 1, 1, 64, 80, same=False),
    Conv("Conv2d_4a_3x3", 3, 3, 80, 192, same=False),
    Pool("MaxPool_5a_3x3", "max"),
)


def _mixed_5(cin: int, pool_out: int, quirk: bool = False) -> tuple[tuple[Conv | Pool, ...], ...]:
    b1 = (Conv("Conv2d_0b_1x1", 1, 1, cin, 48), Conv("Conv_1_0c_5x5", 5, 5, 48, 64)) if quirk else \
         (Conv("Conv2d_0a_1x1", 1, 1, cin, 48), Conv("Conv2d_0b_5x5", 5, 5, 48, 64))
    return (
        (Conv("Conv2d_0a_1x1", 1, 1, cin, 64),),
        b1,
        (Conv("Conv2d_0a_1x1", 1, 1, cin, 64), Conv("Conv2d_0b_3x3", 3, 3, 64, 96), Conv("Conv2d_0c_3x3", 3, 3, 96, 96)),
        (Pool("AvgPool_0a_3x3", "avg"), Conv("Conv2d_0b_1x1", 1, 1, cin, pool_out)),
    )


def _mixed_6(c: int) -> tuple[tuple[Conv | Pool, ...], ...]:
    return (
        (Conv("Conv2d_0a_1x1", 1, 1, 768, 192),),
        (Conv("Conv2d_0a_1x1", 1, 1, 768, c), Conv("Conv2d_0b_1x7", 1, 7, c, c), Conv("Conv2d_0c_7x1", 7, 1, c, 192)),
        (Conv("Conv2d_0a_1x1", 1, 1, 768, c), Conv("Conv2d_0b_7x1", 7, 1, c, c), Conv("Conv2d_0c_1x7", 1, 7, c, c),
         Conv("Conv2d_0d_7x1", 7, 1, c, c), Conv("Conv2d_0e_1x7", 1, 7, c, 192)),
        (Pool("AvgPool_0a_3x3", "avg"), Conv("Conv2d_0b_1x1", 1, 1, 768, 192)),
    )


#: block name -> branches (concatenated along channels in order Branch_0, Branch_1, ...).
MIXED: dict[str, tuple[tuple[Conv | Pool, ...], ...]] = {
    "Mixed_5b": _mixed_5(192, 32),
    "Mixed_5c": _mixed_5(256, 64, quirk=True),
    "Mixed_5d": _mixed_5(288, 64),
    "Mixed_6a": (
        (Conv("Conv2d_1a_1x1", 3, 3, 288, 384, stride=2, same=False),),
        (Conv("Conv2d_0a_1x1", 1, 1, 288, 64), Conv("Conv2d_0b_3x3", 3, 3, 64, 96),
         Conv("Conv2d_1a_1x1", 3, 3, 96, 96, stride=2, same=False)),
        (Pool("MaxPool_1a_3x3", "max"),),
    ),
    "Mixed_6b": _mixed_6(128),
    "Mixed_6c": _mixed_6(160),
    "Mixed_6d": _mixed_6(160),
    "Mixed_6e": _mixed_6(192),
}


def _inception_convs() -> tuple[tuple[str, Conv], ...]:
    rows = [(op.name, op) for op in STEM if isinstance(op, Conv)]
    for block, branches in MIXED.items():
        for b, ops in enumerate(branches):
            rows += [(f"{block}/Branch_{b}/{op.name}", op) for op in ops if isinstance(op, Conv)]
    return tuple(rows)


#: (scope below "InceptionV3/", conv) for the 70 trunk convs.
INCEPTION_CONVS = _inception_convs()

# --- transformer (scope "transformer/") --------------------------------------------------------
#: encoder: reflect pad, conv, batch norm (no gamma), ReLU.  Scope "transformer/contract/<name>".
CONTRACT: tuple[Conv, ...] = (
    Conv("conv1", 9, 9, 3, 32), Conv("conv2", 3, 3, 32, 64, stride=2), Conv("conv3", 3, 3, 64, 128, stride=2),
)
#: residual blocks "transformer/residual/residual{i}/conv{1,2}", conditional instance norm.
RESIDUAL: tuple[str, ...] = tuple(f"residual{i}" for i in range(1, 6))
#: decoder "transformer/expand/<name>/conv": (conv, nearest-upsampling factor); CIN, ReLU (sigmoid last).
EXPAND: tuple[tuple[Conv, int], ...] = (
    (Conv("conv1", 3, 3, 128, 64), 2), (Conv("conv2", 3, 3, 64, 32), 2), (Conv("conv3", 9, 9, 32, 3), 1),
)

#: the 13 style-conditioned layers, in network order: (TF layer path below "style_params/", channels).
STYLE_LAYERS: tuple[tuple[str, int], ...] = tuple(
    [(f"transformer/residual/{r}/conv{k}", 128) for r in RESIDUAL for k in (1, 2)]
    + [(f"transformer/expand/{conv.name}/conv", conv.cout) for conv, _ in EXPAND]
)
