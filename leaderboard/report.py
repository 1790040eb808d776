"""The HTML report: ``index.html`` (self-contained, plots embedded) from the Jinja2 templates in
``leaderboard/templates`` (one template block per section, autoescaped), plus the per-video pages and the
corruption gallery that sit next to it in the same folder (``leaderboard.pages`` makes their images).

No external assets: the plots are embedded as base64 data URIs and the other pages link files of the
output folder only, so the folder opens anywhere, offline.
"""
from __future__ import annotations

import base64
import functools
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import jinja2

import numpy as np
import pandas as pd

from common.vocabulary import strength_rank
from leaderboard.benchmark import Benchmark
from leaderboard.paper import (comparison_display, comparison_notes, describe_missing, published_display,
                               reference_display, split_available)
from leaderboard.robustness import METRICS
from leaderboard.temporal import RECOVERY_NOTE, TEMPORAL_NOTE, recovery_display, temporal_display
from leaderboard.tables import (SUMMARY_COLUMNS, WEIGHT_FREE_COLUMNS, Tables, corruption_display,
                                leaderboard_display, pct, per_video_display, summary_display)

__all__ = ["render_report", "render", "html_table", "table_data", "robustness_display", "relative_gain_display", "costs_display",
           "imported_sources", "SUMMARY_NOTE", "COMPARISON_NOTE"]

SUMMARY_NOTE = ("low / med / high: mean over the 14 DAVIS-C corruptions at that strength of the official J&F. "
                "avg: the paper's Table 1 / Table 2 avg, the mean of the four columns clean, low, med and high. "
                "DAVIS-C: the paper's Table 3 column, the mean over the 42 corrupted variants (clean excluded). "
                "Each is computed per seed, then mean ± std across seeds. A column with a variant missing is "
                "marked incomplete with how many variants are complete and their partial mean, never shown as a "
                "number of its own.")
OWN_SUMMARY_NOTE = ("low / med / high: mean over the 14 corruptions at that strength of the J&F. avg: the mean "
                    "of the four columns clean, low, med and high. DAVIS-C: the mean over the 42 corrupted variants "
                    "(clean excluded). The DAVIS-C paper's definitions, computed on this benchmark: no published "
                    "number applies. Each is computed per seed, then mean ± std across seeds. A column with a "
                    "variant missing is marked incomplete with how many variants are complete and their partial "
                    "mean, never shown as a number of its own.")
WEIGHT_FREE_NOTE = ("The same columns over the 10 corruptions that need no style-transfer weights (all but "
                    "style1-4): complete on a DAVIS-C build made without the style weights. Not comparable with "
                    "the paper's 14-corruption numbers.")
COMPARISON_NOTE = ("Our measured columns next to the published ones, for every method whose preset names its row "
                   "in the paper (paper_name) or lists published numbers (published). Ours is shown only when our "
                   "column is complete; random-init runs are never compared. J&F in percent; "
                   "ours − published in points.")

def _cell_class(value: Any) -> str:
    text = str(value)
    if text in ("missing", "—", "failed") or text.startswith("missing"):
        return "missing"
    if text.startswith("incomplete"):
        return "incomplete"
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return ""
    return "text" if not _looks_numeric(text) else ""


def _looks_numeric(text: str) -> bool:
    head = text.split(" ")[0].lstrip("+-−")
    return head.replace(".", "", 1).isdigit()


def table_data(df: pd.DataFrame, *, index: bool = False, table_class: str = "",
               row_class: Callable[[pd.Series], str] | None = None,
               cell_class: Callable[[str, Any], str] | None = None,
               links: Callable[[pd.Series], dict[str, str]] | None = None) -> dict[str, Any]:
    """A table as plain data for the ``table`` macro: floats shown x100 (percent), missing cells classed.

    ``links(row)`` may return ``{column: href}`` to make cells links (the per-video table links its pages).
    Nothing is escaped here: the template's autoescape does it.
    """
    frame = df.reset_index() if index else df
    rows = []
    for _, r in frame.iterrows():
        hrefs = links(r) if links is not None else {}
        cells = []
        for col, v in r.items():
            text = pct(v) if isinstance(v, (float, np.floating)) else str(v)
            cls = _cell_class(text) if not isinstance(v, (float, np.floating)) else ("missing" if text == "—" else "")
            if cell_class is not None:
                cls = (cls + " " + cell_class(str(col), v)).strip()
            cells.append({"text": text, "cls": cls, "href": hrefs.get(str(col), "")})
        rows.append({"cls": row_class(r) if row_class else "", "cells": cells})
    return {"columns": [str(c) for c in frame.columns], "rows": rows, "table_class": table_class}


def html_table(df: pd.DataFrame, **options: Any) -> str:
    """One table as HTML (the template's ``table`` macro over :func:`table_data`)."""
    return str(_env().get_template("macros.html").module.table(table_data(df, **options)))


def _png_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _figure(name: str, paths: dict[str, Path], out_dir: Path, caption: str) -> dict[str, str]:
    svg = Path(paths["svg"])
    href = svg.relative_to(out_dir).as_posix() if svg.is_relative_to(out_dir) else svg.as_posix()
    return {"name": name, "src": _png_uri(Path(paths["png"])), "caption": caption, "svg": href}


def _gain_class_any(col: str, v: Any) -> str:
    """Colour signed differences (gains, ours − published) green / red."""
    if isinstance(v, str) and v[:1] in ("+", "-") and _looks_numeric(v):
        return "hurt" if v.startswith("-") else "helps"
    return ""


def _gain_class(col: str, v: Any) -> str:
    if col.startswith("gain") and isinstance(v, str) and v[:1] in ("+", "-"):
        return "hurt" if v.startswith("-") else "helps"
    return ""


def _gain_display(tables: Tables) -> pd.DataFrame:
    rows = []
    for _, r in tables.ttt_gain.iterrows():
        rows.append({
            "method": r.method, "vs": r.base_method, "variant": r.variant,
            "gain (J&F points)": (f"{100 * r.gain:+.1f}" if np.isfinite(r.gain)
                                  else f"incomplete ({r.n_videos}/{r.n_expected} videos)"),
            "videos hurt": f"{r.n_hurt}/{r.n_expected}",
            "before (video mean)": pct(r.base_JF_video), "after (video mean)": pct(r.JF_video),
        })
    return pd.DataFrame(rows)


def _missing_summary(tables: Tables) -> pd.DataFrame:
    m = tables.missing
    if m.empty:
        return m
    rows = []
    for (method, variant, status), g in m.groupby(["method", "variant", "status"], sort=False):
        units = ", ".join(f"{v} (seed {s})" for v, s in zip(g.video, g.seed))
        errors = "; ".join(sorted({str(e) for e in g.error.dropna() if e}))
        rows.append({"method": method, "variant": variant, "status": status, "units": len(g),
                     "which": units, "error": errors})
    return pd.DataFrame(rows)


def robustness_display(tables: Tables) -> pd.DataFrame:
    """Per method: clean, mCP, relative performance (percent) and cost per video."""
    rob = tables.robustness.merge(tables.costs, on="method", how="left") if len(tables.robustness) else tables.robustness
    rows = []
    ratio = lambda v: f"{100 * v:.1f} %" if v is not None and np.isfinite(v) else "—"
    for _, r in rob.iterrows():
        rows.append({"method": r.method, "clean": pct(r.clean), "mCP": pct(r.mCP),
                     "rP_low": ratio(r.rP_low), "rP_med": ratio(r.rP_med), "rP_high": ratio(r.rP_high),
                     "rP": ratio(r.rP), "mCP_10": pct(r.mCP_10), "rP_10": ratio(r.rP_10)})
    return pd.DataFrame(rows, columns=["method", "clean", "mCP", "rP_low", "rP_med", "rP_high", "rP", "mCP_10", "rP_10"])


def costs_display(tables: Tables) -> pd.DataFrame:
    """Per method: mean TTT and inference seconds and peak memory per video."""
    sec = lambda v: f"{v:.2f}" if np.isfinite(v) else "—"
    mb = lambda v: f"{v:.0f}" if np.isfinite(v) else "—"
    rows = [{"method": r.method, "videos scored": int(r.n_units), "ttt_s": sec(r.ttt_s),
             "inference_s": sec(r.inference_s), "peak_memory_mb": mb(r.peak_memory_mb),
             "peak_memory_mb_max": mb(r.peak_memory_mb_max)} for r in tables.costs.itertuples()]
    return pd.DataFrame(rows, columns=["method", "videos scored", "ttt_s", "inference_s", "peak_memory_mb",
                                       "peak_memory_mb_max"])


def relative_gain_display(tables: Tables) -> pd.DataFrame:
    """(TTT method, strength) x corruption: relative gain over the base in percent; '—' where a cell is incomplete."""
    rg = tables.relative_gain
    rg = rg[rg.variant != "clean"] if len(rg) else rg
    if rg.empty:
        return pd.DataFrame()
    rg = rg.assign(cell=[f"{100 * v:+.1f} %" if np.isfinite(v) else "—" for v in rg.relative_gain],
                   row=[f"{m} vs {b}" for m, b in zip(rg.method, rg.base_method)])
    order = list(dict.fromkeys(rg.corruption))
    table = rg.pivot_table(index=["row", "strength"], columns="corruption", values="cell", aggfunc="first")
    table = table.reindex(columns=order).fillna("—")
    table.columns.name = None
    table = table.reset_index().rename(columns={"row": "method"})
    table["_k"] = [strength_rank(s) for s in table.strength]
    return table.sort_values(["method", "_k"]).drop(columns="_k").reset_index(drop=True)


def imported_sources(runs: dict[str, dict]) -> dict[str, str]:
    """method -> where its predictions came from, for runs written by ``harness.score``."""
    out = {}
    for method, run in runs.items():
        imp = (run or {}).get("imported")
        if isinstance(imp, dict):
            out[method] = str(imp.get("source") or "unknown tool (no --source given)")
    return out


@functools.lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    """The templates in ``leaderboard/templates`` (package data), HTML-escaped by default."""
    return jinja2.Environment(loader=jinja2.PackageLoader("leaderboard", "templates"),
                              autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def render(template: str, **context: Any) -> str:
    """Render one of the report's templates (``index.html``, ``video.html``, ``gallery.html``)."""
    return _env().get_template(template).render(**context)


_PAPER_REF = re.compile(r" \(Table \d[^)]*\)")
_INCOMPLETE = re.compile(r"^incomplete \((\d+)/(\d+) variants, partial mean (.+)\)$")


def _compact_incomplete(df: pd.DataFrame) -> pd.DataFrame:
    """'incomplete (4/14 variants, partial mean 63.2)' -> 'incomplete 4/14, partial 63.2': the summary fits
    1400 px with every column visible (the CSV and Markdown keep the long form)."""
    return df.map(lambda v: _INCOMPLETE.sub(r"incomplete \1/\2, partial \3", v) if isinstance(v, str) else v)


def _partial_note(shown: pd.DataFrame) -> str:
    cells = shown.drop(columns="method").to_numpy().ravel()
    bad = sum(1 for c in cells if str(c).startswith(("incomplete", "missing")))
    if not bad:
        return ""
    return (f"{bad} of {len(cells)} summary cells are incomplete or missing (a partial run): every complete "
            "(method, variant) cell is in the per-variant table below, and 'Missing and failed' lists what "
            "is left to run.")


def _reference_groups(have: pd.DataFrame) -> list[dict[str, Any]]:
    """The published numbers per paper table: its source and note once, then methods x columns."""
    groups = []
    for table, g in have.groupby("table", sort=False):
        shown = reference_display(g)
        grid = shown.pivot_table(index="method", columns="column", values="J&F (%)", aggfunc="first", sort=False)
        grid = grid.reindex(columns=list(dict.fromkeys(shown.column))).fillna("—")
        grid.columns.name = None
        sources = list(dict.fromkeys(g.source.fillna("")))
        notes = list(dict.fromkeys(n for n in g.note.fillna("") if n))
        groups.append({"table": table, "source": "; ".join(sources), "note": "; ".join(notes),
                       "grid": table_data(grid.reset_index())})
    return groups


_CAPTIONS = {"jf_vs_strength": "J&F vs corruption strength, one line per method (paper Figure 5b); "
                               "hollow markers = partial means (some corruptions missing).",
             "heatmap": "J&F per method and corruption at each strength; grey n/a = missing.",
             "per_frame": "Per-frame J&F of one video (paper Figure 16): solid = the variant, dotted = the same "
                          "method's clean run (its baseline)."}


def _rc(flagged: list[str]) -> Callable[[pd.Series], str]:
    return lambda r: "random-init" if str(r.get("method", "")).split(" ")[0] in flagged else ""


def render_report(tables: Tables, plots: dict[str, dict[str, Path]], paper_ref: pd.DataFrame, *,
                  results_path: str, out_dir: Path, toolkit_version: str,
                  synthetic_methods: Iterable[str] = (), comparison: pd.DataFrame | None = None,
                  imported: dict[str, str] | None = None, benchmark: Benchmark | None = None,
                  video_pages: Sequence[dict[str, str]] = (), gallery: dict[str, str] | None = None) -> str:
    """The full HTML page as a string (``templates/index.html``; one block per section).

    ``benchmark`` names the dataset in the header and says whether the paper's columns apply (the
    caller drops comparison rows of methods measured elsewhere); ``video_pages`` ({"name", "href"}) and
    ``gallery`` ({"href", "video", "caption"}) link the per-video pages and the corruption gallery."""
    flagged = list(tables.random_init_methods)
    rc = _rc(flagged)
    bench = benchmark or Benchmark(datasets={m: ("davis2017", "val") for m in tables.runs.method},
                                   videos=list(tables.videos), corrupted=any(v != "clean" for v in tables.variants),
                                   n_variants=len(tables.variants),
                                   n_corrupted=sum(v != "clean" for v in tables.variants), split_recorded=False,
                                   paper_methods=list(tables.runs.method))
    paper_cols = bench.paper_applies
    own = (lambda df: df) if paper_cols else (lambda df: df.rename(columns=lambda c: _PAPER_REF.sub("", str(c))))
    summary_main = own(_compact_incomplete(summary_display(tables.summary, SUMMARY_COLUMNS)))
    summary = {
        "title": ("Summary: the paper's columns (Table 1 right: clean, low, med, high, avg; Table 3: DAVIS-C)"
                  if paper_cols else f"Summary: the DAVIS-C columns on {bench.base_title} (the paper's tables do "
                                     "not apply)"),
        "note": SUMMARY_NOTE if paper_cols else OWN_SUMMARY_NOTE, "partial_note": _partial_note(summary_main),
        "main": table_data(summary_main, row_class=rc, table_class="summary"),
        "weight_free_note": WEIGHT_FREE_NOTE,
        "weight_free": table_data(own(_compact_incomplete(summary_display(tables.summary, WEIGHT_FREE_COLUMNS))),
                                  row_class=rc, table_class="summary"),
    }
    lb = leaderboard_display(tables.leaderboard, flagged)
    leaderboard = {"table": table_data(lb, row_class=rc), "rows": len(lb), "open": bool(summary["partial_note"])}
    vs = {"note": COMPARISON_NOTE, "wide": None, "notes": [], "published": None, "figure": None,
          "none": False, "not_applicable": ""}
    if not paper_cols:
        vs["not_applicable"] = f"Not compared: the paper's numbers are on DAVIS-2017 val, this tree is on {bench.where}."
    elif comparison is not None and len(comparison):
        wide = comparison_display(comparison)
        if len(wide):
            vs["wide"] = table_data(wide, cell_class=_gain_class_any)
            vs["notes"] = list(comparison_notes(comparison))
        pub = published_display(comparison)
        if len(pub):
            vs["published"] = table_data(pub, cell_class=_gain_class_any)
    else:
        vs["none"] = True
    if paper_cols and "paper_comparison" in plots:
        vs["figure"] = _figure("paper_comparison", plots["paper_comparison"], out_dir,
                               "Ours (filled, solid) vs published (hollow, dashed) per column, one colour per method.")
    rg = relative_gain_display(tables)
    robustness = {
        "metrics": table_data(pd.DataFrame({"metric": list(METRICS), "definition": list(METRICS.values())}),
                              table_class="definitions"),
        "table": table_data(robustness_display(tables), row_class=rc),
        "relative_gain": table_data(rg, cell_class=_gain_class_any) if len(rg) else None,
        "costs": table_data(costs_display(tables), row_class=rc),
    }
    corruptions = [(s, table_data(t, row_class=rc)) for s, t in corruption_display(tables.leaderboard, flagged).items()]
    temporal_table = temporal_display(tables.temporal, flagged)
    recovery_table = recovery_display(tables.recovery)
    temporal = {"note": TEMPORAL_NOTE, "table": table_data(temporal_table, row_class=rc), "recovery_note": RECOVERY_NOTE,
                "recovery": table_data(recovery_table) if len(recovery_table) else None} if len(temporal_table) else None
    figures = []
    for name, paths in plots.items():
        if name == "paper_comparison":
            continue
        cap = _CAPTIONS.get(name) or (
            "Per-video J&F before (triangle) and after TTT (circle); red line = TTT hurts (paper Figure 6)."
            if name.startswith("ttt_per_video") else "Mean TTT gain per corruption and strength.")
        figures.append(_figure(name, paths, out_dir, cap))
    gains = _gain_display(tables)
    runs = tables.runs.copy()
    runs["random_init"] = ["YES ⚠" if v else "no" for v in runs["random_init"]]
    have, slots = split_available(paper_ref)
    paper = {"groups": _reference_groups(have) if not have.empty else [],
             "missing": describe_missing(slots) if not slots.empty else "", "n_missing": len(slots),
             "applies": ("They are on DAVIS-2017 val and its corrupted variants."
                         + ("" if paper_cols else f" This tree is on {bench.where}: none of them applies here."))}
    miss = _missing_summary(tables)
    pages = {p["name"]: p["href"] for p in video_pages}
    pv = per_video_display(tables.per_video)
    per_video = {"rows": len(pv), "table": table_data(
        pv, cell_class=lambda c, v: _gain_class("gain" if c == "TTT gain" else c, v),
        links=lambda r: {"video": pages[r.video]} if r.video in pages else {})}
    nav = [("summary", "Summary"), ("leaderboard", "Per variant"), ("vs-paper", "Ours vs published"),
           ("robustness", "Robustness"), ("corruptions", "Per corruption")]
    nav += [("temporal", "Temporal suite")] if temporal else []
    nav += [("plots", "Plots")]
    nav += [("gallery", "Gallery")] if gallery else []
    nav += [("ttt", "TTT gain"), ("runs", "Run metadata"), ("paper", "Paper reference"),
            ("missing", "Missing and failed"), ("per-video", "Per video")]
    return render(
        "index.html", bench={"title": bench.title, "base_title": bench.base_title,
                             "dataset_line": bench.dataset_line(), "split": bench.split_line(),
                             "n_videos": len(bench.videos),
                             "video_list": ", ".join(bench.videos) if len(bench.videos) <= 12 else "",
                             "variants_line": bench.variants_line(), "paper_line": bench.paper_line()},
        built=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), toolkit_version=toolkit_version,
        results_path=results_path, n_methods=len(tables.runs), n_variants=len(tables.variants),
        n_videos=len(tables.videos), flagged=flagged, synthetic=sorted(synthetic_methods), imported=imported or {},
        n_missing=len(tables.missing), n_problems=len(tables.problems), nav=nav, summary=summary,
        leaderboard=leaderboard, vs_paper=vs, robustness=robustness, corruptions=corruptions, figures=figures,
        temporal=temporal,
        gallery=gallery, ttt=table_data(gains, cell_class=_gain_class) if not gains.empty else None,
        runs=table_data(runs, row_class=lambda r: "random-init" if r.random_init != "no" else ""),
        paper=paper, missing=table_data(miss) if not miss.empty else None, problems=list(tables.problems),
        video_pages=list(video_pages), per_video=per_video)
