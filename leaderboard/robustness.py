"""Robustness metrics the VOS-robustness literature reports, from the leaderboard tables (pure functions).

Every metric is named in :data:`METRICS` with its one-line definition; the report prints those lines
next to the tables, so a reader never has to guess what a number means. Values are fractions (J&F in
[0, 1], ratios as ratios); the report shows J&F and relative changes in percent.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from leaderboard.results import STRENGTHS

__all__ = ["METRICS", "build_robustness", "build_relative_gain", "build_costs"]

#: metric column -> one-line definition (shown in the report and in docs/leaderboard.md).
METRICS: dict[str, str] = {
    "mCP": "mean corruption performance: the mean J&F over all 42 corrupted variants (the paper's Table 3 "
           "DAVIS-C column; clean excluded)",
    "rP_low": "relative performance at strength low: J&F(low) / J&F(clean)",
    "rP_med": "relative performance at strength med: J&F(med) / J&F(clean)",
    "rP_high": "relative performance at strength high: J&F(high) / J&F(clean)",
    "rP": "relative performance overall: mCP / J&F(clean) (1 = no loss under corruption)",
    "mCP_10": "mCP over the 30 variants of the 10 weight-free corruptions (no style1-4)",
    "rP_10": "mCP_10 / J&F(clean)",
    "relative_gain": "relative gain of a TTT method over its base on one variant: "
                     "(J&F(TTT) − J&F(base)) / J&F(base)",
    "ttt_s": "mean test-time-training seconds per video (over the method's ok units)",
    "inference_s": "mean inference (segmentation) seconds per video",
    "peak_memory_mb": "mean over videos of the peak memory of one video (GPU allocated on CUDA, "
                      "resident set on CPU), MiB",
    "peak_memory_mb_max": "largest peak memory of any one video, MiB",
}


def _ratio(num: float, den: float) -> float:
    return float(num / den) if np.isfinite(num) and np.isfinite(den) and den > 0 else float("nan")


def build_robustness(summary: pd.DataFrame) -> pd.DataFrame:
    """Per method: clean J&F, mCP and relative performance per strength and overall (14 and 10 corruptions).

    A metric is NaN when a column it needs is incomplete (the summary's rule); nothing is computed
    from partial means.
    """
    rows = []
    for _, r in summary.iterrows():
        row: dict[str, Any] = {"method": r.method, "clean": r.clean, "mCP": r["DAVIS-C"]}
        for s in STRENGTHS:
            row[f"rP_{s}"] = _ratio(r[s], r.clean)
        row["rP"] = _ratio(r["DAVIS-C"], r.clean)
        row["mCP_10"] = r["DAVIS-C_10"]
        row["rP_10"] = _ratio(r["DAVIS-C_10"], r.clean)
        rows.append(row)
    return pd.DataFrame(rows, columns=["method", "clean", "mCP", *(f"rP_{s}" for s in STRENGTHS), "rP",
                                       "mCP_10", "rP_10"])


def build_relative_gain(leaderboard: pd.DataFrame, pairs: dict[str, str]) -> pd.DataFrame:
    """Per (TTT method, variant): J&F of the base and of the TTT method (official global scores, mean
    over seeds), the gain in points and the relative gain; NaN unless both cells are complete."""
    cols = ["method", "base_method", "variant", "strength", "corruption", "base_JF", "JF", "gain", "relative_gain"]
    if leaderboard.empty or not pairs:
        return pd.DataFrame(columns=cols)
    lb = leaderboard.set_index(["method", "variant"])
    rows = []
    for method, base in sorted(pairs.items()):
        if method not in lb.index.get_level_values(0):
            continue
        for variant, r in lb.loc[method].iterrows():
            b = lb["JF"].get((base, variant), np.nan)
            a = r["JF"]
            rows.append({"method": method, "base_method": base, "variant": variant, "strength": r.strength,
                         "corruption": r.corruption, "base_JF": b, "JF": a,
                         "gain": a - b if np.isfinite(a) and np.isfinite(b) else np.nan,
                         "relative_gain": _ratio(a - b, b) if np.isfinite(a) else np.nan})
    return pd.DataFrame(rows, columns=cols)


def build_costs(grid: pd.DataFrame) -> pd.DataFrame:
    """Per method, over its ok units: mean TTT and inference seconds per video, mean and largest peak memory."""
    ok = grid[grid.status == "ok"]
    cols = ["method", "n_units", "ttt_s", "inference_s", "peak_memory_mb", "peak_memory_mb_max"]
    if ok.empty:
        return pd.DataFrame(columns=cols)
    out = ok.groupby("method").agg(n_units=("video", "size"), ttt_s=("ttt_s", "mean"),
                                   inference_s=("inference_s", "mean"), peak_memory_mb=("peak_memory_mb", "mean"),
                                   peak_memory_mb_max=("peak_memory_mb", "max")).reset_index()
    return out[cols]
