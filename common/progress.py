"""Progress that moves: bars counted in small units of work (frames, frame-variants, iterations) with an ETA
from the average rate since the start, and a relay that brings counts from worker processes.

>>> bar = Progress(total=1999 * 30, desc="corrupting", unit="frame-variant")
>>> bar.update(1)                                  # after every corrupted frame
>>> bar.eta()                                      # seconds left: elapsed / done * remaining

In a process pool the workers call the ``tick`` of a :class:`Relay` (one queue put per frame); a thread of
the parent drains the queue into the bar, so the bar moves while the parent waits for a task's result.
The ETA uses the mean rate since the first update (tqdm ``smoothing=0``): per-frame costs differ a lot
between corruptions (cartoon vs contrast) but every task mixes them, so the mean rate is steady where a
moving average would swing with each corruption.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable

from tqdm import tqdm

__all__ = ["Progress", "Relay", "null_tick", "progress_kwargs"]


def null_tick(n: int = 1) -> None:
    """A tick that does nothing (progress off)."""


def progress_kwargs(fn: Callable[..., Any], show: bool, given: dict | None = None) -> dict[str, bool]:
    """``{"progress": True}`` when ``show`` and ``fn`` has a ``progress`` parameter that ``given`` (the
    keyword arguments already passed) does not set; else ``{}``.  How the harness asks a model for its own
    frame / iteration bar (STCN, XMem and label propagation ``segment``, ``models.ttt.adapt``) without
    knowing the model."""
    import inspect

    if not show or "progress" in (given or {}):
        return {}
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return {}
    p = params.get("progress")
    return {"progress": True} if p is not None and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) else {}


class Progress:
    """A progress bar (tqdm) counting ``unit``s, plus an ETA computable with an injectable clock."""

    def __init__(self, total: int, desc: str, unit: str, *, enabled: bool = True,
                 clock: Callable[[], float] = time.monotonic, leave: bool = True, **tqdm_kw: Any) -> None:
        self.total = int(total)
        self.done = 0
        self.clock = clock
        self.start = clock()  # the ETA's time origin: the bar's creation
        self.updates = 0
        self._lock = threading.Lock()
        self.bar = tqdm(total=self.total, desc=desc, unit=unit, disable=not enabled, smoothing=0,
                        mininterval=0.5, leave=leave, dynamic_ncols=True, **tqdm_kw)

    def update(self, n: int = 1) -> None:
        if n <= 0:
            return
        with self._lock:
            self.done += int(n)
            self.updates += 1
            self.bar.update(int(n))

    def set_description(self, desc: str) -> None:
        self.bar.set_description_str(desc)

    def elapsed(self) -> float:
        return self.clock() - self.start

    def eta(self) -> float | None:
        """Seconds left at the mean rate since the start; None before any work is done."""
        if self.done <= 0:
            return None
        return self.elapsed() / self.done * max(self.total - self.done, 0)

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Relay:
    """Counts from worker processes to a :class:`Progress` of this process.

    ``Relay(progress, mp_context)``; pass ``relay.queue`` to the workers (pool ``initargs``) and call
    :func:`Relay.install` there; a worker's ``Relay.tick(n)`` then moves the parent's bar.  ``close``
    stops the draining thread (pending counts are applied first)."""

    _worker_queue = None  # in a worker process: the parent's queue

    def __init__(self, progress: Progress, mp_context) -> None:
        self.progress = progress
        self.queue = mp_context.Queue()
        self._thread = threading.Thread(target=self._drain, name="davis_c-progress", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while True:
            n = self.queue.get()
            if n is None:
                return
            self.progress.update(n)

    def close(self) -> None:
        if self._thread.is_alive():
            self.queue.put(None)
            self._thread.join(timeout=10)

    @staticmethod
    def install(queue) -> None:
        """In a worker process: send ticks to ``queue`` (None: ticks do nothing)."""
        Relay._worker_queue = queue

    @staticmethod
    def tick(n: int = 1) -> None:
        """In a worker process: count ``n`` units of work done (no-op without an installed queue)."""
        q = Relay._worker_queue
        if q is not None and n > 0:
            q.put(int(n))
