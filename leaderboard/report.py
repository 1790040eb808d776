"""One self-contained HTML page (images embedded) that a researcher can mail or archive.

No template engine and no external assets: the page is built with ``html.escape`` and the PNGs
are embedded as base64 data URIs, so ``index.html`` opens anywhere, offline.
"""
from __future__ import annotations

import base64
import html
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd

from common.vocabulary import strength_rank
from leaderboard.paper import (comparison_display, comparison_notes, describe_missing, published_display,
                               reference_display, split_available)
from leaderboard.robustness import METRICS
from leaderboard.tables import (SUMMARY_COLUMNS, WEIGHT_FREE_COLUMNS, Tables, corruption_display,
                                leaderboard_display, pct, per_video_display, summary_display)

__all__ = ["render_report", "html_table", "robustness_display", "relative_gain_display", "costs_display",
           "imported_sources", "SUMMARY_NOTE", "COMPARISON_NOTE"]

SUMMARY_NOTE = ("low / med / high: mean over the 14 DAVIS-C corruptions at that strength of the official J&F. "
                "avg: the paper's Table 1 / Table 2 avg, the mean of the four columns clean, low, med and high. "
                "DAVIS-C: the paper's Table 3 column, the mean over the 42 corrupted variants (clean excluded). "
                "Each is computed per seed, then mean ± std across seeds. A column with a variant missing is "
                "marked incomplete with how many variants are complete and their partial mean, never shown as a "
                "number of its own.")
WEIGHT_FREE_NOTE = ("The same columns over the 10 corruptions that need no style-transfer weights (all but "
                    "style1-4): complete on a DAVIS-C build made without the style weights. Not comparable with "
                    "the paper's 14-corruption numbers.")
COMPARISON_NOTE = ("Our measured columns next to the published ones, for every method whose preset names its row "
                   "in the paper (paper_name) or lists published numbers (published). Ours is shown only when our "
                   "column is complete; random-init runs are never compared. J&F in percent; "
                   "ours − published in points.")

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;max-width:1200px;color:#222;padding:0 12px}
h1{margin-bottom:4px} h2{border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:32px}
table{border-collapse:collapse;margin:8px 0 16px;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:right;white-space:nowrap}
th{background:#f0f0f0;text-align:center} td.text{text-align:left;white-space:normal}
td.missing{background:#f3f3f3;color:#999;font-style:italic}
td.incomplete{background:#fff4e0;color:#8a5a00;font-style:italic}
td.hurt{color:#c00} td.helps{color:#177a33}
tr.random-init td{background:#ffecec}
.warning{border:2px solid #c00;background:#fff0f0;color:#900;padding:10px 14px;margin:12px 0;font-weight:600}
.notice{border:2px solid #c90;background:#fff8e6;color:#6b4a00;padding:10px 14px;margin:12px 0}
.reference{border:2px dashed #36c;background:#f3f7ff;padding:8px 14px;margin:12px 0}
figure{margin:12px 0 24px} figure img{max-width:100%;border:1px solid #ddd} figcaption{font-size:13px;color:#555}
nav a{margin-right:12px} .meta{color:#555;font-size:13px} .scroll{overflow-x:auto;max-width:100%}
"""

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


def html_table(df: pd.DataFrame, *, index: bool = False, table_class: str = "",
               row_class: Callable[[pd.Series], str] | None = None,
               cell_class: Callable[[str, Any], str] | None = None) -> str:
    """A plain HTML table; floats are shown x100 (percent); missing cells get a visible class."""
    frame = df.reset_index() if index else df
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for _, r in frame.iterrows():
        cells = []
        for col, v in r.items():
            text = pct(v) if isinstance(v, (float, np.floating)) else str(v)
            cls = _cell_class(text) if not isinstance(v, (float, np.floating)) else ("missing" if text == "—" else "")
            if cell_class is not None:
                cls = (cls + " " + cell_class(str(col), v)).strip()
            cells.append(f'<td class="{cls}">{html.escape(text)}</td>' if cls else f"<td>{html.escape(text)}</td>")
        rc = row_class(r) if row_class else ""
        rows.append((f'<tr class="{rc}">' if rc else "<tr>") + "".join(cells) + "</tr>")
    cls = f' class="{table_class}"' if table_class else ""
    return (f'<div class="scroll"><table{cls}><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody>'
            "</table></div>")


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def _figure(name: str, paths: dict[str, Path], out_dir: Path, caption: str) -> str:
    svg = Path(paths["svg"])
    href = svg.relative_to(out_dir).as_posix() if svg.is_relative_to(out_dir) else svg.as_posix()
    return (f'<figure id="plot-{html.escape(name)}">{_img(Path(paths["png"]), name)}'
            f'<figcaption>{html.escape(caption)} <a href="{html.escape(href)}">SVG</a></figcaption></figure>')


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


def _section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{html.escape(title)}</h2>{body}</section>'


def render_report(tables: Tables, plots: dict[str, dict[str, Path]], paper_ref: pd.DataFrame, *,
                  results_path: str, out_dir: Path, toolkit_version: str,
                  synthetic_methods: Iterable[str] = (), comparison: pd.DataFrame | None = None,
                  imported: dict[str, str] | None = None) -> str:
    """The full HTML page as a string."""
    flagged = tables.random_init_methods
    synthetic = sorted(synthetic_methods)
    parts: list[str] = []
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts.append("<h1>DAVIS-C leaderboard</h1>")
    parts.append(f'<p class="meta">Built {html.escape(now)} by davis-c-toolkit {html.escape(toolkit_version)} '
                 f"from <code>{html.escape(results_path)}</code>: {len(tables.runs)} method(s), "
                 f"{len(tables.variants)} variant(s), {len(tables.videos)} video(s). J&amp;F in percent; "
                 "J and F are averaged over all objects of all videos (the official convention).</p>")
    if flagged:
        parts.append('<div class="warning" id="random-init-warning">⚠ WARNING: results produced with RANDOM-INIT '
                     "weights (no trained checkpoint) — their numbers say nothing about the method: "
                     + html.escape(", ".join(flagged)) + ".</div>")
    if synthetic:
        parts.append('<div class="notice" id="synthetic-notice">These results are SYNTHETIC (made-up numbers '
                     "written by <code>leaderboard.synthetic</code> for demos): "
                     + html.escape(", ".join(synthetic)) + ".</div>")
    if imported:
        parts.append('<div class="notice" id="imported-notice">Imported predictions (scored by '
                     "<code>harness.score</code> from masks made by another tool): "
                     + "; ".join(f"{html.escape(m)}: {html.escape(src)}" for m, src in imported.items()) + ".</div>")
    n_missing = len(tables.missing)
    if n_missing or tables.problems:
        parts.append(f'<div class="notice">{n_missing} expected unit(s) are missing or failed and '
                     f"{len(tables.problems)} file problem(s) were found; affected cells are marked, never "
                     'averaged over fewer videos. See <a href="#missing">Missing and failed</a>.</div>')
    def rc(r: pd.Series) -> str:
        return "random-init" if str(r.get("method", "")).split(" ")[0] in flagged else ""

    sections: dict[str, tuple[str, str]] = {}  # anchor -> (title, body); shown in the order below
    sections["summary"] = ("Summary: the paper's columns (Table 1 right: clean, low, med, high, avg; Table 3: DAVIS-C)",
                           f"<p>{html.escape(SUMMARY_NOTE)}</p>"
                           + html_table(summary_display(tables.summary, SUMMARY_COLUMNS), row_class=rc)
                           + "<h3>Weight-free corruptions only (10 corruptions, no style1-4)</h3>"
                           + f"<p>{html.escape(WEIGHT_FREE_NOTE)}</p>"
                           + html_table(summary_display(tables.summary, WEIGHT_FREE_COLUMNS), row_class=rc))
    cmp_body = f"<p>{html.escape(COMPARISON_NOTE)}</p>"
    if comparison is not None and len(comparison):
        wide = comparison_display(comparison)
        if len(wide):
            cmp_body += html_table(wide, cell_class=_gain_class_any)
            cmp_body += "<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in comparison_notes(comparison)) + "</ul>"
        pub = published_display(comparison)
        if len(pub):
            cmp_body += "<h3>Other published numbers (presets' published lists)</h3>" + html_table(pub, cell_class=_gain_class_any)
    else:
        cmp_body += "<p>No method of this tree names a published row (preset fields paper_name / published).</p>"
    if flagged:
        cmp_body += ("<p>Not compared (random-init weights, not a real model): "
                     + html.escape(", ".join(flagged)) + ".</p>")
    if "paper_comparison" in plots:
        cmp_body += _figure("paper_comparison", plots["paper_comparison"], out_dir,
                            "Ours (filled, solid) vs published (hollow, dashed) per column, one colour per method.")
    sections["vs-paper"] = ("Ours vs published (paper Tables 1 and 3, presets' published numbers)", cmp_body)
    metrics = html_table(pd.DataFrame({"metric": list(METRICS), "definition": list(METRICS.values())}),
                         table_class="definitions")
    rob = metrics + html_table(robustness_display(tables), row_class=rc)
    rg = relative_gain_display(tables)
    rob += ("<h3>Relative TTT gain per corruption (percent of the base J&amp;F)</h3>"
            + (html_table(rg, cell_class=_gain_class_any) if len(rg) else
               "<p>No method has both a TTT and a no-TTT run.</p>"))
    rob += "<h3>Cost per video</h3>" + html_table(costs_display(tables), row_class=rc)
    sections["robustness"] = ("Robustness metrics", rob)
    corr = "".join(f"<h3>Strength {html.escape(s)}</h3>" + html_table(t, row_class=rc)
                   for s, t in corruption_display(tables.leaderboard, flagged).items())
    sections["corruptions"] = ("Methods × corruption at each strength (paper Figure 6 grouping)",
                               corr or "<p>No corrupted variants.</p>")
    figs = []
    captions = {"jf_vs_strength": "J&F vs corruption strength, one line per method (paper Figure 5b); "
                                  "hollow markers = partial means (some corruptions missing).",
                "heatmap": "J&F per method and corruption at each strength; grey n/a = missing.",
                "per_frame": "Per-frame J&F of one video (paper Figure 16)."}
    for name, paths in plots.items():
        if name == "paper_comparison":
            continue
        cap = captions.get(name) or (
            "Per-video J&F before (triangle) and after TTT (circle); red line = TTT hurts (paper Figure 6)."
            if name.startswith("ttt_per_video") else "Mean TTT gain per corruption and strength.")
        figs.append(_figure(name, paths, out_dir, cap))
    sections["plots"] = ("Plots", "".join(figs) or "<p>No plots (no data).</p>")
    gains = _gain_display(tables)
    sections["ttt"] = ("TTT gain (method+TTT − method, mean over videos of the per-video gain)",
                       html_table(gains, cell_class=_gain_class) if not gains.empty
                       else "<p>No method has both a TTT and a no-TTT run.</p>")
    sections["leaderboard"] = ("Leaderboard: one row per method and variant (paper Table 2)",
                               html_table(leaderboard_display(tables.leaderboard, flagged), row_class=rc))
    runs = tables.runs.copy()
    runs["random_init"] = ["YES ⚠" if v else "no" for v in runs["random_init"]]
    sections["runs"] = ("Run metadata",
                        html_table(runs, row_class=lambda r: "random-init" if r.random_init != "no" else ""))
    have, slots = split_available(paper_ref)
    ref_body = ('<div class="reference"><p><b>Published numbers, NOT measured by this toolkit.</b> Shown for '
                "comparison only; never mixed into the tables above.</p>")
    ref_body += html_table(reference_display(have)) if not have.empty else "<p>No sourced numbers shipped.</p>"
    if not slots.empty:
        ref_body += (f"<p>Missing reference numbers ({len(slots)}; could not be sourced, not invented): "
                     + html.escape(describe_missing(slots)) + ".</p>")
    sections["paper"] = ("Paper reference (published, separate from measured results)", ref_body + "</div>")
    miss = _missing_summary(tables)
    body = html_table(miss) if not miss.empty else "<p>Nothing is missing: every expected unit is ok.</p>"
    if tables.problems:
        body += "<h3>File problems</h3><ul>" + "".join(f"<li>{html.escape(p)}</li>" for p in tables.problems) + "</ul>"
    sections["missing"] = ("Missing and failed", body)
    pv = per_video_display(tables.per_video)
    sections["per-video"] = ("Per video", f"<details><summary>{len(pv)} rows (also in per_video.csv)</summary>"
                             + html_table(pv, cell_class=lambda c, v: _gain_class("gain" if c == "TTT gain" else c, v))
                             + "</details>")
    nav = {"summary": "Summary", "vs-paper": "Ours vs published", "robustness": "Robustness", "corruptions": "Per corruption", "plots": "Plots", "ttt": "TTT gain",
           "leaderboard": "Leaderboard", "runs": "Run metadata", "paper": "Paper reference",
           "missing": "Missing and failed", "per-video": "Per video"}
    parts.append("<nav>" + "".join(f'<a href="#{a}">{t}</a>' for a, t in nav.items()) + "</nav>")
    parts += [_section(anchor, title, body) for anchor, (title, body) in sections.items()]
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>DAVIS-C leaderboard</title><style>{_CSS}</style></head><body>"
            + "\n".join(parts) + "</body></html>\n")
