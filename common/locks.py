"""The one output lock of the toolkit: a lock file held while a process writes into an output.

``davis_c.build`` holds ``<out>.lock`` for the whole build and ``harness.run`` holds
``<out>/<method>/.run.lock`` (one per ``--shard``), so two processes never write the same store or the
same results at once: the second one stops at once with :class:`LockHeld`, whose message names the lock
file and the holder's pid.

The lock is an advisory ``flock`` on the file, so the kernel releases it when the holder dies, even by
``kill -9``: a stale lock file (left by a killed process) is simply taken over, never waited on.  The
file is removed when the lock is released.  The holder's pid and command line are written into it, for
the message and for a human looking at it.
"""
from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Iterator

__all__ = ["LockHeld", "OutputLock", "hold_lock"]

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no locking (documented)
    fcntl = None  # type: ignore[assignment]


class LockHeld(RuntimeError):
    """Another live process holds the lock of this output; the message names it."""


def _holder(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return "another process"
    return f"pid {text[0]}" + (f" ({text[1][:120]})" if len(text) > 1 else "") if text else "another process"


class OutputLock:
    """An acquired lock on ``path``; :meth:`release` (or leaving the ``with`` block) frees it."""

    def __init__(self, path: str | os.PathLike, what: str = "this output") -> None:
        self.path = Path(path)
        self.what = what
        self._fh = None
        self._acquire()

    def _acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fh = open(self.path, "a+", encoding="utf-8")
            if fcntl is None:
                break
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.close()
                raise LockHeld(f"{self.path}: {self.what} is in use by {_holder(self.path)}; wait for it to "
                               "finish (or stop it), or use another output") from None
            # the previous holder may have removed the file between our open and our lock: retry on the new one
            try:
                same = os.stat(self.path).st_ino == os.fstat(fh.fileno()).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            fh.close()
        try:
            fh.seek(0)
            fh.truncate()
            fh.write(f"{os.getpid()}\n{' '.join(sys.argv)[:500]}\n")
            fh.flush()
        except OSError as exc:  # a full or read-only disk: no lock file is left behind, the error names it
            with contextlib.suppress(OSError):
                self.path.unlink()
            with contextlib.suppress(OSError):
                fh.close()
            code = exc.errno or 0
            raise OSError(code, os.strerror(code) if code else str(exc), str(self.path)) from exc
        self._fh = fh

    @property
    def held(self) -> bool:
        return self._fh is not None

    def release(self) -> None:
        """Remove the lock file and unlock (in that order, so a waiting opener retries on a new file)."""
        fh, self._fh = self._fh, None
        if fh is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()
        fh.close()

    def __enter__(self) -> "OutputLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self) -> None:  # an un-released lock is freed with its file object anyway
        fh = getattr(self, "_fh", None)
        if fh is not None:
            with contextlib.suppress(Exception):
                fh.close()


@contextlib.contextmanager
def hold_lock(path: str | os.PathLike, what: str = "this output") -> Iterator[OutputLock]:
    """``with hold_lock(path):`` -- hold the output lock for the block; raises :class:`LockHeld` at once
    when another process holds it."""
    lock = OutputLock(path, what)
    try:
        yield lock
    finally:
        lock.release()
