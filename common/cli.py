"""How every command-line tool of the toolkit ends: one top-level handler for signals and I/O failures.

Wrap a ``main(argv) -> int`` with :func:`cli_main` and it

* turns SIGTERM into :class:`Terminated` (a ``KeyboardInterrupt``), so a job scheduler's ``kill`` is handled
  exactly like Ctrl-C: writers abort, complete work is kept, one line is printed and the status is 143
  (128 + SIGTERM; Ctrl-C gives 130);
* catches ``OSError`` (disk full, read-only file system, no permission, a vanished file ...) and prints one
  line naming the path and the cause instead of a traceback, with status 2;
* catches :class:`common.locks.LockHeld` (another process writes the same output), status 2.

Writers are atomic (``common.atomic``) or write ``*.partial`` files removed on error, so nothing that
looks finished is left behind by any of these; a rerun cleans the rest.
"""
from __future__ import annotations

import contextlib
import errno
import functools
import os
import re
import signal
import sys
import threading
from typing import Callable, Iterator, Sequence

from common.locks import LockHeld

__all__ = ["prog", "Terminated", "cli_main", "sigterm_as_interrupt", "raise_if_terminated", "with_path", "describe_os_error", "os_error_cause",
           "is_output_full", "EXIT_ERROR", "EXIT_INTERRUPTED", "EXIT_TERMINATED"]

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 128 + signal.SIGTERM  # 143

_CAUSES = {
    errno.ENOSPC: "no space left on device",
    errno.EROFS: "read-only file system",
    errno.EDQUOT: "disk quota exceeded",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOENT: "no such file or directory",
    errno.EIO: "input/output error",
    errno.EFBIG: "file too large",
}
#: errors that mean "this output cannot be written at all" (every further write would fail the same way)
_FULL = (errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EFBIG)


class Terminated(KeyboardInterrupt):
    """SIGTERM received: raised in the main thread, handled like Ctrl-C (status 143)."""


#: set by the SIGTERM handler: Python drops an exception raised while a ``__del__`` or weakref callback
#: runs (h5py has many), so long loops also call :func:`raise_if_terminated` at safe points
_TERMINATED = threading.Event()


def raise_if_terminated() -> None:
    """Raise :class:`Terminated` if SIGTERM arrived (and its exception may have been swallowed)."""
    if _TERMINATED.is_set():
        raise Terminated()


def _errno_of(exc: BaseException) -> int | None:
    """The errno of an OSError, also when a library (h5py) only puts it in the message."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError):
            if exc.errno:
                return exc.errno
            m = re.search(r"errno\s*=\s*(\d+)", str(exc))
            if m:
                return int(m.group(1))
            text = str(exc).lower()
            for code, words in _CAUSES.items():
                if words in text:
                    return code
        exc = exc.__cause__ or exc.__context__
    return None


def os_error_cause(exc: BaseException) -> str:
    """Short cause of an OSError: "no space left on device", "read-only file system", ..."""
    code = _errno_of(exc)
    if code in _CAUSES:
        return _CAUSES[code]
    if code is not None:
        return os.strerror(code).lower()
    return (getattr(exc, "strerror", None) or str(exc) or type(exc).__name__).strip()


def is_output_full(exc: BaseException) -> bool:
    """True for disk full / read-only / quota: nothing more can be written, so stop instead of going on."""
    return isinstance(exc, OSError) and _errno_of(exc) in _FULL


def with_path(exc: OSError, path: str | os.PathLike) -> OSError:
    """``exc`` with ``path`` as its file name when it has none (a failed ``write`` or h5py's errors name
    no file), keeping the errno; use as ``raise with_path(exc, path) from exc``."""
    if not isinstance(exc, OSError) or exc.filename is not None:
        return exc
    code = _errno_of(exc)
    new = OSError(code, os.strerror(code) if code else " ".join(str(exc).split()), os.fspath(path))
    new.__cause__ = exc
    return new


def describe_os_error(exc: OSError) -> str:
    """``"<path>: <cause>"`` (one line); the path is the error's file name where it has one."""
    path = exc.filename if exc.filename is not None else None
    cause = os_error_cause(exc)
    if path is None:
        text = " ".join(str(exc).split())
        return text if cause.lower() in text.lower() else f"{text} ({cause})"
    if exc.filename2 is not None:
        path = f"{path} -> {exc.filename2}"
    return f"{os.fsdecode(path)}: {cause}"


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block SIGTERM raises :class:`Terminated` in the main thread (once; a second SIGTERM
    during the clean-up is ignored).  A no-op outside the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    def handler(signum, frame):
        if _TERMINATED.is_set():
            return
        _TERMINATED.set()
        raise Terminated()

    previous_hook = sys.unraisablehook

    def unraisable(info):  # the exception was dropped where Python cannot raise (a weakref callback,
        if isinstance(info.exc_value, Terminated):  # a __del__): the flag re-raises it at the next safe
            return  # point, so the user sees one line, not "Exception ignored in ..." and a traceback
        previous_hook(info)

    _TERMINATED.clear()
    previous = signal.signal(signal.SIGTERM, handler)
    sys.unraisablehook = unraisable
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        sys.unraisablehook = previous_hook


def cli_main(prog: str, interrupted: str = "finished work is kept; rerun the same command to resume"
             ) -> Callable[[Callable[[Sequence[str] | None], int]], Callable[[Sequence[str] | None], int]]:
    """Decorator for a CLI ``main(argv) -> int``: see the module docstring."""

    def decorate(main: Callable[[Sequence[str] | None], int]) -> Callable[[Sequence[str] | None], int]:
        @functools.wraps(main)
        def wrapper(argv: Sequence[str] | None = None) -> int:
            try:
                with sigterm_as_interrupt():
                    code = main(argv)
                    raise_if_terminated()  # a SIGTERM whose exception was swallowed on the way
                    return code
            except Terminated:
                print(f"{prog}: terminated (SIGTERM): {interrupted}", file=sys.stderr)
                return EXIT_TERMINATED
            except KeyboardInterrupt:
                print(f"{prog}: interrupted: {interrupted}", file=sys.stderr)
                return EXIT_INTERRUPTED
            except LockHeld as exc:
                print(f"{prog}: error: {exc}", file=sys.stderr)
                return EXIT_ERROR
            except OSError as exc:
                print(f"{prog}: error: {describe_os_error(exc)}", file=sys.stderr)
                return EXIT_ERROR

        return wrapper

    return decorate


def prog(module: str, script: str) -> str:
    """What a tool calls itself in ``usage:`` lines: ``script`` when this process was started as that
    console script (``davis-c-build``), else ``python -m module``."""
    argv0 = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if argv0 in (script, f"{script}.exe", f"{script}-script.py"):
        return script
    return f"python -m {module}"
