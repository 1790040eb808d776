"""Worker processes that never outlive their parent (``--workers N`` of the builder and the harness).

* :func:`exit_with_parent` (called in a worker's initializer) makes the worker exit when the parent dies,
  even by ``kill -9``: on Linux the kernel sends it SIGKILL (``PR_SET_PDEATHSIG``), and a watchdog
  thread checks the parent pid every half second (other systems, and the case where the parent died
  before the worker started).  With the workers gone, multiprocessing's resource tracker (which only
  waits for its users to close their end of its pipe) exits too.
* :func:`stop_pool` ends a pool's workers at once (on Ctrl-C or SIGTERM of the parent, which the workers
  do not receive when only the parent is signalled) instead of waiting for their current task.
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time

__all__ = ["exit_with_parent", "stop_pool"]

_PR_SET_PDEATHSIG = 1


def _watch(parent: int, interval: float) -> None:
    while True:
        if os.getppid() != parent:
            os._exit(1)
        time.sleep(interval)


def exit_with_parent(parent: int, interval: float = 0.5) -> None:
    """Make this (worker) process exit as soon as process ``parent`` is gone."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent:  # the parent died before we got here
        os._exit(1)
    threading.Thread(target=_watch, args=(parent, interval), daemon=True, name="exit-with-parent").start()


def stop_pool(pool) -> None:
    """Terminate the worker processes of a ``concurrent.futures.ProcessPoolExecutor`` and shut it down."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    for p in procs:
        with contextlib.suppress(Exception):
            p.terminate()
    with contextlib.suppress(Exception):
        pool.shutdown(wait=True, cancel_futures=True)
    for p in procs:
        with contextlib.suppress(Exception):
            p.join(5)
