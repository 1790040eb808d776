"""How many CPU threads one process of the toolkit uses: the one thread policy (torch, numba, OpenCV).

By default torch starts one intra-op thread per core of the machine in every process; with other work on
the machine (other runs, ``--workers N``, several SLURM tasks on one node) that oversubscribes the CPU
and makes everything slower, not faster.  The rule, used by ``harness.run`` and its worker processes:

1. ``--threads N`` given: N;
2. else ``OMP_NUM_THREADS`` set (a positive integer): that, per process (what OpenMP programs do);
3. else the usable cores divided by the worker processes (at least 1), where the usable cores are the
   CPUs in this process's affinity mask (``taskset``, cgroup CPU sets, SLURM's ``task/affinity`` or
   ``task/cgroup`` binding), capped by ``SLURM_CPUS_PER_TASK`` when SLURM sets it (under
   ``TaskPlugin=task/none`` the mask is the whole node, so the allocation must come from SLURM).

:func:`apply_threads` sets that count for torch (intra-op and, while it can still be set, inter-op),
numba (its parallel kernels; ``NUMBA_NUM_THREADS`` when numba is not imported yet) and OpenCV.  The
harness records the count (``run.json`` and each unit's ``timing.threads``): label propagation's scores
are identical for any count (tested), but torch's CPU reductions are split by thread, and STCN's scores
(--random-init, CPU) were measured to differ between 1 and 2 threads.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass

__all__ = ["ThreadChoice", "usable_cores", "choose_threads", "apply_threads", "describe_rule"]

#: the rule, as ``--help`` and the docs state it
RULE = ("default: $OMP_NUM_THREADS if set, else the usable cores (affinity mask, capped by "
        "$SLURM_CPUS_PER_TASK) divided by --workers, at least 1")


def describe_rule() -> str:
    return RULE


@dataclass(frozen=True)
class ThreadChoice:
    """A thread count and where it came from (``--threads``, ``OMP_NUM_THREADS`` or cores / workers)."""

    threads: int
    source: str

    def __str__(self) -> str:
        return f"{self.threads} thread(s) per process ({self.source})"


def _positive_int(text: str | None) -> int | None:
    try:
        value = int(str(text).strip())
    except (TypeError, ValueError):
        return None
    return value if value >= 1 else None


def usable_cores(environ: dict | None = None) -> int:
    """CPUs this process may run on: its affinity mask, capped by ``SLURM_CPUS_PER_TASK`` when set."""
    env = os.environ if environ is None else environ
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    slurm = _positive_int(env.get("SLURM_CPUS_PER_TASK"))
    if slurm is not None:
        cores = min(cores, slurm)
    return max(1, cores)


def choose_threads(threads: int | None = None, workers: int = 1, environ: dict | None = None,
                   cores: int | None = None) -> ThreadChoice:
    """The thread count of one process of a run with ``workers`` processes (see the module rule)."""
    if threads is not None:
        if int(threads) < 1:
            raise ValueError(f"--threads must be at least 1 (got {threads})")
        return ThreadChoice(int(threads), "--threads")
    env = os.environ if environ is None else environ
    omp = _positive_int(env.get("OMP_NUM_THREADS"))
    if omp is not None:
        return ThreadChoice(omp, "OMP_NUM_THREADS")
    workers = max(1, int(workers))
    n = usable_cores(env) if cores is None else max(1, int(cores))
    where = "SLURM_CPUS_PER_TASK" if _positive_int(env.get("SLURM_CPUS_PER_TASK")) else "cores"
    return ThreadChoice(max(1, n // workers), f"{n} usable {where} / {workers} worker(s)")


def apply_threads(n: int) -> int:
    """Use ``n`` threads in this process for torch (intra- and inter-op), numba and OpenCV; returns n.

    torch's inter-op pool can only be sized before its first parallel work: when that has happened the
    earlier size stays (inter-op threads only run independent operators side by side)."""
    n = int(n)
    if n < 1:
        raise ValueError(f"threads must be at least 1 (got {n})")
    import torch

    torch.set_num_threads(n)
    if torch.get_num_interop_threads() != n:
        try:
            torch.set_num_interop_threads(n)
        except RuntimeError:  # already used: it can be set once, before any inter-op work
            pass
    if "numba" in sys.modules:
        import numba

        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    else:  # read when numba is imported
        os.environ["NUMBA_NUM_THREADS"] = str(n)
    try:
        import cv2
    except ImportError:  # pragma: no cover - OpenCV is a dependency of davis_c
        pass
    else:
        cv2.setNumThreads(n)
    return n
