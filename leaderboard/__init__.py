"""Leaderboard CSVs, tables, plots and an HTML report built from harness results (files only).

Modules: ``results`` (read a results tree into DataFrames), ``tables`` (aggregation rules and tables),
``plots`` (the paper's figures), ``report`` (self-contained index.html), ``paper`` (published reference
numbers and ours next to them), ``robustness`` (mCP, relative performance, relative TTT gain, cost),
``synthetic`` (a made-up results tree for demos and tests), ``build`` (the CLI). None of them imports
``models`` or ``torch``.
"""
