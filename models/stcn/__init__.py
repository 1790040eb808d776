"""STCN (Cheng et al., NeurIPS 2021) with the official weights layout and inference semantics.

``models.load_model("stcn", checkpoint=..., device=...)`` calls :func:`models.stcn.model.load`.  The returned
model's ``segment(frames, masks, top_k=20, mem_every=5, include_last=False)`` reproduces the official
``eval_davis.py`` probabilities; its TTT hooks are in :mod:`models.stcn.ttt`.
"""
from models.stcn.checkpoint import load_stcn_weights, stcn_state_dict
from models.stcn.model import DEFAULT_CONFIG, STCN, STCNOptions, load
from models.stcn.network import STCNNet

__all__ = ["STCN", "STCNNet", "STCNOptions", "DEFAULT_CONFIG", "load", "stcn_state_dict", "load_stcn_weights"]
