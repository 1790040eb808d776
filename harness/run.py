"""``python -m harness.run``: the harness command line under its documented name (the code is
:mod:`harness.cli`; this module only runs it)."""
from __future__ import annotations

from harness.cli import build_parser, main

__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    raise SystemExit(main())
