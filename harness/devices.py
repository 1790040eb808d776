"""Several units per GPU, several GPUs per node: which device and how many CPU threads each worker gets.

``--workers N`` starts N worker processes.  Their devices come from ``--devices`` or ``--device``:

* ``--devices 0,1,2,3``: CUDA device indices as this process sees them (``CUDA_VISIBLE_DEVICES``
  renumbers them from 0); ``--devices all``: every visible GPU;
* ``--device cuda`` (or the default on a machine with a GPU): every visible GPU as well, so a SLURM
  job given 4 GPUs uses all 4 and a one-GPU machine runs all N workers on that GPU;
* ``--device cuda:1`` / ``--device cpu``: that one device for every worker.

Worker ``w`` gets device ``w mod len(devices)`` (round-robin, so 8 workers on 4 GPUs put 2 on each),
and ``floor(cores / N)`` torch threads (at least 1), with ``cores`` the CPUs this process may run on
(``common.threads``, the one thread policy: the affinity mask, capped by ``SLURM_CPUS_PER_TASK``; the
command line replaces the count by ``--threads`` or ``OMP_NUM_THREADS`` when given).  Pure
functions, so the assignment is tested on a machine without a GPU.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Callable, Sequence

__all__ = ["DeviceError", "WorkerSlot", "usable_cores", "visible_cuda_count", "parse_devices", "resolve_devices",
           "assign_workers", "plan_workers", "describe_slots", "next_worker_index", "init_assigned_worker",
           "check_workers", "available_memory_mb", "SCORE_WORKER_MB"]


class DeviceError(ValueError):
    """A ``--device`` / ``--devices`` / ``--workers`` combination that cannot be used."""


@dataclass(frozen=True)
class WorkerSlot:
    """What one worker process runs on."""

    index: int          # worker number, 0..N-1
    device: str         # torch device string, e.g. "cuda:1" or "cpu"
    threads: int        # torch.set_num_threads for this worker


def usable_cores() -> int:
    """CPU cores this process may run on (``common.threads``: the affinity mask, capped by
    ``SLURM_CPUS_PER_TASK``)."""
    from common.threads import usable_cores as cores

    return cores()


def visible_cuda_count() -> int:
    """Number of GPUs torch sees (0 without CUDA); ``CUDA_VISIBLE_DEVICES`` restricts them."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def parse_devices(text: str | None) -> list[int] | str | None:
    """``"0,1,3"`` -> [0, 1, 3]; ``"all"`` -> "all"; None/"" -> None.  Duplicates are refused."""
    if text is None or not str(text).strip():
        return None
    text = str(text).strip()
    if text.lower() == "all":
        return "all"
    try:
        ids = [int(x) for x in text.split(",") if x.strip() != ""]
    except ValueError:
        raise DeviceError(f"--devices expects GPU indices such as 0,1,2,3 (or 'all'), got {text!r}") from None
    if not ids or any(i < 0 for i in ids):
        raise DeviceError(f"--devices {text!r}: give non-negative GPU indices such as 0,1,2,3")
    if len(set(ids)) != len(ids):
        raise DeviceError(f"--devices {text!r} lists a GPU twice; to run several workers on one GPU, use "
                          "--workers (workers are spread round-robin over the devices)")
    return ids


def resolve_devices(device: str, devices: list[int] | str | None, cuda_count: int) -> list[str]:
    """The device strings workers are spread over.

    ``device`` is the run's device (``cpu``, ``cuda``, ``cuda:1``, ...), ``devices`` the parsed
    ``--devices``, ``cuda_count`` the number of visible GPUs (:func:`visible_cuda_count`).
    """
    kind = device.split(":", 1)[0]
    if devices is not None:
        if kind != "cuda":
            raise DeviceError(f"--devices selects GPUs, but the device is {device!r}; use --device cuda")
        if ":" in device:
            raise DeviceError(f"give either --device {device} or --devices, not both")
        if cuda_count < 1:
            raise DeviceError("--devices: no CUDA GPU is visible to this process (CUDA_VISIBLE_DEVICES empty, "
                              "or torch was built without CUDA)")
        ids = list(range(cuda_count)) if devices == "all" else list(devices)
        bad = [i for i in ids if i >= cuda_count]
        if bad:
            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
            note = f" (CUDA_VISIBLE_DEVICES={visible} renumbers them 0..{cuda_count - 1})" if visible else ""
            raise DeviceError(f"--devices {','.join(map(str, bad))}: only {cuda_count} GPU(s) visible{note}")
        return [f"cuda:{i}" for i in ids]
    if device == "cuda":
        if cuda_count < 1:
            raise DeviceError("--device cuda: no CUDA GPU is visible to this process")
        return [f"cuda:{i}" for i in range(cuda_count)]
    return [device]


def assign_workers(workers: int, devices: Sequence[str], cores: int) -> list[WorkerSlot]:
    """Round-robin devices and an equal share of the cores for each of ``workers`` workers."""
    if workers < 1:
        raise DeviceError("--workers must be at least 1")
    if not devices:
        raise DeviceError("no device to run on")
    threads = max(1, cores // workers)
    return [WorkerSlot(w, devices[w % len(devices)], threads) for w in range(workers)]


def plan_workers(device: str | None, devices: str | None, workers: int,
                 cuda_count: int | None = None, cores: int | None = None) -> list[WorkerSlot]:
    """The command line's ``--device``, ``--devices`` and ``--workers`` -> one slot per worker.

    ``device`` None means cuda when a GPU is visible, else cpu (the harness default).
    """
    count = visible_cuda_count() if cuda_count is None else cuda_count
    if device is None:
        device = "cuda" if count > 0 or devices is not None else "cpu"
    return assign_workers(workers, resolve_devices(device, parse_devices(devices), count),
                          usable_cores() if cores is None else cores)


def describe_slots(slots: Sequence[WorkerSlot]) -> str:
    """``"4 workers: cuda:0 x2, cuda:1 x2; 4 torch threads each"``."""
    per: dict[str, int] = {}
    for s in slots:
        per[s.device] = per.get(s.device, 0) + 1
    spread = ", ".join(f"{d} x{n}" for d, n in per.items())
    threads = sorted({s.threads for s in slots})
    return (f"{len(slots)} worker(s): {spread}; {'/'.join(map(str, threads))} torch thread(s) each")


def next_worker_index(counter) -> int:
    """Take the next worker number from a shared ``multiprocessing`` Value (each worker takes one)."""
    with counter.get_lock():
        index = counter.value
        counter.value += 1
    return index


def init_assigned_worker(setup, slots: Sequence[WorkerSlot], counter, init: Callable | None = None) -> WorkerSlot:
    """Process-pool initializer: take a slot, put it into the run setup, then run ``init(setup)``.

    ``setup`` is the run's ``RunSetup`` (its ``device`` and ``threads`` are replaced by the slot's);
    ``init`` defaults to ``harness.executor.init_worker``.  Returns the slot taken.
    """
    import torch

    slot = slots[next_worker_index(counter) % len(slots)]
    if slot.device.startswith("cuda"):
        torch.cuda.set_device(slot.device)  # kernels and caches of this worker live on its own GPU
    if init is None:
        from harness.executor import init_worker as init
    init(replace(setup, device=slot.device, threads=slot.threads))
    return slot


def available_memory_mb() -> int | None:
    """Memory available to new processes (Linux ``MemAvailable``), MiB; None where unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


#: measured resident memory of one scoring worker process (numpy, numba kernels, one video's masks), MiB
SCORE_WORKER_MB = 450


def check_workers(workers: int, jobs: int, notify: Callable[[str], None] = print, *,
                  per_worker_mb: int = SCORE_WORKER_MB, what: str = "--workers") -> int:
    """The number of worker processes to start for ``jobs`` CPU-bound jobs: refused (:class:`ValueError`)
    when their estimated memory does not fit the memory available, a note when there are more workers than
    usable cores (they would only wait for each other).  Said before any work starts; ``jobs`` caps the
    number of workers."""
    if workers < 1:
        raise ValueError(f"{what} must be at least 1")
    n = max(1, min(workers, jobs))
    if n == 1:
        return 1
    need = n * per_worker_mb
    avail = available_memory_mb()
    if avail is not None and need > avail:
        raise ValueError(f"{what} {workers}: {n} worker processes need about {need / 1024:.1f} GiB "
                         f"(~{per_worker_mb} MB each) but {avail / 1024:.1f} GiB of memory is available; "
                         f"use --workers {max(1, avail // per_worker_mb)} or fewer")
    cores = usable_cores()
    if n > cores:
        notify(f"note: {what} {workers}: {n} worker processes on {cores} usable core(s) (~{per_worker_mb} MB each, "
               f"~{need / 1024:.1f} GiB in all) only wait for each other; --workers {cores} is as fast")
    return n


