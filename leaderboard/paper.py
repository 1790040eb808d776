"""Published reference numbers (the DAVIS-C paper's Tables 1 and 2), shipped as data.

They live in ``leaderboard/paper_reference.csv`` (J&F in percent, as printed in the paper)
with a source per row, and are shown in their own clearly marked section, never mixed with
measured rows. A row with an empty ``JF`` is a slot whose number could not be sourced when this
file was written; the report lists such slots as missing instead of inventing them. Pass your own
file with ``python -m leaderboard.build --paper-reference FILE``.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

COLUMNS = ["method", "table", "column", "JF", "JF_std", "source", "note"]


class PaperReferenceError(ValueError):
    """The reference CSV is malformed; the message names the file and row."""


def default_path() -> Path:
    return Path(str(resources.files("leaderboard") / "paper_reference.csv"))


def load_paper_reference(path: str | Path | None = None) -> pd.DataFrame:
    """Read and validate the reference CSV (J&F in percent, 0..100; std optional)."""
    path = Path(path) if path is not None else default_path()
    try:
        df = pd.read_csv(path, dtype={"method": str, "table": str, "column": str, "source": str, "note": str})
    except (OSError, pd.errors.ParserError) as exc:
        raise PaperReferenceError(f"{path}: cannot read ({exc})") from exc
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise PaperReferenceError(f"{path}: missing column(s) {', '.join(missing)}")
    for col in ("JF", "JF_std"):
        values = pd.to_numeric(df[col], errors="coerce")
        bad = df[col].notna() & values.isna()
        if bad.any():
            raise PaperReferenceError(f"{path}: row {int(bad.idxmax()) + 2}: {col} is not a number ({df[col][bad].iloc[0]!r})")
        out_of_range = values.notna() & ((values < 0) | (values > 100))
        if out_of_range.any():
            raise PaperReferenceError(f"{path}: row {int(out_of_range.idxmax()) + 2}: {col} must be a percentage in [0, 100]")
        df[col] = values
    no_source = df["JF"].notna() & (df["source"].fillna("").str.strip() == "")
    if no_source.any():
        raise PaperReferenceError(f"{path}: row {int(no_source.idxmax()) + 2}: a number without a source")
    df[["source", "note"]] = df[["source", "note"]].fillna("")
    return df[COLUMNS]


def split_available(ref: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows with a sourced number, slots still without one)."""
    have = ref["JF"].notna()
    return ref[have].reset_index(drop=True), ref[~have].reset_index(drop=True)


def reference_display(ref: pd.DataFrame) -> pd.DataFrame:
    """Rows with numbers as strings (percent, one decimal as printed)."""
    rows = []
    for _, r in ref.iterrows():
        jf = f"{r.JF:.1f}" + (f" ± {r.JF_std:.1f}" if np.isfinite(r.JF_std) else "")
        rows.append({"method": r.method, "table": r.table, "column": r.column, "J&F (%)": jf,
                     "source": r.source, "note": r.note})
    return pd.DataFrame(rows, columns=["method", "table", "column", "J&F (%)", "source", "note"])


def describe_missing(slots: pd.DataFrame) -> str:
    """'STCN Table 1 (clean, low, ...); HODOR Table 1 (...)': the slots still without a number."""
    parts = []
    for (method, table), g in slots.groupby(["method", "table"], sort=False):
        parts.append(f"{method} {table} ({', '.join(g.column)})")
    return "; ".join(parts)
