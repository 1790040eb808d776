"""Cutie (Cheng et al., CVPR 2024): network, memories, official inference schedule, TTT hooks.

``models.load_model("cutie", checkpoint, device, **config)`` -> :class:`Cutie` with
``segment(frames, masks, **overrides) -> float32 (K+1, T, H, W)``; cutie-base and cutie-small are
told apart by the checkpoint (or ``variant=`` without one).
"""
from models.cutie.model import DEFAULT_CONFIG, Cutie, load, variant_from_state_dict
from models.cutie.network import VARIANTS

__all__ = ["Cutie", "DEFAULT_CONFIG", "VARIANTS", "load", "variant_from_state_dict"]
