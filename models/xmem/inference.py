"""Per-frame XMem inference (the official ``InferenceCore.step`` schedule) and whole-video segmentation.

The schedule decides, per frame, whether to segment, whether to store a memory frame, and which
module refreshes the sensory memory (value encoder on "deep update" frames, decoder otherwise);
getting it exactly right is what makes our probabilities match the official ones.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from models.inputs import check_video
from models.padding import pad16, unpad
from models.xmem.memory import MemoryConfig, MemoryManager
from models.aggregate import aggregate
from models.imagenet import normalise as normalise_frames
from models.xmem.network import XMemNet

__all__ = ["InferenceCore", "iterate_images", "iterate_video", "segment_video", "normalise", "pad16", "unpad", "count_usage_rule",
           "object_labels"]


def normalise(frame: np.ndarray, device: Any = None) -> torch.Tensor:
    """uint8 (H, W, 3) RGB -> ImageNet-normalised float (3, H, W)."""
    return normalise_frames(np.asarray(frame)[None], device)[0]


def count_usage_rule(num_frames: int, cfg: dict) -> bool:
    """eval.py's per-video switch: count long-term usage only if removal can become necessary."""
    if not cfg["enable_long_term"]:
        return False
    span = cfg["max_mid_term_frames"] - cfg["min_mid_term_frames"]
    return num_frames / span * cfg["num_prototypes"] >= cfg["max_long_term_elements"]


def object_labels(first_mask: np.ndarray) -> list[int]:
    """Sorted non-zero labels of the first mask; 255 (void) is not an object."""
    labels = np.unique(first_mask)
    return [int(v) for v in labels if v not in (0, 255)]


class InferenceCore:
    """Feed padded frames one at a time with :meth:`step`; holds the memories of one video.

    ``last`` holds the intermediate tensors of the most recent step (for tests and debugging).
    """

    def __init__(self, net: XMemNet, *, mem_every: int = 5, deep_update_every: int = -1,
                 memory: MemoryConfig | None = None) -> None:
        if mem_every < 1:
            raise ValueError(f"mem_every must be >= 1, got {mem_every}")
        self.net = net
        self.mem_every = mem_every
        self.deep_update_every = deep_update_every
        self.deep_update_sync = deep_update_every < 0
        self.memory_config = memory or MemoryConfig()
        self.memory = MemoryManager(self.memory_config, hidden_dim=net.hidden_dim)
        self.t = -1
        self.last_mem_t = 0
        self.last_deep_update_t = -deep_update_every
        self.num_objects = 0
        self.last: dict[str, Any] = {}

    def _advance(self, mask: torch.Tensor | None) -> int:
        """Move to the next frame (returned); a given mask may bring new objects."""
        self.t += 1
        if mask is not None:
            self.num_objects = max(self.num_objects, mask.shape[0])
        return self.t

    def _schedule(self, t: int, mask: torch.Tensor | None, end: bool) -> tuple[bool, bool, bool]:
        """(memory frame, deep update, decoder hidden update) of frame ``t`` (eval.py's schedule)."""
        is_mem = (t - self.last_mem_t >= self.mem_every or mask is not None) and not end
        if self.deep_update_sync:
            is_deep = is_mem
        else:
            is_deep = (t - self.last_deep_update_t >= self.deep_update_every) and not end
        return is_mem, is_deep, (not self.deep_update_sync or not is_deep) and not end

    def step(self, image: torch.Tensor, mask: torch.Tensor | None = None, end: bool = False) -> torch.Tensor:
        """image (3, H, W) and optional one-hot mask (N, H, W), both padded to multiples of 16.

        Returns the (N+1, H, W) probabilities (background first).
        """
        t, net, enable_long = self._advance(mask), self.net, self.memory_config.enable_long_term
        image = image.unsqueeze(0)
        need_segment = t > 0 and mask is None
        is_mem, is_deep, is_normal_update = self._schedule(t, mask, end)

        key, shrinkage, selection, f16, f8, f4 = net.encode_key(
            image, need_sk=is_mem, need_ek=enable_long or need_segment)
        last = {"key": key, "shrinkage": shrinkage, "selection": selection, "f16": f16,
                "is_memory_frame": is_mem, "is_deep_update": is_deep}

        prob = None
        if need_segment:
            readout = self.memory.read(key, selection).unsqueeze(0)
            hidden, logits, prob = net.decode(f16, f8, f4, readout, self.memory.hidden, h_out=is_normal_update)
            prob = prob[0]
            last.update(readout=readout, logits=logits[0])
            if is_normal_update:
                self.memory.hidden = hidden
                last["hidden_from_decoder"] = hidden
        if mask is not None:  # a given mask (covering every object) replaces any prediction
            logits = aggregate(mask.to(image.dtype), dim=0)
            prob = torch.softmax(logits, dim=0)
            last["logits"] = logits
            self.memory.create_hidden(self.num_objects, key)

        if is_mem:
            value, hidden = net.encode_value(image, f16, self.memory.hidden, prob[1:].unsqueeze(0),
                                             deep_update=is_deep)
            self.memory.add(key, shrinkage, value, selection if enable_long else None)
            self.last_mem_t = t
            last["value"] = value
            if is_deep:
                self.memory.hidden = hidden
                self.last_deep_update_t = t
                last["hidden_after_value_encoder"] = hidden
        self.last = last
        return prob


def _resized_shape(h: int, w: int, size: int) -> tuple[int, int]:
    # torchvision Resize(int): shorter side -> size, longer side -> int(size * long / short)
    if h <= w:
        return size, int(size * w / h)
    return int(size * h / w), size


def _memory_config(cfg: dict, num_frames: int) -> MemoryConfig:
    count_usage = cfg.get("enable_long_term_count_usage")
    if count_usage is None:
        count_usage = count_usage_rule(num_frames, cfg)
    return MemoryConfig(
        top_k=cfg["top_k"], enable_long_term=cfg["enable_long_term"], enable_long_term_count_usage=count_usage,
        min_mid_term_frames=cfg["min_mid_term_frames"], max_mid_term_frames=cfg["max_mid_term_frames"],
        num_prototypes=cfg["num_prototypes"], max_long_term_elements=cfg["max_long_term_elements"])


def iterate_images(net: XMemNet, num_frames: int, image_at: Callable[[int], torch.Tensor],
                   onehot: torch.Tensor, cfg: dict):
    """Core loop over normalised frames: ``image_at(t)`` -> (3, H, W); ``onehot`` (K, H, W) for frame 0.

    Handles eval.py's optional resize (``cfg["size"]``) and the padding; yields
    (t, probabilities (K+1, H, W) at input resolution, core).
    """
    core = InferenceCore(net, mem_every=cfg["mem_every"], deep_update_every=cfg["deep_update_every"],
                         memory=_memory_config(cfg, num_frames))
    height, width = onehot.shape[-2:]
    size = cfg.get("size", -1)
    target = _resized_shape(height, width, size) if size and size > 0 else (height, width)
    resize = target != (height, width)
    if resize:
        onehot = F.interpolate(onehot[None], size=target, mode="nearest")[0]
    onehot, _ = pad16(onehot)
    for t in range(num_frames):
        image = image_at(t)
        if resize:
            image = F.interpolate(image[None], size=target, mode="bilinear", align_corners=False)[0]
        image, pad = pad16(image)
        prob = unpad(core.step(image, onehot if t == 0 else None, end=(t == num_frames - 1)), pad)
        if resize:
            prob = F.interpolate(prob[:, None], size=(height, width), mode="bilinear", align_corners=False)[:, 0]
        yield t, prob, core


def iterate_video(net: XMemNet, frames: np.ndarray, first_mask: np.ndarray, cfg: dict):
    """Run XMem over a video as eval.py does (mask on frame 0 only), one frame at a time.

    Yields (t, probabilities (K+1, H, W) float tensor at input resolution, core) so callers can
    inspect the memories after every frame.  Must run under ``torch.inference_mode()`` or
    ``torch.no_grad()`` unless gradients are wanted.
    """
    frames, first_mask = check_video(frames, first_mask)
    labels = object_labels(first_mask)
    if not labels:
        raise ValueError("first_mask has no object label")
    device = next(net.parameters()).device
    mask = torch.from_numpy(first_mask).to(device)
    onehot = torch.stack([(mask == label) for label in labels]).float()
    yield from iterate_images(net, len(frames), lambda t: normalise(frames[t], device), onehot, cfg)


@torch.inference_mode()
def segment_video(net: XMemNet, frames: np.ndarray, first_mask: np.ndarray, cfg: dict, *,
                  progress: bool = False, desc: str = "xmem") -> np.ndarray:
    """frames uint8 (T, H, W, 3), first_mask uint8 (H, W) -> float32 (K+1, T, H, W) probabilities.

    With no object in ``first_mask`` every pixel is background.
    """
    frames = np.asarray(frames)
    labels = object_labels(np.asarray(first_mask))
    out = np.zeros((len(labels) + 1, *frames.shape[:3]), dtype=np.float32)
    if not labels:
        out[0] = 1.0
        return out
    steps = iterate_video(net, frames, first_mask, cfg)
    for t, prob, _ in tqdm(steps, total=len(frames), desc=desc, disable=not progress, leave=False):
        out[:, t] = prob.float().cpu().numpy()
    return out
