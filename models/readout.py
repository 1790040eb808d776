"""Memory reading shared by XMem and Cutie: the anisotropic L2 similarity and the top-k softmax readout."""
from __future__ import annotations

import math
import warnings

import torch

__all__ = ["similarity", "topk_readout"]


def similarity(mem_key: torch.Tensor, mem_shrinkage: torch.Tensor | None, query_key: torch.Tensor,
               query_selection: torch.Tensor | None) -> torch.Tensor:
    """Anisotropic negative L2 between memory (B, Ck, N) and queries (B, Ck, P) -> (B, P, N).

    S = -s_n * sum_c e_p[c] (k_n[c] - q_p[c])^2 / sqrt(Ck): expanded into matmul-friendly terms like
    the official code, but laid out query-major so top-k and softmax run over the contiguous last axis.
    Shrinkage (B, 1, N) belongs to the memory side, selection (B, Ck, P) to the query side.
    """
    ck = mem_key.shape[1]
    if query_selection is not None:
        qe = query_selection.transpose(1, 2)
        a_sq = qe @ mem_key.pow(2)
        two_ab = 2 * ((query_key * query_selection).transpose(1, 2) @ mem_key)
        b_sq = (query_selection * query_key.pow(2)).sum(1).unsqueeze(2)
        sim = -a_sq + two_ab - b_sq
    else:
        sim = -mem_key.pow(2).sum(1).unsqueeze(1) + 2 * (query_key.transpose(1, 2) @ mem_key)
    if mem_shrinkage is not None:
        return sim * mem_shrinkage.flatten(1).unsqueeze(1) / math.sqrt(ck)
    return sim / math.sqrt(ck)


def topk_readout(sim: torch.Tensor, value: torch.Tensor, top_k: int, *,
                 subtract_max: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k softmax read.

    sim (P, N) query-major similarities, value (C, N) -> readout (C, P) and usage (N,) (sum over
    queries of each element's weight).  Only the k kept weights per query are touched: the readout
    is a sparse-times-dense product instead of the official dense (N x P) affinity matmul.
    ``subtract_max=False`` exponentiates the k values as they are (Cutie's official arithmetic).
    """
    p, n = sim.shape
    k = min(top_k, n)
    top, idx = torch.topk(sim, k=k, dim=1)
    if subtract_max:
        weights = torch.softmax(top, dim=1)
    else:
        weights = top.exp()
        weights = weights / weights.sum(dim=1, keepdim=True)
    usage = torch.zeros(n, dtype=weights.dtype, device=weights.device).index_add_(0, idx.flatten(), weights.flatten())
    crow = torch.arange(0, p * k + 1, k, device=sim.device)
    with warnings.catch_warnings():  # "sparse CSR is beta" notice; the product used here is stable
        warnings.simplefilter("ignore", UserWarning)
        # sparse kernels lack bfloat16: under autocast (fast mode) the sparse product runs in float32
        dtype = torch.promote_types(weights.dtype, torch.float32)
        affinity = torch.sparse_csr_tensor(crow, idx.flatten(), weights.flatten().to(dtype), size=(p, n),
                                           check_invariants=False)
    with torch.autocast(sim.device.type, enabled=False):
        readout = (affinity @ value.t().to(affinity.dtype)).t()
    return readout, usage
