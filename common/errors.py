"""The one exception type for bad DAVIS input, shared by the mask I/O and the dataset reader."""
from __future__ import annotations

__all__ = ["DavisError"]


class DavisError(ValueError):
    """Bad DAVIS input (missing/unreadable file, wrong mask format, size mismatch ...).

    The message always names the offending file or video so a user can fix it without a debugger.
    """
