"""Leaderboard CSVs, tables, plots and an HTML report built from harness results (files only)."""
