"""XMem's working and long-term memory: top-k reads, usage counting, consolidation, removal.

Behaviour follows the official ``MemoryManager`` / ``KeyValueMemoryStore`` for the case our
``segment`` API produces: all objects are annotated on the first frame, so there is exactly one
object group.  Elements are columns; a stored frame appends its h*w elements in row-major order.
Sensory memory (the hidden state) lives on :class:`MemoryManager` too.

Differences from the official code, all in situations where it crashes or is numerically fragile:
the top-k softmax subtracts the maximum before exponentiating; top-k is capped at the memory size;
a removal asked to remove zero elements is a no-op.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from models.readout import similarity, topk_readout

__all__ = ["MemoryConfig", "MemoryStore", "SensoryAndStores", "MemoryManager"]


@dataclass
class MemoryConfig:
    """Memory settings (names as in the official eval.py)."""

    top_k: int = 30
    enable_long_term: bool = True
    enable_long_term_count_usage: bool = False
    min_mid_term_frames: int = 5
    max_mid_term_frames: int = 10
    num_prototypes: int = 128
    max_long_term_elements: int = 10000

    def __post_init__(self) -> None:
        if self.top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {self.top_k}")
        if self.enable_long_term:
            if self.min_mid_term_frames < 2:
                raise ValueError("min_mid_term_frames must be >= 2 (the official code fails with 1)")
            if self.max_mid_term_frames <= self.min_mid_term_frames:
                raise ValueError("max_mid_term_frames must exceed min_mid_term_frames")
            if self.num_prototypes < 1 or self.max_long_term_elements <= self.num_prototypes:
                raise ValueError("need 1 <= num_prototypes < max_long_term_elements")


@dataclass
class MemoryStore:
    """Keys (1, Ck, N), shrinkage (1, 1, N), optional selection (1, Ck, N), values (objects, Cv, N)
    and, when ``count_usage``, use/life counters (1, 1, N)."""

    count_usage: bool
    key: torch.Tensor | None = None
    shrinkage: torch.Tensor | None = None
    selection: torch.Tensor | None = None
    value: torch.Tensor | None = None
    use_count: torch.Tensor | None = None
    life_count: torch.Tensor | None = None

    @property
    def size(self) -> int:
        return 0 if self.key is None else self.key.shape[-1]

    def engaged(self) -> bool:
        return self.key is not None

    def add(self, key: torch.Tensor, value: torch.Tensor, shrinkage: torch.Tensor,
            selection: torch.Tensor | None) -> None:
        n = key.shape[-1]
        fresh_use = torch.zeros((1, 1, n), device=key.device, dtype=torch.float32)
        fresh_life = torch.full((1, 1, n), 1e-7, device=key.device, dtype=torch.float32)

        def cat(old, new):
            return new if old is None else torch.cat([old, new], -1)

        self.key = cat(self.key, key)
        self.shrinkage = cat(self.shrinkage, shrinkage)
        if selection is not None:
            self.selection = cat(self.selection, selection)
        self.value = cat(self.value, value)
        if self.count_usage:
            self.use_count = cat(self.use_count, fresh_use)
            self.life_count = cat(self.life_count, fresh_life)

    def update_usage(self, usage: torch.Tensor) -> None:
        """Add this read's per-element usage; every element ages by one read."""
        if self.count_usage:
            self.use_count += usage.view_as(self.use_count)
            self.life_count += 1

    def usage(self) -> torch.Tensor:
        """Normalised usage use/life, (1, 1, N)."""
        if not self.count_usage:
            raise RuntimeError("usage is not counted for this memory")
        return self.use_count / self.life_count

    def _apply(self, fn) -> None:
        for name in ("key", "shrinkage", "selection", "value", "use_count", "life_count"):
            t = getattr(self, name)
            if t is not None:
                setattr(self, name, fn(t))

    def drop_range(self, start: int, end: int) -> None:
        """Delete elements [start, end) (end is a positive index)."""
        self._apply(lambda t: torch.cat([t[..., :start], t[..., end:]], -1))

    def keep(self, mask: torch.Tensor) -> None:
        self._apply(lambda t: t[..., mask])

    def remove_obsolete(self, max_size: int) -> int:
        """Drop the least-used elements so that at most ``max_size`` remain; returns how many went.

        As the official code: find the k = size - max_size smallest normalised usages and keep the
        elements strictly above the largest of them (ties at that threshold all go).
        """
        k = self.size - max_size
        if k <= 0:
            return 0
        usage = self.usage().flatten()
        smallest, _ = torch.topk(usage, k=k, largest=False, sorted=True)
        survived = usage > smallest[-1]
        before = self.size
        self.keep(survived)
        return before - self.size


@dataclass
class SensoryAndStores:
    """What every XMem memory holds: the settings, the sensory memory (hidden state, (1, N, Ch, h, w)) and a
    working and a long-term store of :attr:`store_class` (:class:`MemoryManager` for one object group,
    :class:`models.xmem.groups.GroupedMemory` for objects given on later frames)."""

    store_class: ClassVar[type]
    config: MemoryConfig
    hidden_dim: int
    hidden: torch.Tensor | None = None
    hw: int | None = None
    work: Any = field(init=False)
    long: Any = field(init=False)

    def __post_init__(self) -> None:
        self.work = self.store_class(count_usage=self.config.enable_long_term)
        self.long = self.store_class(count_usage=self.config.enable_long_term_count_usage)

    # ---------------------------------------------------------------- sensory memory
    def create_hidden(self, objects: int, key: torch.Tensor) -> None:
        """Zero hidden rows for objects that have none yet (shape (1, N, Ch, h, w))."""
        h, w = key.shape[-2:]
        fresh = lambda n: torch.zeros((1, n, self.hidden_dim, h, w), device=key.device)  # noqa: E731
        if self.hidden is None:
            self.hidden = fresh(objects)
        elif self.hidden.shape[1] < objects:
            self.hidden = torch.cat([self.hidden, fresh(objects - self.hidden.shape[1])], 1)


@dataclass
class MemoryManager(SensoryAndStores):
    """Sensory, working and long-term memory of one video."""

    store_class: ClassVar[type] = MemoryStore
    #: bookkeeping for tests/benchmarks: reads that used long-term memory, consolidations, removals
    long_term_reads: int = 0
    consolidations: int = 0
    removals: list = field(default_factory=list)

    # ---------------------------------------------------------------- reading
    def read(self, query_key: torch.Tensor, selection: torch.Tensor | None) -> torch.Tensor:
        """query key/selection (1, Ck, h, w) -> readout (N, Cv, h, w); updates usage counters."""
        h, w = query_key.shape[-2:]
        qk = query_key.flatten(2)
        qe = selection.flatten(2) if selection is not None else None
        use_long = self.config.enable_long_term and self.long.engaged()
        if use_long:
            key = torch.cat([self.long.key, self.work.key], -1)
            shrinkage = torch.cat([self.long.shrinkage, self.work.shrinkage], -1)
            value = torch.cat([self.long.value, self.work.value], -1)
            self.long_term_reads += 1
        else:
            key, shrinkage, value = self.work.key, self.work.shrinkage, self.work.value
        sim = similarity(key, shrinkage, qk, qe)[0]
        objects, cv = value.shape[:2]
        readout, usage = topk_readout(sim, value.flatten(0, 1), self.config.top_k)
        if use_long:
            n_long = self.long.size
            self.work.update_usage(usage[n_long:])
            self.long.update_usage(usage[:n_long])
        else:
            self.work.update_usage(usage)
        return readout.view(objects, cv, h, w)

    # ---------------------------------------------------------------- writing
    def add(self, key: torch.Tensor, shrinkage: torch.Tensor, value: torch.Tensor,
            selection: torch.Tensor | None) -> None:
        """Append one frame (key (1, Ck, h, w), shrinkage (1, 1, h, w), value (1, N, Cv, h, w)) to
        working memory, then consolidate/remove if working memory is full."""
        if self.hw is None:
            self.hw = key.shape[-2] * key.shape[-1]
        sel = selection.flatten(2) if (selection is not None and self.config.enable_long_term) else None
        self.work.add(key.flatten(2), value[0].flatten(2), shrinkage.flatten(2), sel)
        cfg = self.config
        if cfg.enable_long_term and self.work.size >= cfg.max_mid_term_frames * self.hw:
            limit = cfg.max_long_term_elements - cfg.num_prototypes
            if self.long.size >= limit:
                if not self.long.count_usage:
                    raise RuntimeError(
                        "long-term memory is full but its usage is not counted; enable "
                        "enable_long_term_count_usage (or leave it None to use eval.py's rule)")
                before = self.long.size
                self.long.remove_obsolete(limit)
                self.removals.append((before, self.long.size))
            self._consolidate()

    def _consolidate(self) -> None:
        """Turn the mid-term frames (all but the first frame and the newest T_min-1 frames) into
        ``num_prototypes`` long-term elements."""
        cfg, hw, work = self.config, self.hw, self.work
        start, end = hw, work.size - cfg.min_mid_term_frames * hw + hw
        cand_key = work.key[..., start:end]
        cand_shrinkage = work.shrinkage[..., start:end]
        cand_selection = work.selection[..., start:end]
        cand_value = work.value[..., start:end]
        usage = work.usage()[..., start:end].flatten()

        _, picked = torch.topk(usage, k=min(cfg.num_prototypes, usage.numel()), sorted=True)
        proto_key = cand_key[..., picked]
        proto_selection = cand_selection[..., picked]
        # potentiation: each prototype becomes a full-softmax read of the candidates
        affinity = torch.softmax(similarity(cand_key, cand_shrinkage, proto_key, proto_selection)[0], dim=1)
        proto_value = cand_value @ affinity.t()                  # (objects, Cv, P)
        proto_shrinkage = cand_shrinkage[0] @ affinity.t()       # (1, P)

        work.drop_range(start, end)
        self.long.add(proto_key, proto_value, proto_shrinkage.unsqueeze(0), None)
        self.consolidations += 1
