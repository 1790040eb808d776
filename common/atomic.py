"""The one way this toolkit writes a file: completely, or not at all.

Every writer (masks, unit JSON, CSVs, reports, shard indexes, exports) goes through :func:`atomic_write`
(or its two shorthands): the content is written to a temporary file in the target's own folder, given
the final file mode, optionally fsynced, then renamed over the target with ``os.replace`` (atomic on
POSIX within one file system).  A crash or an error at any point leaves the old file (or none) and no
half-written one; the temporary file is removed on error.  Temporary names start with ``.<name>`` and
contain :data:`TEMP_MARK`, so :func:`remove_stale_temps` can clean what a ``kill -9`` left behind.

A folder of many files is written with :func:`atomic_dir`; a writer that needs a file *name* (h5py: the
shard writer, whose ``*.partial`` files span many calls, and the index) makes its own temporary name and
finishes with :func:`publish`; both end in the same mode setting, optional fsync and ``os.replace``.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Iterator

__all__ = ["FILE_MODE", "DIR_MODE", "TEMP_MARK", "atomic_write", "write_bytes_atomic", "write_text_atomic",
           "atomic_dir", "publish", "remove_stale_temps"]

def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: mode of every file the toolkit writes (what ``open`` would give under the umask; mkstemp alone gives
#: 0600, but results and masks are data meant to be shared and re-scored)
FILE_MODE = 0o666 & ~_umask()
#: mode of the folders it creates
DIR_MODE = 0o777 & ~_umask()
#: part of every temporary name, so stale temporaries are recognisable
TEMP_MARK = ".tmp-"


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", *, file_mode: int = FILE_MODE, fsync: bool = False,
                 encoding: str | None = None, newline: str | None = None) -> Iterator[IO]:
    """Context manager yielding a file object whose content replaces ``path`` when the block exits cleanly.

    ``mode`` is ``"wb"`` or ``"w"`` (text, ``encoding`` defaults to UTF-8).  Parent folders are created.
    On an exception inside the block (or while flushing/renaming) the temporary file is removed and the
    exception propagates; ``path`` is untouched.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}{TEMP_MARK}", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, file_mode)
        if mode == "w":
            fh = os.fdopen(fd, "w", encoding=encoding or "utf-8", newline=newline)
        else:
            fh = os.fdopen(fd, "wb")
        with fh:
            yield fh
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.filename is None:  # a failed write names no file: name the target
            from common.cli import with_path

            raise with_path(exc, path) from exc
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes, *, file_mode: int = FILE_MODE,
                       fsync: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`); returns the path."""
    with atomic_write(path, "wb", file_mode=file_mode, fsync=fsync) as fh:
        fh.write(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike, text: str, *, file_mode: int = FILE_MODE, fsync: bool = False,
                      newline: str | None = "") -> Path:
    """Write ``text`` (UTF-8, newlines as given) to ``path`` atomically; returns the path."""
    with atomic_write(path, "w", file_mode=file_mode, fsync=fsync, newline=newline) as fh:
        fh.write(text)
    return Path(path)


def publish(tmp: str | os.PathLike, path: str | os.PathLike, *, file_mode: int | None = FILE_MODE,
            dir_mode: int = DIR_MODE, fsync: bool = False) -> Path:
    """Move the finished temporary file or folder ``tmp`` into place as ``path``.

    A file gets ``file_mode`` (None keeps its mode) and, with ``fsync``, is flushed to disk first; a folder
    gets ``dir_mode`` and replaces an existing folder of that name (removed first: a folder cannot be
    renamed over a non-empty one).  Then ``os.replace``.
    """
    tmp, path = Path(tmp), Path(path)
    if tmp.is_dir():
        os.chmod(tmp, dir_mode)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
    else:
        if file_mode is not None:
            os.chmod(tmp, file_mode)
        if fsync:
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    os.replace(tmp, path)
    return path


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, *, dir_mode: int = DIR_MODE) -> Iterator[Path]:
    """Yield a temporary folder next to ``path``; when the block exits cleanly it replaces ``path`` (so the
    folder is always complete), on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}{TEMP_MARK}", dir=path.parent))
    try:
        yield tmp
        publish(tmp, path, dir_mode=dir_mode)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def remove_stale_temps(folder: str | os.PathLike, recursive: bool = True) -> int:
    """Delete temporary files left by an interrupted :func:`atomic_write` under ``folder``; returns the count."""
    folder = Path(folder)
    if not folder.is_dir():
        return 0
    pattern = f"**/.*{TEMP_MARK}*" if recursive else f".*{TEMP_MARK}*"
    n = 0
    for p in sorted(folder.glob(pattern), reverse=True):
        with contextlib.suppress(OSError):
            if p.is_dir() and not p.is_symlink():   # an atomic_dir that was killed
                shutil.rmtree(p)
            else:
                p.unlink()
            n += 1
    return n
