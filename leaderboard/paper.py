"""Published reference numbers (the DAVIS-C paper's Tables 1, 2 and 3), shipped as data, and ours next to them.

They live in ``leaderboard/paper_reference.csv`` (J&F in percent, as printed in the paper) with a source
per row. Alone they are shown in their own clearly marked section, never mixed with measured rows; the
ours-vs-paper table (:func:`compare_with_paper`) puts a method's measured columns next to the printed
ones when its preset names the paper's row (``paper_name``), and next to other published clean numbers
listed in its preset's ``published`` field. A row with an empty ``JF`` is a slot whose number could not
be sourced; the report lists such slots as missing instead of inventing them. Pass your own file with
``python -m leaderboard.build --paper-reference FILE``.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["COLUMNS", "PAPER_COLUMNS", "DAVIS17_VAL", "PaperReferenceError", "default_path", "load_paper_reference",
           "split_available", "reference_display", "describe_missing", "method_references", "compare_with_paper",
           "comparison_display", "published_display", "comparison_notes", "COMPARISON_COLUMNS",
           "PUBLISHED_BENCHMARKS"]

#: our summary column -> the paper's (table, column) it is compared with. Table 1 right holds the models
#: fine-tuned on real videos (the official checkpoints the presets load); its ``avg`` is the mean of the
#: four columns. Table 3 ("real videos" part) holds DAVIS-C = the mean over the 42 corrupted variants.
PAPER_COLUMNS: dict[str, tuple[str, str]] = {
    "clean": ("Table 1 right", "clean"), "low": ("Table 1 right", "low"), "med": ("Table 1 right", "med"),
    "high": ("Table 1 right", "high"), "avg": ("Table 1 right", "avg"), "DAVIS-C": ("Table 3 real videos", "DAVIS-C"),
}
#: Table 3 names the default 100-iteration TTT methods with a suffix (STCN+tt-MCC-100); Tables 1 and 2 without.
_TABLE3_SUFFIX = "-100"
#: the 30 videos of DAVIS-2017 val (ImageSets/2017/val.txt): a published "DAVIS-2017 val" number is compared
#: with our clean column only on a run over exactly these.
DAVIS17_VAL: tuple[str, ...] = (
    "bike-packing", "blackswan", "bmx-trees", "breakdance", "camel", "car-roundabout", "car-shadow", "cows",
    "dance-twirl", "dog", "dogs-jump", "drift-chicane", "drift-straight", "goat", "gold-fish", "horsejump-high",
    "india", "judo", "kite-surf", "lab-coat", "libby", "loading", "mbike-trick", "motocross-jump",
    "paragliding-launch", "parkour", "pigs", "scooter-black", "shooting", "soapbox",
)
#: published benchmark name -> our summary column it is compared with (on a full DAVIS-2017 val run).
PUBLISHED_BENCHMARKS: dict[str, str] = {"DAVIS-2017 val": "clean"}
COMPARISON_COLUMNS = ["method", "paper_name", "column", "ours_JF_pct", "ours_std_pct", "paper_JF_pct",
                      "paper_std_pct", "diff_pts", "status", "n_videos", "table", "source", "note"]

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


def method_references(runs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """method -> {"paper_name": str | None, "published": [...], "origin": where it was read}.

    Read from the method's ``run.json`` config (``harness.run`` and ``harness.score`` record the resolved
    preset there); a run written before these fields existed falls back to the shipped preset of the
    same name, if any.
    """
    from harness.methods import METHODS_DIR, MethodError, check_reference_fields

    out: dict[str, dict[str, Any]] = {}
    for method, run in runs.items():
        cfg = (run or {}).get("config") or {}
        origin = f"{method}/run.json"
        if "paper_name" not in cfg and "published" not in cfg:
            preset = METHODS_DIR / f"{method}.yaml"
            if preset.is_file():
                import yaml

                try:
                    cfg = yaml.safe_load(preset.read_text()) or {}
                except (OSError, yaml.YAMLError):
                    cfg = {}
                origin = f"shipped preset {method}.yaml"
        try:
            name, published = check_reference_fields(cfg.get("paper_name"), cfg.get("published"), origin)
        except MethodError as exc:
            out[method] = {"paper_name": None, "published": [], "origin": origin, "problem": str(exc)}
            continue
        out[method] = {"paper_name": name, "published": published, "origin": origin}
    return out


def _paper_value(ref: pd.DataFrame, name: str, table: str, column: str) -> pd.Series | None:
    for candidate in (name, name + _TABLE3_SUFFIX if table.startswith("Table 3") else None):
        if candidate is None:
            continue
        hit = ref[(ref.method == candidate) & (ref.table == table) & (ref.column == column) & ref.JF.notna()]
        if len(hit):
            return hit.iloc[0]
    return None


def compare_with_paper(summary: pd.DataFrame, grid: pd.DataFrame, runs: dict[str, dict[str, Any]],
                       ref: pd.DataFrame, random_init: list[str] | tuple[str, ...] = ()) -> pd.DataFrame:
    """Ours next to the published numbers: one row per (method, compared column), J&F in percent.

    Rows come from the paper's tables (via ``paper_name``) and from a preset's ``published`` list. ``ours``
    is filled only when our column is complete (``status`` says ``incomplete``/``missing`` otherwise) and
    ``diff_pts`` = ours − published. Random-init runs are never compared (they are not a real model).
    """
    refs = method_references(runs)
    s = summary.set_index("method") if len(summary) else summary
    rows = []
    for method, info in refs.items():
        if method in random_init or method not in getattr(s, "index", []):
            continue
        r = s.loc[method]
        clean_videos = sorted(set(grid[(grid.method == method) & (grid.variant == "clean")].video))
        n_videos = len(set(grid[grid.method == method].video))

        def ours(col: str) -> tuple[float, float, str]:
            if np.isfinite(r[col]):
                return 100 * float(r[col]), 100 * float(r[f"{col}_std"]), "ok"
            return np.nan, np.nan, "missing" if r[f"{col}_n"] == 0 else "incomplete"

        if info["paper_name"]:
            for col, (table, pcol) in PAPER_COLUMNS.items():
                hit = _paper_value(ref, info["paper_name"], table, pcol)
                if hit is None:
                    continue
                value, std, status = ours(col)
                note = "" if set(clean_videos) >= set(DAVIS17_VAL) else (
                    f"ours on {n_videos} video(s), the paper on the 30 of DAVIS-2017 val")
                rows.append({"method": method, "paper_name": hit.method, "column": col, "ours_JF_pct": value,
                             "ours_std_pct": std, "paper_JF_pct": float(hit.JF), "paper_std_pct": float(hit.JF_std),
                             "diff_pts": value - float(hit.JF), "status": status, "n_videos": n_videos,
                             "table": f"{table}, {pcol}", "source": hit.source, "note": note})
        for entry in info["published"]:
            col = PUBLISHED_BENCHMARKS.get(entry["benchmark"])
            value, std, status = ours(col) if col else (np.nan, np.nan, "not comparable")
            note = entry.get("note", "")
            if col and status == "ok" and sorted(clean_videos) != sorted(DAVIS17_VAL):
                value, std, status = np.nan, np.nan, "not comparable"
                note = (note + "; " if note else "") + (f"ours is not a full DAVIS-2017 val run "
                                                        f"({len(set(clean_videos) & set(DAVIS17_VAL))}/30 val videos)")
            elif not col:
                note = (note + "; " if note else "") + (f"benchmark {entry['benchmark']!r} is not one this toolkit "
                                                        f"measures ({', '.join(PUBLISHED_BENCHMARKS)})")
            rows.append({"method": method, "paper_name": info["paper_name"] or method, "column": col or "",
                         "ours_JF_pct": value, "ours_std_pct": std, "paper_JF_pct": float(entry["JF"]),
                         "paper_std_pct": np.nan, "diff_pts": value - float(entry["JF"]), "status": status,
                         "n_videos": len(clean_videos), "table": f"published, {entry['benchmark']}",
                         "source": entry["source"], "note": note})
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


def _fmt(value: float, std: float = float("nan")) -> str:
    return f"{value:.1f}" + (f" ± {std:.1f}" if np.isfinite(std) else "")


def comparison_display(cmp: pd.DataFrame) -> pd.DataFrame:
    """The paper rows of the comparison, wide: per method three rows (ours, published, ours − published) and
    one column per compared summary column. An incomplete cell of ours is named and not compared."""
    paper = cmp[cmp.table.str.startswith("Table")] if len(cmp) else cmp
    cols = [c for c in PAPER_COLUMNS if c in set(paper.column)]
    rows = []
    for method, g in paper.groupby("method", sort=False):
        g = g.set_index("column")
        names = " / ".join(dict.fromkeys(g.paper_name))
        ours = {"method": method, "row": "ours"}
        pub = {"method": method, "row": f"published ({names})"}
        diff = {"method": method, "row": "ours − published"}
        for c in cols:
            if c not in g.index:
                ours[c] = pub[c] = diff[c] = ""
                continue
            r = g.loc[c]
            ours[c] = _fmt(r.ours_JF_pct, r.ours_std_pct) if np.isfinite(r.ours_JF_pct) else r.status
            pub[c] = _fmt(r.paper_JF_pct, r.paper_std_pct)
            diff[c] = f"{r.diff_pts:+.1f}" if np.isfinite(r.diff_pts) else ""
        rows += [ours, pub, diff]
    return pd.DataFrame(rows, columns=["method", "row", *cols])


def published_display(cmp: pd.DataFrame) -> pd.DataFrame:
    """Rows of the comparison that come from presets' ``published`` lists (other papers' clean numbers)."""
    pub = cmp[cmp.table.str.startswith("published")] if len(cmp) else cmp
    rows = [{"method": r.method, "benchmark": r.table.split(", ", 1)[1], "ours": _fmt(r.ours_JF_pct, r.ours_std_pct)
             if np.isfinite(r.ours_JF_pct) else r.status, "published": _fmt(r.paper_JF_pct),
             "ours − published": f"{r.diff_pts:+.1f}" if np.isfinite(r.diff_pts) else "", "source": r.source,
             "note": r.note} for r in pub.itertuples()]
    return pd.DataFrame(rows, columns=["method", "benchmark", "ours", "published", "ours − published", "source", "note"])


def comparison_notes(cmp: pd.DataFrame) -> list[str]:
    """Sources of the paper rows compared and the caveats (subset runs), one line each."""
    paper = cmp[cmp.table.str.startswith("Table")] if len(cmp) else cmp
    lines = [f"{t}: {src}" for t, src in dict.fromkeys(zip(paper.table.str.split(",").str[0], paper.source))]
    by_note: dict[str, list[str]] = {}
    for m, n in dict.fromkeys(zip(paper.method, paper.note)):
        if n:
            by_note.setdefault(n, []).append(m)
    lines += [f"{', '.join(ms)}: {n}" for n, ms in by_note.items()]
    return lines
