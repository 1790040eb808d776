"""e-OSVOS (Meinhardt & Leal-Taixé, NeurIPS 2020): meta-learned first-frame fine-tuning of a Mask R-CNN.

``models.load_model("eosvos", checkpoint, device, **config)`` -> :class:`EOSVOS` with
``segment(frames, masks, **overrides) -> float32 (K+1, T, H, W)``.  Pure PyTorch, no torchvision:
``ops`` (RoIAlign, NMS, box coder, anchors, resize transform, mask pasting), ``network`` (the GroupNorm
Mask R-CNN under the released checkpoint's names), ``checkpoint`` (the released layout and the goldens'
init), ``lovasz``, ``finetune`` (augmentation, random stream, per-neuron SGD step), ``inference`` (the
official test-time procedure), ``model`` (the family contract: options + ``segment``).  docs/eosvos.md has the details.
"""
from models.eosvos.model import DEFAULT_CONFIG, EOSVOS, NETWORK_DEFAULTS, EOSVOSOptions, load

__all__ = ["EOSVOS", "EOSVOSOptions", "DEFAULT_CONFIG", "NETWORK_DEFAULTS", "load"]
