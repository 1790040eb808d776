"""XMem memory with object groups: objects given on later frames (the official YouTube-VOS / MOSE path).

The official ``KeyValueMemoryStore`` keeps one key tensor shared by all objects and one value tensor per
*object group* (the objects first given on the same frame).  A later group's values cover only the
newest keys (a suffix), so each group reads with its own top-k softmax over that suffix; the usage that
drives consolidation comes from group 0 (which covers every key).  Consolidation and the working-memory
sieve slice each group's values by the group's own indices, and long-term prototypes of a later group
are those whose candidate index lies inside the group's extent -- all as in the official
``MemoryManager`` (read for facts; this is our own code).  Like the official code, removing obsolete
long-term elements with more than one group is not supported (it raises).

Used only when masks arrive after the first given frame; a video whose objects are all given on one
frame runs :class:`models.xmem.memory.MemoryManager` (the golden-tested path).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch

from models.xmem.memory import SensoryAndStores
from models.readout import similarity

__all__ = ["GroupedStore", "GroupedMemory"]


def _softmax_topk(sim: torch.Tensor, top_k: int | None) -> torch.Tensor:
    """(N, P) similarities -> (N, P) affinity: top-k softmax over memory elements (dim 0), max-subtracted."""
    if top_k is None:
        return torch.softmax(sim, dim=0)
    k = min(top_k, sim.shape[0])
    vals, idx = torch.topk(sim, k=k, dim=0)
    return torch.zeros_like(sim).scatter_(0, idx, torch.softmax(vals, dim=0))


@dataclass
class GroupedStore:
    """Keys (1, Ck, N), shrinkage, selection, usage counters, and a list of group values (n_g, Cv, N_g)."""

    count_usage: bool
    key: torch.Tensor | None = None
    shrinkage: torch.Tensor | None = None
    selection: torch.Tensor | None = None
    use_count: torch.Tensor | None = None
    life_count: torch.Tensor | None = None
    values: list = field(default_factory=list)
    groups: list = field(default_factory=list)  # object channel indices (0-based) per group

    @property
    def size(self) -> int:
        return 0 if self.key is None else self.key.shape[-1]

    @property
    def num_groups(self) -> int:
        return len(self.values)

    def engaged(self) -> bool:
        return self.key is not None

    def v_size(self, gi: int) -> int:
        return self.values[gi].shape[-1]

    def _add_keys(self, key, shrinkage, selection) -> None:
        n = key.shape[-1]
        cat = lambda old, new: new if old is None else torch.cat([old, new], -1)  # noqa: E731
        self.key = cat(self.key, key)
        if shrinkage is not None:
            self.shrinkage = cat(self.shrinkage, shrinkage)
        if selection is not None:
            self.selection = cat(self.selection, selection)
        if self.count_usage:
            self.use_count = cat(self.use_count, torch.zeros((1, 1, n), device=key.device))
            self.life_count = cat(self.life_count, torch.full((1, 1, n), 1e-7, device=key.device))

    def add_frame(self, key, value, shrinkage, selection, objects: list[int]) -> None:
        """Working memory: ``value`` (N_all, Cv, n); known groups grow, new objects form a new group."""
        self._add_keys(key, shrinkage, selection)
        remaining = list(objects)
        for gi, group in enumerate(self.groups):
            for obj in group:
                remaining.remove(obj)
            self.values[gi] = torch.cat([self.values[gi], value[group]], -1)
        if remaining:
            self.values.append(value[remaining])
            self.groups.append(remaining)

    def add_prototypes(self, key, values: list, shrinkage) -> None:
        """Long-term memory: per-group prototype values (None = nothing for that group)."""
        self._add_keys(key, shrinkage, None)
        for gi, gv in enumerate(values):
            if gv is None:
                continue
            if gi < self.num_groups:
                self.values[gi] = torch.cat([self.values[gi], gv], -1)
            else:
                self.values.append(gv)

    def update_usage(self, usage: torch.Tensor) -> None:
        if self.count_usage:
            self.use_count += usage.view_as(self.use_count)
            self.life_count += 1

    def usage(self) -> torch.Tensor:
        return self.use_count / self.life_count

    def sieve(self, start: int, end: int, min_size: int) -> None:
        """Keep elements outside [start, end) (end < 0 counts from the end); group values shorter than
        ``min_size`` are left alone (they were not consolidated)."""
        def cut(t):
            return t[..., :start] if end == 0 else torch.cat([t[..., :start], t[..., end:]], -1)
        for name in ("key", "shrinkage", "selection", "use_count", "life_count"):
            t = getattr(self, name)
            if t is not None:
                setattr(self, name, cut(t))
        self.values = [cut(v) if v.shape[-1] >= min_size else v for v in self.values]

    def remove_obsolete(self, max_size: int) -> None:
        if self.num_groups > 1:
            raise NotImplementedError(
                "XMem long-term memory is full and objects were given on different frames: the official code "
                "does not support removing long-term elements with several object groups either; raise "
                "max_long_term_elements")
        usage = self.usage().flatten()
        smallest, _ = torch.topk(usage, k=self.size - max_size, largest=False, sorted=True)
        keep = usage > smallest[-1]
        for name in ("key", "shrinkage", "selection", "use_count", "life_count"):
            t = getattr(self, name)
            if t is not None:
                setattr(self, name, t[..., keep])
        self.values = [v[..., keep] for v in self.values]


@dataclass
class GroupedMemory(SensoryAndStores):
    """Sensory, working and long-term memory of one video with object groups (API of MemoryManager)."""

    store_class: ClassVar[type] = GroupedStore
    consolidations: int = 0

    def read(self, query_key: torch.Tensor, selection: torch.Tensor | None) -> torch.Tensor:
        """query (1, Ck, h, w) -> readout (N_known, Cv, h, w), groups in order."""
        h, w = query_key.shape[-2:]
        qk = query_key.flatten(2)
        qe = selection.flatten(2) if selection is not None else None
        cfg, work, long = self.config, self.work, self.long
        top_k = cfg.top_k
        if cfg.enable_long_term and long.engaged():
            n_long = long.size
            sim = similarity(torch.cat([long.key, work.key], -1), torch.cat([long.shrinkage, work.shrinkage], -1),
                             qk, qe)[0].t()  # (N, P)
            sim_long, sim_work = sim[:n_long], sim[n_long:]
            aff0 = _softmax_topk(torch.cat([sim_long[n_long - long.v_size(0):], sim_work], 0), top_k)
            affinities = [aff0]
            for gi in range(1, work.num_groups):
                if gi < long.num_groups:
                    part = torch.cat([sim_long[n_long - long.v_size(gi):], sim_work[work.size - work.v_size(gi):]], 0)
                else:
                    part = sim_work[work.size - work.v_size(gi):]
                affinities.append(_softmax_topk(part, top_k))
            values = [torch.cat([long.values[gi], gv], -1) if gi < long.num_groups else gv
                      for gi, gv in enumerate(work.values)]
            usage = aff0.sum(1)
            work.update_usage(usage[n_long:])
            if long.count_usage:
                long.update_usage(usage[:n_long])
        else:
            sim = similarity(work.key, work.shrinkage, qk, qe)[0].t()
            aff0 = _softmax_topk(sim, top_k)
            affinities = [aff0] + [_softmax_topk(sim[work.size - work.v_size(gi):], top_k)
                                   for gi in range(1, work.num_groups)]
            values = work.values
            if cfg.enable_long_term:
                work.update_usage(aff0.sum(1))
        out = torch.cat([gv @ aff for gv, aff in zip(values, affinities)], 0)  # (n, Cv, P)
        return out.view(out.shape[0], out.shape[1], h, w)

    def add(self, key, shrinkage, value, selection, objects: list[int]) -> None:
        """Append one frame: key (1, Ck, h, w), value (1, N_all, Cv, h, w); ``objects`` its 0-based channels."""
        if self.hw is None:
            self.hw = key.shape[-2] * key.shape[-1]
        cfg = self.config
        sel = selection.flatten(2) if (selection is not None and cfg.enable_long_term) else None
        self.work.add_frame(key.flatten(2), value[0].flatten(2), shrinkage.flatten(2), sel, objects)
        if cfg.enable_long_term and self.work.size >= cfg.max_mid_term_frames * self.hw:
            limit = cfg.max_long_term_elements - cfg.num_prototypes
            if self.long.size >= limit:
                if not self.long.count_usage:
                    raise RuntimeError("long-term memory is full but its usage is not counted; enable "
                                       "enable_long_term_count_usage")
                self.long.remove_obsolete(limit)
            self._consolidate()

    def _consolidate(self) -> None:
        cfg, hw, work = self.config, self.hw, self.work
        min_work = cfg.min_mid_term_frames * hw
        total = work.size
        cand_values = []
        for gv in work.values:
            size = gv.shape[-1]
            if size == total or size > min_work + hw:
                cand_values.append(gv[..., hw:size - min_work + hw])
            else:
                cand_values.append(None)
        start, end = hw, total - min_work + hw
        cand_key = work.key[..., start:end]
        cand_shrinkage = work.shrinkage[..., start:end]
        cand_selection = work.selection[..., start:end]
        usage = work.usage()[..., start:end].flatten()
        n = cand_key.shape[-1]
        _, picked = torch.topk(usage, k=min(cfg.num_prototypes, usage.numel()), sorted=True)
        proto_key = cand_key[..., picked]
        sim = similarity(cand_key, cand_shrinkage, proto_key, cand_selection[..., picked])[0].t()  # (N, P)
        affinities = []
        for gv in cand_values:
            if gv is None:
                affinities.append(None)
                continue
            valid = picked >= n - gv.shape[-1]
            aff = torch.softmax(sim[n - gv.shape[-1]:][:, valid], dim=0) if valid.any() else None
            affinities.append(aff)
        proto_values = [gv @ aff if aff is not None else None for gv, aff in zip(cand_values, affinities)]
        proto_shrinkage = cand_shrinkage @ affinities[0]
        work.sieve(hw, -min_work + hw, min_size=min_work + hw)
        self.long.add_prototypes(proto_key, proto_values, proto_shrinkage)
        self.consolidations += 1
