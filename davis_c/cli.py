"""Small helpers shared by the command-line entry points of every package."""
from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["prog_name"]


def prog_name(module: str, script: str) -> str:
    """The program name for argparse's ``usage:`` line: the console script's name (``harness-score``) when the
    user started that, else ``python -m <module>`` (so ``--help`` shows the command the user can retype)."""
    return script if Path(sys.argv[0]).name == script else f"python -m {module}"
