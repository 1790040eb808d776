""""Golden init v2" for SAM 2 (shared/golden/sam2/README.md): the deterministic weights the SAM 2
goldens were made with.  One seeded generator, keys visited in ``sorted()`` order, one
``randn(shape)`` draw per tensor, scaled by a rule decided from the key name alone."""
from __future__ import annotations

import re

import torch
from torch import nn

__all__ = ["golden_rule", "golden_state_dict_v2", "golden_init_v2", "OBJ_SCORE_BIAS"]

#: the output bias of the object-score MLP, shifted by ``b_obj`` after all draws
OBJ_SCORE_BIAS = "sam_mask_decoder.pred_obj_score_head.layers.2.bias"
_EMBEDDING_SUFFIXES = ("iou_token.weight", "mask_tokens.weight", "obj_score_token.weight",
                       "not_a_point_embed.weight", "no_mask_embed.weight")
_POINT_EMBEDDING = re.compile(r"(^|\.)point_embeddings\.\d+\.weight$")


def golden_rule(name: str, shape: tuple[int, ...]) -> str:
    """layer_scale | embed | bias | fan_in | norm_weight for a state-dict key (README rules 1-5)."""
    last = name.rsplit(".", 1)[-1]
    if last == "gamma":
        return "layer_scale"
    if last not in ("weight", "bias") or name.endswith(_EMBEDDING_SUFFIXES) or _POINT_EMBEDDING.search(name):
        return "embed"
    if last == "bias":
        return "bias"
    if len(shape) in (2, 4):
        return "fan_in"
    if len(shape) == 1:
        return "norm_weight"
    raise ValueError(f"golden init v2 has no rule for {name!r} with shape {shape}")


def golden_state_dict_v2(state: dict[str, torch.Tensor], seed: int = 0, s: float = 1.0, e: float = 1.0,
                         g: float = 1.0, b_obj: float = 2.0) -> dict[str, torch.Tensor]:
    """New state dict with the recipe's values for every (float) entry of ``state``."""
    gen = torch.Generator(device="cpu")
    gen.manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    for name in sorted(state):
        ref = state[name]
        if not ref.is_floating_point():
            raise ValueError(f"golden init v2: unexpected non-float entry {name!r}")
        shape = tuple(ref.shape)
        draw = torch.randn(shape, generator=gen, dtype=torch.float32)
        rule = golden_rule(name, shape)
        if rule == "layer_scale":
            value = g * draw
        elif rule == "embed":
            value = e * draw
        elif rule == "bias":
            value = 0.05 * draw
        elif rule == "fan_in":
            fan = 1
            for d in shape[1:]:
                fan *= d
            value = draw * ((s / fan) ** 0.5)
        else:
            value = 1 + 0.1 * draw
        out[name] = value
    if OBJ_SCORE_BIAS in out:
        out[OBJ_SCORE_BIAS] = out[OBJ_SCORE_BIAS] + b_obj
    return {k: v.to(state[k].dtype) for k, v in out.items()}


def golden_init_v2(model: nn.Module, seed: int = 0, s: float = 1.0, e: float = 1.0, g: float = 1.0,
                   b_obj: float = 2.0) -> nn.Module:
    """Overwrite ``model``'s weights in place with golden-init-v2 values; returns the model."""
    state = model.state_dict()
    model.load_state_dict(golden_state_dict_v2(state, seed=seed, s=s, e=e, g=g, b_obj=b_obj), strict=True)
    return model
