"""XMem (Cheng & Schwing, ECCV 2022): network, three memories, official inference schedule, TTT hooks.

``models.load_model("xmem", checkpoint, device, **config)`` -> :class:`XMem` with
``segment(frames, first_mask, **overrides) -> float32 (K+1, T, H, W)``.
"""
from models.xmem.model import DEFAULT_CONFIG, XMem, dims_from_state_dict, load

__all__ = ["XMem", "DEFAULT_CONFIG", "dims_from_state_dict", "load"]
