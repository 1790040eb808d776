"""Cutie's memories: pixel memory (working + long-term, per bucket), sensory memory, object memory.

Behaviour follows the official ``MemoryManager`` / ``KeyValueMemoryStore``:

* a *bucket* holds the objects first given on the same frame; it has its own keys and its own
  permanent part (the frame where its objects were given: never trimmed, not counted in the budgets);
  every memory frame appends its h*w elements (row-major) to every bucket;
* without long-term memory (DAVIS setting) the non-permanent part keeps only its newest
  ``(max_mem_frames - 1) * HW`` elements (FIFO);
* with long-term memory, once the non-permanent working part holds ``(T_max) * HW`` elements, the
  least-used long-term elements are first cut to ``L_max - P - B`` (if long-term memory holds at least
  ``L_max - P``), then all non-permanent working elements except the newest ``T_min * HW`` are
  consolidated into ``P`` prototypes (highest normalised usage first) appended to long-term memory;
* sensory memory: one (C^s, h, w) map per object; object memory: per object the running sum of the
  (Q, C + 1) summaries of every memory frame (never trimmed).

Differences from the official code, only where it fails: top-k is capped at the memory size (the
official read raises when a bucket holds fewer than ``top_k`` elements, i.e. frames below ~96x96),
and so are the prototype / survivor counts.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from models.readout import similarity, topk_readout

__all__ = ["MemoryConfig", "Bucket", "MemoryManager"]


@dataclass
class MemoryConfig:
    """Memory settings (names as in the official eval_config, ``long_term.*`` flattened)."""

    top_k: int = 30
    use_long_term: bool = False
    max_mem_frames: int = 5
    count_usage: bool = True
    long_term_max_mem_frames: int = 10
    long_term_min_mem_frames: int = 5
    num_prototypes: int = 128
    max_num_tokens: int = 10000
    buffer_tokens: int = 2000

    def __post_init__(self) -> None:
        if self.top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {self.top_k}")
        if self.max_mem_frames < 1:
            raise ValueError(f"max_mem_frames must be >= 1, got {self.max_mem_frames}")
        if self.use_long_term:
            if not 1 <= self.long_term_min_mem_frames < self.long_term_max_mem_frames:
                raise ValueError("need 1 <= long_term min_mem_frames < max_mem_frames")
            if self.num_prototypes < 1 or self.max_num_tokens < self.num_prototypes + self.buffer_tokens:
                raise ValueError("need 1 <= num_prototypes and num_prototypes + buffer_tokens <= max_num_tokens")

    @property
    def work_frames(self) -> int:
        """Non-permanent working-memory budget in frames (the official code subtracts the first frame)."""
        return (self.long_term_max_mem_frames if self.use_long_term else self.max_mem_frames) - 1


@dataclass
class Bucket:
    """Elements of one bucket: key (Ck, n), shrinkage (1, n), value (objects, Cv, n); for the
    non-permanent part (or all of long-term memory) optional selection (Ck, m) and use/life (m,)."""

    objects: list
    key: torch.Tensor
    shrinkage: torch.Tensor
    value: torch.Tensor
    perm: int = 0
    selection: torch.Tensor | None = None
    use: torch.Tensor | None = None
    life: torch.Tensor | None = None

    @property
    def size(self) -> int:
        return self.key.shape[-1]

    @property
    def non_perm(self) -> int:
        return self.size - self.perm

    def append(self, key, shrinkage, value, selection, count_usage: bool) -> None:
        n = key.shape[-1]
        self.key = torch.cat([self.key, key], -1)
        self.shrinkage = torch.cat([self.shrinkage, shrinkage], -1)
        self.value = torch.cat([self.value, value], -1)
        if selection is not None:
            self.selection = selection if self.selection is None else torch.cat([self.selection, selection], -1)
        if count_usage:
            # float32 as the official counters (float64 only when the whole network runs in float64)
            dtype = torch.float64 if key.dtype == torch.float64 else torch.float32
            use = torch.zeros(n, device=key.device, dtype=dtype)
            life = torch.full((n,), 1e-7, device=key.device, dtype=dtype)
            self.use = use if self.use is None else torch.cat([self.use, use])
            self.life = life if self.life is None else torch.cat([self.life, life])

    def usage(self) -> torch.Tensor:
        if self.use is None:
            raise RuntimeError("usage is not counted for this memory")
        return self.use / self.life

    def update_usage(self, usage: torch.Tensor) -> None:
        """usage over all elements of the bucket; the permanent part is not counted."""
        if self.use is None:
            return
        usage = usage[self.perm:]
        if usage.numel() == 0:
            return
        self.use += usage.to(self.use.dtype)
        self.life += 1

    def keep_non_perm(self, index: torch.Tensor | slice) -> None:
        """Keep the permanent part plus the non-permanent elements selected by ``index``."""
        p = self.perm

        def sel(t):
            return torch.cat([t[..., :p], t[..., p:][..., index]], -1)

        self.key, self.shrinkage, self.value = sel(self.key), sel(self.shrinkage), sel(self.value)
        if self.selection is not None:
            self.selection = self.selection[..., index]
        if self.use is not None:
            self.use, self.life = self.use[index], self.life[index]


@dataclass
class MemoryManager:
    """All memories of one video.  Objects are identified by their labels."""

    config: MemoryConfig
    sensory_dim: int = 256
    work: dict = field(default_factory=dict)      # bucket id -> Bucket
    long: dict = field(default_factory=dict)      # bucket id -> Bucket (no permanent part)
    sensory: dict = field(default_factory=dict)   # object -> (C^s, h, w)
    obj_memory: dict = field(default_factory=dict)  # object -> (Q, C + 1)
    hw: int | None = None
    #: bookkeeping for tests and benchmarks
    events: list = field(default_factory=list)
    long_term_reads: int = 0

    @property
    def engaged(self) -> bool:
        return bool(self.work)

    def bucket_of(self, obj) -> int:
        for bid, bucket in self.work.items():
            if obj in bucket.objects:
                return bid
        raise KeyError(obj)

    # ---------------------------------------------------------------- sensory memory
    def init_sensory(self, objects, grid: tuple[int, int], device, dtype=torch.float32) -> None:
        for obj in objects:
            if obj not in self.sensory:
                self.sensory[obj] = torch.zeros((self.sensory_dim, *grid), device=device, dtype=dtype)

    def get_sensory(self, objects) -> torch.Tensor:
        return torch.stack([self.sensory[o] for o in objects], 0).unsqueeze(0)

    def set_sensory(self, sensory: torch.Tensor, objects) -> None:
        for i, obj in enumerate(objects):
            self.sensory[obj] = sensory[0, i]

    def get_obj_memory(self, objects) -> torch.Tensor:
        return torch.stack([self.obj_memory[o] for o in objects], 0).unsqueeze(0)

    # ---------------------------------------------------------------- reading
    def read_visual(self, bid: int, query_key: torch.Tensor, selection: torch.Tensor) -> torch.Tensor:
        """Top-k read of bucket ``bid`` for query (1, Ck, h, w) -> visual readout (1, objects, Cv, h, w).

        With long-term memory the long-term elements come first, one top-k over both; usage counters
        are updated as the official code does."""
        cfg = self.config
        h, w = query_key.shape[-2:]
        work = self.work[bid]
        lt = self.long.get(bid) if cfg.use_long_term else None
        if lt is not None:
            key = torch.cat([lt.key, work.key], -1)
            shrinkage = torch.cat([lt.shrinkage, work.shrinkage], -1)
            value = torch.cat([lt.value, work.value], -1)
            self.long_term_reads += 1
        else:
            key, shrinkage, value = work.key, work.shrinkage, work.value
        sim = similarity(key[None], shrinkage[None], query_key.flatten(2), selection.flatten(2))[0]
        objects, cv = value.shape[:2]
        readout, usage = topk_readout(sim, value.flatten(0, 1), cfg.top_k, subtract_max=False)
        if cfg.use_long_term:
            if lt is not None:
                work.update_usage(usage[lt.size:])
                if cfg.count_usage:
                    lt.update_usage(usage[:lt.size])
            else:
                work.update_usage(usage)
        # contiguous (channels first) as the official dense product: a transposed view would make every
        # following convolution run channels-last (measured 2x slower per frame at 480x864)
        return readout.contiguous().view(1, objects, cv, h, w)

    # ---------------------------------------------------------------- writing
    def add(self, key, shrinkage, selection, value, summaries, objects) -> None:
        """Memorise one frame: key (1, Ck, h, w), shrinkage (1, 1, h, w), selection (1, Ck, h, w),
        value (1, N, Cv, h, w) and summaries (1, N, Q, C + 1) of the objects ``objects`` (in that order)."""
        cfg = self.config
        if self.hw is None:
            self.hw = key.shape[-2] * key.shape[-1]
        k, s = key[0].flatten(1), shrinkage[0].flatten(1)
        e = selection[0].flatten(1) if cfg.use_long_term else None
        v = value[0].flatten(2)
        for i, obj in enumerate(objects):
            if obj in self.obj_memory:
                self.obj_memory[obj] = self.obj_memory[obj] + summaries[0, i]
            else:
                self.obj_memory[obj] = summaries[0, i]
        index = {obj: i for i, obj in enumerate(objects)}
        known = {o for b in self.work.values() for o in b.objects}
        for bucket in self.work.values():
            rows = [index[o] for o in bucket.objects]
            bucket.append(k, s, v[rows], e, cfg.use_long_term)
        new = [o for o in objects if o not in known]
        if new:  # a new bucket: this frame is its permanent memory
            bid = max(self.work, default=-1) + 1
            self.work[bid] = Bucket(list(new), k, s, v[[index[o] for o in new]], perm=k.shape[-1])
        for bid, bucket in self.work.items():
            if cfg.use_long_term:
                if bucket.non_perm >= cfg.work_frames * self.hw:
                    self._consolidate(bid)
            elif bucket.non_perm > cfg.work_frames * self.hw:
                before = bucket.size
                keep = cfg.work_frames * self.hw
                bucket.keep_non_perm(slice(bucket.non_perm - keep, None) if keep else slice(0, 0))
                self.events.append(("fifo", bid, before, bucket.size))

    def _consolidate(self, bid: int) -> None:
        cfg, hw = self.config, self.hw
        work = self.work[bid]
        lt = self.long.get(bid)
        if lt is not None and lt.size >= cfg.max_num_tokens - cfg.num_prototypes:
            survivors = cfg.max_num_tokens - cfg.num_prototypes - cfg.buffer_tokens
            if lt.use is None:
                raise RuntimeError("long-term memory is full but its usage is not counted (count_usage=False)")
            before = lt.size
            _, keep = torch.topk(lt.usage(), k=min(survivors, lt.size))
            lt.keep_non_perm(keep)
            self.events.append(("long_term_removal", bid, before, lt.size))

        n_recent = (cfg.long_term_min_mem_frames - 1) * hw
        p, n_cand = work.perm, work.non_perm - n_recent
        if n_cand <= 0:
            return
        cand_key = work.key[:, p:p + n_cand]
        cand_shrinkage = work.shrinkage[:, p:p + n_cand]
        cand_selection = work.selection[:, :n_cand]
        cand_value = work.value[..., p:p + n_cand]
        usage = work.usage()[:n_cand]
        _, picked = torch.topk(usage, k=min(cfg.num_prototypes, n_cand), sorted=True)
        proto_key = cand_key[:, picked]
        proto_selection = cand_selection[:, picked]
        # potentiation: each prototype is a full-softmax read of the candidates (max subtracted)
        sim = similarity(cand_key[None], cand_shrinkage[None], proto_key[None], proto_selection[None])[0]
        affinity = torch.softmax(sim, dim=1)                    # (P, candidates)
        proto_value = cand_value @ affinity.t()                 # (objects, Cv, P)
        proto_shrinkage = cand_shrinkage @ affinity.t()         # (1, P)

        before = work.size
        if work.non_perm > n_recent:
            work.keep_non_perm(slice(n_cand, None))
        if lt is None:
            lt = self.long[bid] = Bucket(list(work.objects), proto_key[:, :0], proto_shrinkage[:, :0],
                                         proto_value[..., :0])
        lt.append(proto_key, proto_shrinkage, proto_value, None, cfg.count_usage)
        self.events.append(("consolidation", bid, before, work.size))
