"""Leaderboard CSVs, tables, plots and an HTML report built from harness results (files only).

Modules: ``results`` (read a results tree into DataFrames), ``tables`` (aggregation rules and tables),
``plots`` (the paper's figures), ``report`` (index.html from the Jinja2 templates in ``templates/``),
``benchmark`` (which dataset a tree is on, whether the paper's columns apply), ``overlay`` (masks drawn on
frames), ``pages`` (per-video pages and the corruption gallery), ``figure`` (the paper's qualitative figure
and overlay videos, a CLI), ``paper`` (published reference numbers and ours next to them), ``robustness``
(mCP, relative performance, relative TTT gain, cost), ``synthetic`` (a made-up results tree for demos and
tests), ``build`` (the CLI). None of them imports ``models``, ``davis_c`` or ``torch``; frames are read
through ``harness.data``, imported only when pages or figures are drawn (the one exception to the contract
that the leaderboard reaches neither ``davis_c`` nor ``models``, listed in pyproject.toml). The benchmark's
names (strengths, corruptions, variants) come from :mod:`common.vocabulary`.
"""
from __future__ import annotations

import importlib
from typing import Any

__all__ = ["load_results", "build_tables", "build"]

_HOME = {"load_results": "leaderboard.results", "build_tables": "leaderboard.tables", "build": "leaderboard.build"}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(_HOME[name]), name)
    raise AttributeError(f"module 'leaderboard' has no attribute {name!r}")
