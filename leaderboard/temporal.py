"""The temporal suite's own tables: J&F per (method, corruption, strength) and the recovery metric.

The temporal suite (freeze, stride, bursts, packet loss, flicker, shake; ``common.vocabulary.TEMPORAL_CORRUPTIONS``) is
a separate benchmark: its variants never enter the paper's ``low`` / ``med`` / ``high`` / ``avg`` /
``DAVIS-C`` columns nor the per-corruption tables of DAVIS-C; they are reported here, in their own table.
A cell is the official global J&F of that (method, variant) as in the per-variant leaderboard (complete
only when every expected video of every seed is ok).

Recovery (:mod:`harness.recovery`): after a freeze or a burst ends, the frames until the method's per-frame
J&F is back within 5 points of its own clean run's on the same video and seed, pooled over the events of
every video and seed of the variant: mean, median and largest over the recovered events, with the count of
events that never recovered (before the next event or the end of the scored frames).  Units without a
clean run to compare with are left out and counted (``no_clean``).
"""
from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd

from common.vocabulary import STRENGTHS, TEMPORAL_CORRUPTIONS, suite_of
from harness.recovery import TOLERANCE, recovery_frames, summarize
from leaderboard.results import Results

__all__ = ["is_temporal", "build_temporal_table", "build_recovery", "temporal_display", "recovery_display",
           "TEMPORAL_NOTE", "RECOVERY_NOTE"]

TEMPORAL_NOTE = ("The temporal suite (freeze, stride, bursts, packet loss, flicker, shake: corruptions over time, "
                 "docs/building.md) is a separate benchmark: it is never part of low / med / high / avg / "
                 "DAVIS-C. Cells: official J&F of the variant (stride: scored on the kept frames; shake: on the "
                 "translated ground truth).")
RECOVERY_NOTE = (f"Recovery: after a freeze or burst ends, frames until per-frame J&F is within "
                 f"{round(100 * TOLERANCE)} points of the same method's clean run (same video and seed); mean / "
                 "median / max over the recovered events; 'not recovered' = before the next event or the end of "
                 "the scored frames.")


def is_temporal(variant_or_corruption: str | None) -> bool:
    """True for a temporal-suite corruption name or a variant of one."""
    if not variant_or_corruption:
        return False
    name = str(variant_or_corruption).rpartition("/")[2]
    return suite_of(name) == "temporal"


def build_temporal_table(leaderboard: pd.DataFrame) -> pd.DataFrame:
    """Long table of the temporal variants' rows of the per-variant leaderboard: method, corruption,
    strength, JF (± std), status, n_videos."""
    cols = ["method", "corruption", "strength", "variant", "JF", "JF_std", "J", "F", "status", "n_videos"]
    if leaderboard.empty or "corruption" not in leaderboard:
        return pd.DataFrame(columns=cols)
    sub = leaderboard[leaderboard.corruption.map(is_temporal).astype(bool)].copy()
    if sub.empty:
        return pd.DataFrame(columns=cols)
    sub["_c"] = [TEMPORAL_CORRUPTIONS.index(c) for c in sub.corruption]
    sub["_s"] = [list(STRENGTHS).index(s) if s in STRENGTHS else len(STRENGTHS) for s in sub.strength]
    return sub.sort_values(["method", "_c", "_s"])[cols].reset_index(drop=True)


def build_recovery(results: Results, grid: pd.DataFrame) -> pd.DataFrame:
    """Per (method, variant) of the temporal suite whose units carry events: the recovery summary
    (:func:`harness.recovery.summarize`) over every event of every ok unit with an ok clean run."""
    cols = ["method", "variant", "corruption", "strength", "events", "recovered", "not_recovered", "mean",
            "median", "max", "no_clean"]
    if grid.empty:
        return pd.DataFrame(columns=cols)
    ok = grid[(grid.status == "ok") & grid.variant.map(is_temporal).astype(bool)]
    rows = []
    for (method, variant), g in ok.groupby(["method", "variant"], sort=False):
        values: list[int | None] = []
        no_clean = 0
        with_events = False
        for r in g.itertuples():
            events = results.events(method, variant, r.video, int(r.seed))
            if not events:  # stride, flicker, shake (or a run that stored none): nothing to recover from
                continue
            with_events = True
            bad = results.per_frame(method, variant, r.video, int(r.seed))
            clean = results.per_frame(method, "clean", r.video, int(r.seed))
            if not bad or not clean:
                no_clean += 1
                continue
            values += recovery_frames(events, bad, clean)
        if not with_events:
            continue
        strength, _, corruption = variant.partition("/")
        rows.append({"method": method, "variant": variant, "corruption": corruption, "strength": strength,
                     **summarize(values), "no_clean": no_clean})
    return pd.DataFrame(rows, columns=cols)


def _pct(v: float, std: float = float("nan")) -> str:
    if v is None or not np.isfinite(v):
        return ""
    return f"{100 * v:.1f}" + (f" ± {100 * std:.1f}" if std is not None and np.isfinite(std) and std > 0 else "")


def temporal_display(table: pd.DataFrame, flagged: Iterable[str] = ()) -> pd.DataFrame:
    """Methods x temporal variants (``corruption low/med/high`` columns), J&F x 100 as strings; a cell
    that is not complete says its status."""
    if table.empty:
        return pd.DataFrame()
    flagged = set(flagged)
    t = table.copy()
    t["cell"] = [_pct(r.JF, r.JF_std) if r.status == "ok" else str(r.status) for r in t.itertuples()]
    t["column"] = [f"{c} {s}" for c, s in zip(t.corruption, t.strength)]
    order = list(dict.fromkeys(t.column))
    t["method"] = [f"{m} ⚠ random init" if m in flagged else m for m in t.method]
    wide = t.pivot(index="method", columns="column", values="cell").reindex(columns=order).fillna("missing")
    wide.columns.name = None
    return wide.reset_index()


def recovery_display(recovery: pd.DataFrame) -> pd.DataFrame:
    """The recovery table for people: frames (mean / median / max), events and how many never recovered."""
    if recovery.empty:
        return pd.DataFrame()

    def num(v: float) -> str:
        return f"{v:.1f}" if np.isfinite(v) else "—"

    return pd.DataFrame({
        "method": recovery.method, "variant": recovery.variant,
        "recovery frames (mean)": [num(v) for v in recovery["mean"]],
        "median": [num(v) for v in recovery["median"]], "max": [num(v) for v in recovery["max"]],
        "events": recovery.events, "not recovered": recovery.not_recovered,
        "units without a clean run": recovery.no_clean})
