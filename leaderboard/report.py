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

from leaderboard.paper import describe_missing, reference_display, split_available
from leaderboard.tables import (Tables, corruption_display, leaderboard_display, pct, per_video_display,
                                summary_display)

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


def _section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{html.escape(title)}</h2>{body}</section>'


def render_report(tables: Tables, plots: dict[str, dict[str, Path]], paper_ref: pd.DataFrame, *,
                  results_path: str, out_dir: Path, toolkit_version: str,
                  synthetic_methods: Iterable[str] = ()) -> str:
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
    n_missing = len(tables.missing)
    if n_missing or tables.problems:
        parts.append(f'<div class="notice">{n_missing} expected unit(s) are missing or failed and '
                     f"{len(tables.problems)} file problem(s) were found; affected cells are marked, never "
                     'averaged over fewer videos. See <a href="#missing">Missing and failed</a>.</div>')
    def rc(r: pd.Series) -> str:
        return "random-init" if str(r.get("method", "")).split(" ")[0] in flagged else ""

    sections: dict[str, tuple[str, str]] = {}  # anchor -> (title, body); shown in the order below
    sections["summary"] = ("Summary: methods × strength (paper Table 1, right part)",
                           "<p>Each strength is the mean over the 14 DAVIS-C corruptions of the official J&amp;F; "
                           "mean ± std across seeds. An incomplete cell shows how many corruptions are complete and "
                           "their partial mean.</p>" + html_table(summary_display(tables.summary), row_class=rc))
    corr = "".join(f"<h3>Strength {html.escape(s)}</h3>" + html_table(t, row_class=rc)
                   for s, t in corruption_display(tables.leaderboard, flagged).items())
    sections["corruptions"] = ("Methods × corruption at each strength (paper Figure 6 grouping)",
                               corr or "<p>No corrupted variants.</p>")
    figs = []
    captions = {"jf_vs_strength": "J&F vs corruption strength, one line per method (paper Figure 5b).",
                "heatmap": "J&F per method and corruption at each strength; grey n/a = missing.",
                "per_frame": "Per-frame J&F of one video (paper Figure 16)."}
    for name, paths in plots.items():
        cap = captions.get(name) or (
            "Per-video J&F before (triangle) and after TTT (circle); red line = TTT hurts (paper Figure 6)."
            if name.startswith("ttt_per_video") else "Mean TTT gain per corruption and strength.")
        svg = Path(paths["svg"])
        href = svg.relative_to(out_dir).as_posix() if svg.is_relative_to(out_dir) else svg.as_posix()
        figs.append(f'<figure id="plot-{html.escape(name)}">{_img(Path(paths["png"]), name)}'
                    f'<figcaption>{html.escape(cap)} <a href="{html.escape(href)}">SVG</a></figcaption></figure>')
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
    nav = {"summary": "Summary", "corruptions": "Per corruption", "plots": "Plots", "ttt": "TTT gain",
           "leaderboard": "Leaderboard", "runs": "Run metadata", "paper": "Paper reference",
           "missing": "Missing and failed", "per-video": "Per video"}
    parts.append("<nav>" + "".join(f'<a href="#{a}">{t}</a>' for a, t in nav.items()) + "</nav>")
    parts += [_section(anchor, title, body) for anchor, (title, body) in sections.items()]
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>DAVIS-C leaderboard</title><style>{_CSS}</style></head><body>"
            + "\n".join(parts) + "</body></html>\n")
