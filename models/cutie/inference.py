"""Per-frame Cutie inference (the official ``InferenceCore.step`` schedule) and whole-video segmentation.

Per frame: encode the padded image; if segmenting, read every bucket's pixel memory (top-k), fuse it
with the sensory memory and the previous output (pixel fuser), refine it with the object transformer
(object memory), decode and aggregate; merge given masks; memorise (mask encoder, deep sensory
update, object summaries) on memory frames.  The schedule (memory frames every ``mem_every``, decoder
sensory updates on the "stagger" offsets since the last memory frame, nothing on the last frame) is
what makes the probabilities equal the official ones.
"""
from __future__ import annotations

from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from models.cutie.memory import MemoryConfig, MemoryManager
from models.aggregate import aggregate
from models.cutie.network import CutieNet
from models.inputs import given_masks, object_first_frames
from models.padding import pad16, unpad

__all__ = ["InferenceCore", "stagger_offsets", "memory_config", "pad16", "unpad", "to_image", "iterate_video",
           "segment_video"]


def to_image(frame: np.ndarray, device: Any = None) -> torch.Tensor:
    """uint8 (H, W, 3) RGB -> float32 (3, H, W) in [0, 1] (ToTensor's arithmetic: / 255)."""
    return torch.from_numpy(np.ascontiguousarray(frame)).to(device).permute(2, 0, 1).float().div(255)


def stagger_offsets(mem_every: int, stagger_updates: int) -> set[int]:
    """Offsets (frames since the last memory frame) on which the decoder updates the sensory memory."""
    if stagger_updates >= mem_every:
        return set(range(1, mem_every + 1))
    return {int(v) for v in np.round(np.linspace(1, mem_every, stagger_updates)).astype(int)}


def memory_config(cfg: dict) -> MemoryConfig:
    return MemoryConfig(
        top_k=cfg["top_k"], use_long_term=cfg["use_long_term"], max_mem_frames=cfg["max_mem_frames"],
        count_usage=cfg["long_term_count_usage"], long_term_max_mem_frames=cfg["long_term_max_mem_frames"],
        long_term_min_mem_frames=cfg["long_term_min_mem_frames"], num_prototypes=cfg["long_term_num_prototypes"],
        max_num_tokens=cfg["long_term_max_num_tokens"], buffer_tokens=cfg["long_term_buffer_tokens"])


class InferenceCore:
    """Feed frames one at a time with :meth:`step`; holds the memories of one video.

    Objects are identified by their labels; their channel order ("temporary ids") is the order in which
    they were given.  With ``debug=True``, ``last`` holds the intermediate tensors of the latest step.
    """

    def __init__(self, net: CutieNet, cfg: dict, *, debug: bool = False) -> None:
        if cfg["mem_every"] < 1:
            raise ValueError(f"mem_every must be >= 1, got {cfg['mem_every']}")
        self.net = net
        self.mem_every = cfg["mem_every"]
        self.stagger = stagger_offsets(cfg["mem_every"], cfg["stagger_updates"])
        self.chunk_size = cfg["chunk_size"]
        self.memory = MemoryManager(memory_config(cfg), sensory_dim=net.sensory_dim)
        self.objects: list[int] = []
        self.t = -1
        self.last_mem_t = 0
        self.last_mask: torch.Tensor | None = None
        self.debug = debug
        self.last: dict[str, Any] = {}

    # ------------------------------------------------------------------ one frame
    def step(self, image: torch.Tensor, mask: torch.Tensor | None = None, objects: list[int] | None = None,
             end: bool = False) -> torch.Tensor:
        """image (3, H, W) in [0, 1]; optional label map (H, W) with the labels ``objects`` given there.

        Returns the (N+1, H, W) probabilities (background, then objects in the order they were given).
        """
        self.t += 1
        t, net = self.t, self.net
        objects = list(objects or [])
        if mask is not None and not objects:
            raise ValueError("a mask was given without objects")
        image, pad = pad16(image)
        image = image.unsqueeze(0)
        known = set(self.objects)
        is_mem = (t - self.last_mem_t >= self.mem_every or mask is not None) and not end
        need_segment = mask is None or (bool(known) and set(objects) != known)
        update_sensory = (t - self.last_mem_t) in self.stagger and not end

        feats = net.encode_image(image)
        last: dict[str, Any] = {"is_memory_frame": is_mem, "segmented": need_segment and bool(known),
                                "sensory_updated_by_decoder": False}
        if self.debug:
            last.update(feats)
        prob = None
        if need_segment and known:
            prob = self._segment(feats, update_sensory, last)
        if mask is not None:
            mask, _ = pad16(mask)
            new = [o for o in objects if o not in known]
            self.objects += new
            if prob is not None:
                channels = prob[1:].clone()
                channels[:, (mask > 0) & (mask != 255)] = 0
                extra = []
                for obj in objects:
                    this = (mask == obj).to(channels.dtype)
                    if obj in known:
                        channels[self.objects.index(obj)] = this
                    else:
                        extra.append(this)
                channels = torch.cat([channels, torch.stack(extra)]) if extra else channels
            else:
                channels = torch.stack([(mask == obj) for obj in self.objects]).to(image.dtype)
            prob = torch.softmax(aggregate(channels, dim=0), dim=0)
        self.last_mask = prob[1:].unsqueeze(0)

        if is_mem:
            self._memorise(image, feats, last)
        self.last = last
        return unpad(prob, pad)

    def _segment(self, feats: dict, update_sensory: bool, last: dict) -> torch.Tensor:
        net, mem = self.net, self.memory
        readouts: dict[int, torch.Tensor] = {}
        dbg: dict[str, list] = {k: [] for k in ("visual_readout", "sensory_into_pixel_fuser",
                                                "pixel_readout_fused", "aux_logits")}
        for bid, bucket in mem.work.items():
            visual = mem.read_visual(bid, feats["key"], feats["selection"])
            n = len(bucket.objects)
            size = n if self.chunk_size < 1 else self.chunk_size
            for start in range(0, n, size):
                objs = bucket.objects[start:start + size]
                sensory = mem.get_sensory(objs)
                last_mask = self.last_mask[:, [self.objects.index(o) for o in objs]]
                pixel = net.pixel_fusion(feats["pix_feat"], visual[:, start:start + size], sensory, last_mask)
                out, aux = net.readout_query(pixel, mem.get_obj_memory(objs))
                for i, obj in enumerate(objs):
                    readouts[obj] = out[:, i]
                if self.debug:
                    dbg["visual_readout"].append(visual[:, start:start + size])
                    dbg["sensory_into_pixel_fuser"].append(sensory)
                    dbg["pixel_readout_fused"].append(pixel)
                    dbg["aux_logits"].append(torch.stack(aux, 0))
        readout = torch.stack([readouts[o] for o in self.objects], 1)
        sensory = mem.get_sensory(self.objects)
        new_sensory, logits, _, prob = net.decode(feats["f8"], feats["f4"], readout, sensory,
                                                   update_sensory=update_sensory)
        if update_sensory:
            mem.set_sensory(new_sensory, self.objects)
            last["sensory_updated_by_decoder"] = True
        if self.debug:
            last.update({k: torch.cat(v, 1 if k != "aux_logits" else 2) for k, v in dbg.items()})
            last.update(object_transformer_out=readout, decoder_logits_stride4=logits, sensory_into_decoder=sensory)
            if update_sensory:
                last["sensory_from_decoder"] = new_sensory
        return prob[0]

    def _memorise(self, image: torch.Tensor, feats: dict, last: dict) -> None:
        net, mem = self.net, self.memory
        mem.init_sensory(self.objects, tuple(feats["key"].shape[-2:]), image.device, image.dtype)
        sensory = mem.get_sensory(self.objects)
        value, new_sensory, summaries = net.encode_mask(image, feats["pix_feat"], sensory, self.last_mask)
        mem.add(feats["key"], feats["shrinkage"], feats["selection"], value, summaries, self.objects)
        self.last_mem_t = self.t
        mem.set_sensory(new_sensory, self.objects)
        if self.debug:
            last.update(sensory_into_mask_encoder=sensory, mask_value=value, sensory_after_mask_encoder=new_sensory,
                        obj_summaries_this_frame=summaries)


# ---------------------------------------------------------------------------------- whole videos


def _resized(h: int, w: int, size: int) -> tuple[int, int]:
    # the reader's torchvision Resize(size): shorter side -> size, longer side -> int(size * long / short)
    return (size, int(size * w / h)) if h <= w else (int(size * h / w), size)


def _plan_sizes(h: int, w: int, cfg: dict) -> list[tuple[int, int]]:
    """Processing sizes: the reader's resize (``size``), then InferenceCore's (``max_internal_size``)."""
    sizes = [(h, w)]
    if cfg["size"] and cfg["size"] > 0 and min(h, w) > cfg["size"]:
        sizes.append(_resized(h, w, cfg["size"]))
    s = cfg["max_internal_size"]
    ch, cw = sizes[-1]
    if s and s > 0 and min(ch, cw) > s:
        sizes.append((int(ch / min(ch, cw) * s), int(cw / min(ch, cw) * s)))
    return sizes


def iterate_images(net: CutieNet, num_frames: int, image_at: Callable[[int], torch.Tensor],
                   given: dict[int, torch.Tensor], cfg: dict, *, debug: bool = False
                   ) -> Iterator[tuple[int, torch.Tensor, list[int], InferenceCore]]:
    """Core loop: ``image_at(t)`` -> (3, H, W) in [0, 1]; ``given`` {frame: (H, W) long label map}.

    Frames before the first given mask are skipped (as eval_vos.py does).  Yields (t, probabilities
    (N+1, H, W) at input resolution in the order objects were given, that order, core).
    """
    if cfg.get("flip_aug"):
        raise ValueError("flip_aug is not supported (the official DAVIS evaluation does not use it)")
    first = object_first_frames({k: v.cpu().numpy() for k, v in given.items()})
    core = InferenceCore(net, cfg, debug=debug)
    start = min(given)
    any_map = given[start]
    sizes = _plan_sizes(*any_map.shape[-2:], cfg)
    for t in range(start, num_frames):
        image = image_at(t)
        mask, objs = given.get(t), []
        if mask is not None:
            objs = sorted(int(v) for v in torch.unique(mask).tolist() if v not in (0, 255))
            objs = [o for o in objs if o in first]
        for i, size in enumerate(sizes[1:]):
            antialias = i == 0 and cfg["size"] and cfg["size"] > 0 and min(sizes[0]) > cfg["size"]
            image = F.interpolate(image[None], size=size, mode="bilinear", align_corners=False,
                                  antialias=bool(antialias))[0]
            if mask is not None:
                mask = F.interpolate(mask[None, None].float(), size=size, mode="nearest-exact")[0, 0].round().long()
        prob = core.step(image, mask if objs else None, objs if objs else None, end=(t == num_frames - 1))
        for size in reversed(sizes[:-1]):
            prob = F.interpolate(prob[None], size=size, mode="bilinear", align_corners=False)[0]
        yield t, prob, list(core.objects), core


def iterate_video(net: CutieNet, frames: np.ndarray, masks, cfg: dict, *, debug: bool = False):
    """Run Cutie over a video with the given masks (one first-frame label map or {frame: label map})."""
    given = given_masks(frames, masks)
    param = next(net.parameters())
    tensors = {k: torch.from_numpy(np.asarray(v).astype(np.int64)).to(param.device) for k, v in given.items()}
    yield from iterate_images(net, len(frames), lambda t: to_image(frames[t], param.device).to(param.dtype),
                              tensors, cfg, debug=debug)


@torch.inference_mode()
def segment_video(net: CutieNet, frames: np.ndarray, masks, cfg: dict, *, progress: bool = False,
                  desc: str = "cutie") -> np.ndarray:
    """frames uint8 (T, H, W, 3), given masks -> float32 (K+1, T, H, W) probabilities (background,
    then objects in sorted label order; an object is 0 before its first frame, background 1)."""
    given = given_masks(frames, masks)
    labels = list(object_first_frames(given))
    out = np.zeros((len(labels) + 1, *np.asarray(frames).shape[:3]), dtype=np.float32)
    out[0] = 1.0
    steps = iterate_video(net, frames, given, cfg)
    for t, prob, order, _ in tqdm(steps, total=len(frames) - min(given), desc=desc, disable=not progress,
                                  leave=False):
        prob = prob.float().cpu().numpy()
        out[0, t] = prob[0]
        for i, obj in enumerate(order, 1):
            out[labels.index(obj) + 1, t] = prob[i]
    return out
