"""What a command-line tool calls itself in ``usage:`` lines: its console-script name when started as one
(``davis-c-build``), else ``python -m <module>``."""
from __future__ import annotations

import os
import sys

__all__ = ["prog"]


def prog(module: str, script: str) -> str:
    """``script`` when this process was started as that console script, else ``python -m module``."""
    argv0 = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if argv0 in (script, f"{script}.exe", f"{script}-script.py"):
        return script
    return f"python -m {module}"
