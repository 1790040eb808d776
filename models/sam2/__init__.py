"""SAM 2 / SAM 2.1 (Ravi et al., 2024): Hiera image encoder, memory attention with RoPE, memory
encoder, SAM heads; the official semi-supervised VOS procedure (``tools/vos_inference.py``) and
test-time training hooks.

``models.load_model("sam2.1_hiera_t", checkpoint="sam2.1_hiera_tiny.pt")`` -> :class:`SAM2` with
``segment(frames, masks, **overrides) -> float32 (K+1, T, H, W)``.  Configs are data
(``models/sam2/configs/*.yaml``); neither hydra nor the ``sam2`` package is needed.
"""
from models.sam2.config import MODEL_NAMES, available_configs, load_config
from models.sam2.golden import golden_init_v2, golden_state_dict_v2
from models.sam2.model import (DEFAULT_CONFIG, LOADERS, SAM2, load, load_sam2_1_hiera_b_plus, load_sam2_1_hiera_l,
                               load_sam2_1_hiera_s, load_sam2_1_hiera_t, load_sam2_hiera_b_plus, load_sam2_hiera_l,
                               load_sam2_hiera_s, load_sam2_hiera_t)

__all__ = ["SAM2", "DEFAULT_CONFIG", "LOADERS", "MODEL_NAMES", "load", "load_config", "available_configs",
           "golden_init_v2", "golden_state_dict_v2",
           "load_sam2_1_hiera_t", "load_sam2_1_hiera_s", "load_sam2_1_hiera_b_plus", "load_sam2_1_hiera_l",
           "load_sam2_hiera_t", "load_sam2_hiera_s", "load_sam2_hiera_b_plus", "load_sam2_hiera_l"]
