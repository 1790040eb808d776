"""The paper's figures from leaderboard tables (matplotlib, Agg canvas, PNG + SVG).

Uses matplotlib's object API (``Figure`` + Agg canvas), never ``pyplot``, so building plots has no
global state and works headless. Values are shown x100 as papers do. Missing cells are drawn as
such (grey "n/a"), never interpolated; partial strength averages are drawn hollow and labelled.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # headless before anything else touches a backend
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from common.vocabulary import CLEAN, STRENGTHS
from leaderboard.results import Results
from leaderboard.tables import SUMMARY_COLUMNS, Tables

_SVG_RC = {"svg.hashsalt": "davis-c-leaderboard", "svg.fonttype": "path"}
_BETTER, _WORSE, _BEFORE, _MISSING = "#2a9d4b", "#d62728", "#555555", "#bbbbbb"


def save_figure(fig: Figure, out_dir: Path, name: str) -> dict[str, Path]:
    """Write ``name.png`` and ``name.svg`` (deterministic SVG ids, no date) and return both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    paths = {"png": out_dir / f"{name}.png", "svg": out_dir / f"{name}.svg"}
    with matplotlib.rc_context(_SVG_RC):
        for fmt, path in paths.items():
            tmp = path.with_name(f".{path.name}.tmp")
            fig.savefig(tmp, format=fmt, dpi=110, bbox_inches="tight",
                        metadata={"Date": None} if fmt == "svg" else {"Software": None})
            tmp.replace(path)
    return paths


def _label(method: str, flagged: Sequence[str]) -> str:
    return f"{method} (random-init!)" if method in flagged else method


def plot_strength(tables: Tables) -> Figure:
    """J&F vs strength (clean -> low -> med -> high), one line per method (paper Figure 5b).

    Strength points are the mean over the 14 corruptions. A method whose 14-corruption columns are
    incomplete but whose 10 weight-free ones are complete is drawn over those 10 (its legend says so,
    dashed); any other incomplete point is a partial mean, drawn hollow, and the legend says "partial".
    The legend shows exactly what is drawn: line and markers.
    """
    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.add_subplot()
    strengths = [c for c in SUMMARY_COLUMNS if c not in ("avg", "DAVIS-C")]
    x = np.arange(len(strengths))
    kinds = set()
    for _, r in tables.summary.iterrows():
        cols14 = strengths
        cols10 = ["clean"] + [f"{c}_10" for c in strengths[1:]]
        full14 = np.array([r[c] for c in cols14], dtype=float)
        full10 = np.array([r[c] for c in cols10], dtype=float)
        use10 = not np.isfinite(full14[1:]).all() and np.isfinite(full10[1:]).all()
        cols = cols10 if use10 else cols14
        full = full10 if use10 else full14
        part = np.array([r[f"{c}_partial"] for c in cols], dtype=float)
        err = np.array([r[f"{c}_std"] for c in cols], dtype=float)
        y = np.where(np.isfinite(full), full, part)
        if not np.isfinite(y).any():
            continue
        is_partial = ~np.isfinite(full) & np.isfinite(part)
        label = _label(r.method, tables.random_init_methods)
        if use10:
            label += " (10 weight-free corruptions)"
            kinds.add("10")
        if is_partial.any():
            label += " (partial)"
            kinds.add("partial")
        if not use10 and not is_partial.any():
            kinds.add("14")
        line, = ax.plot(x, 100 * y, "--" if use10 else "-", marker="o", label=label)
        color = line.get_color()
        ok = np.isfinite(full)
        if np.isfinite(err[ok]).any():
            ax.errorbar(x[ok], 100 * full[ok], yerr=np.nan_to_num(100 * err[ok]), fmt="none", ecolor=color, capsize=3)
        ax.plot(x[is_partial], 100 * part[is_partial], "o", mfc="white", mec=color, zorder=3)
    ax.set_xticks(x, [CLEAN, *STRENGTHS])
    ax.set_xlabel("corruption strength")
    ax.set_ylabel("J&F (%)")
    what = []
    if "14" in kinds:
        what.append("mean over the 14 corruptions")
    if "10" in kinds:
        what.append("dashed: over the 10 weight-free corruptions")
    if "partial" in kinds:
        what.append("hollow: partial mean, some corruptions missing")
    ax.set_title("J&F vs strength (" + "; ".join(what or ["no complete column"]) + ")", fontsize=8)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    return fig


def plot_paper_comparison(comparison: pd.DataFrame) -> Figure | None:
    """Ours (filled markers, solid) vs published (hollow, dashed) per compared column, one colour per method."""
    if comparison is None or comparison.empty:
        return None
    comparison = comparison[comparison.table.str.startswith("Table")]  # the paper's rows, not 'published' lists
    cols = [c for c in (CLEAN, *STRENGTHS, "avg", "DAVIS-C") if c in set(comparison.column)]
    if not cols:
        return None
    fig = Figure(figsize=(6.4, 4.0))
    ax = fig.add_subplot()
    x = np.arange(len(cols))
    for method, g in comparison[comparison.column.isin(cols)].groupby("method", sort=True):
        g = g.drop_duplicates("column").set_index("column").reindex(cols)
        paper = g.paper_JF_pct.to_numpy(dtype=float)
        ours = g.ours_JF_pct.to_numpy(dtype=float)
        line, = ax.plot(x, ours, "-o", label=f"{method} (ours)")
        ax.plot(x, paper, "--o", mfc="white", color=line.get_color(),
                label=f"{g.paper_name.dropna().iloc[0]} (published)")
    ax.set_xticks(x, cols)
    ax.set_ylabel("J&F (%)")
    ax.set_title("Ours vs published (ours drawn only where complete)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return fig


def plot_ttt_per_video(tables: Tables, method: str, strength: str) -> Figure | None:
    """Per corruption at one strength: each video's J&F before (triangle) and after TTT (circle).

    The joining line is red when TTT hurts that video (paper Figure 6). Videos missing either
    number are left out of the panel and counted in its title.
    """
    base = tables.ttt_pairs.get(method)
    pv = tables.per_video
    sub = pv[(pv.method == method) & (pv.variant.str.startswith(f"{strength}/"))]
    if base is None or sub.empty:
        return None
    corruptions = [c for c in dict.fromkeys(v.split("/", 1)[1] for v in sub.variant)]
    ncols = min(5, len(corruptions))
    nrows = math.ceil(len(corruptions) / ncols)
    fig = Figure(figsize=(2.6 * ncols + 0.4, 2.4 * nrows + 0.6))
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True)
    for ax, corruption in zip(axes.flat, corruptions):
        g = sub[sub.variant == f"{strength}/{corruption}"].dropna(subset=["ttt_gain"]).sort_values("base_JF")
        n_left = int((sub.variant == f"{strength}/{corruption}").sum()) - len(g)
        xs = np.arange(len(g))
        for xi, (b, a) in enumerate(zip(g.base_JF, g.JF)):
            ax.plot([xi, xi], [100 * b, 100 * a], "-", color=_WORSE if a < b else _BETTER, lw=1.5)
        ax.plot(xs, 100 * g.base_JF, "^", color=_BEFORE, ms=5, label=f"{base} (before)")
        ax.plot(xs, 100 * g.JF, "o", color="#1f77b4", ms=4, label=f"{method} (after)")
        gain = 100 * g.ttt_gain.mean() if len(g) else float("nan")
        title = f"{corruption}\nmean gain {gain:+.1f}" if len(g) else f"{corruption}\nno data"
        if n_left:
            title += f" ({n_left} video(s) missing)"
        ax.set_title(title, fontsize=8)
        ax.set_xticks(xs, list(g.video), rotation=90, fontsize=6)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(corruptions):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("J&F (%)")
    axes.flat[0].legend(fontsize=6, loc="lower right")
    fig.suptitle(f"{method} vs {base} per video, strength {strength} (red: TTT hurts)", fontsize=10)
    fig.tight_layout()
    return fig


def plot_heatmap(tables: Tables) -> Figure | None:
    """Methods x corruptions J&F, one panel per strength; missing cells grey with 'n/a'."""
    strengths = list(tables.corruptions)
    if not strengths:
        return None
    columns = list(dict.fromkeys(c for t in tables.corruptions.values() for c in t.columns))
    methods = list(dict.fromkeys(m for t in tables.corruptions.values() for m in t.index))
    fig = Figure(figsize=(max(5.0, 1.6 + 0.6 * len(columns)), (0.32 * len(methods) + 0.7) * len(strengths) + 1.3),
                 layout="constrained")
    axes = fig.subplots(len(strengths), 1, squeeze=False, sharex=True)[:, 0]
    frames = {s: t.reindex(index=methods, columns=columns) for s, t in tables.corruptions.items()}
    finite = np.concatenate([t.to_numpy(dtype=float).ravel() for t in frames.values()])
    finite = finite[np.isfinite(finite)]
    vmin, vmax = (100 * finite.min(), 100 * finite.max()) if finite.size else (0, 100)
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad=_MISSING)
    im = None
    for ax, strength in zip(axes, strengths):
        data = 100 * frames[strength].to_numpy(dtype=float)
        im = ax.imshow(np.ma.masked_invalid(data), cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
        ax.set_yticks(range(len(methods)), [_label(m, tables.random_init_methods) for m in methods], fontsize=7)
        ax.set_ylabel(strength, fontsize=9)
        for i in range(data.shape[0]):
            for j in range(data.shape[1]):
                v = data[i, j]
                ax.text(j, i, f"{v:.1f}" if np.isfinite(v) else "n/a", ha="center", va="center", fontsize=6,
                        color="black" if not np.isfinite(v) or v > (vmin + vmax) / 2 else "white")
    axes[-1].set_xticks(range(len(columns)), columns, rotation=45, ha="right", fontsize=7)
    fig.suptitle("J&F (%) per method and corruption, one panel per strength (grey n/a = missing)", fontsize=9)
    if im is not None:
        fig.colorbar(im, ax=list(axes), shrink=0.8, label="J&F (%)")
    return fig


def plot_gain_bars(tables: Tables, method: str) -> Figure | None:
    """Bar chart of the mean per-video TTT gain per corruption, one bar per strength."""
    g = tables.ttt_gain
    g = g[(g.method == method) & (g.variant != "clean")]
    if g.empty:
        return None
    corruptions = list(dict.fromkeys(g.corruption))
    strengths = list(dict.fromkeys(g.strength))
    width = 0.8 / len(strengths)
    fig = Figure(figsize=(max(4.5, 1.0 + 0.6 * len(corruptions)), 3.6))
    ax = fig.add_subplot()
    for k, strength in enumerate(strengths):
        s = g[g.strength == strength].set_index("corruption").reindex(corruptions)
        xs = np.arange(len(corruptions)) + (k - (len(strengths) - 1) / 2) * width
        vals = 100 * s.gain.to_numpy(dtype=float)
        ax.bar(xs[np.isfinite(vals)], vals[np.isfinite(vals)], width, label=strength)
        for x in xs[~np.isfinite(vals)]:
            ax.text(x, 0, "n/a", ha="center", va="bottom", rotation=90, fontsize=6, color="#777777")
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(np.arange(len(corruptions)), corruptions, rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("TTT gain in J&F (points)")
    ax.set_title(f"{method} − {tables.ttt_pairs[method]}: mean per-video gain per corruption", fontsize=9)
    ax.legend(fontsize=7, title="strength", title_fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    return fig


def per_frame_jf(per_frame: dict[str, list[list[float]]]) -> np.ndarray:
    """Per-frame J&F of a video: mean over its objects of (J + F) / 2."""
    j = np.asarray(per_frame["J"], dtype=float)
    f = np.asarray(per_frame["F"], dtype=float)
    return ((j + f) / 2).mean(axis=0)


def frame_curves(results: Results, tables: Tables, video: str, variant: str) -> dict[str, dict[str, np.ndarray]]:
    """method -> {"variant": per-frame J&F, "clean": the same method's clean run (when it has one)}, seed = the
    method's lowest seed with an ok unit; methods without per-frame scores are left out."""
    grid = tables.grid
    out: dict[str, dict[str, np.ndarray]] = {}
    ok = grid[(grid.video == video) & (grid.variant == variant) & (grid.status == "ok")]
    for method, g in ok.groupby("method", sort=True):
        seed = int(g.seed.min())
        pf = results.per_frame(method, variant, video, seed)
        if not pf:
            continue
        curves = {"variant": per_frame_jf(pf), "seed": np.array(seed), "x": _frame_numbers(pf)}
        events = results.events(method, variant, video, seed)
        if events:  # temporal suite: freeze / burst runs [start, end) in video frame indices
            curves["events"] = np.array([[int(e["start"]), int(e["end"])] for e in events])
        if variant != "clean":
            clean = results.per_frame(method, "clean", video, seed)
            if clean:
                curves["clean"] = per_frame_jf(clean)
                curves["clean_x"] = _frame_numbers(clean)
        out[str(method)] = curves
    return out


def _frame_numbers(pf: dict) -> np.ndarray:
    """The video frame index of each per-frame score: from the frame names the unit records (``00017`` ->
    17), else 1..n (the official rules score frames 1..T-2)."""
    n = len(pf["J"][0]) if pf.get("J") else 0
    names = pf.get("frames") or []
    if len(names) == n and all(str(v).isdigit() for v in names):
        return np.array([int(v) for v in names])
    return np.arange(1, n + 1)


def worst_frames(curve: np.ndarray, k: int = 3) -> list[int]:
    """Indices (into ``curve``) of the ``k`` lowest per-frame J&F values, lowest first (ties: earlier frame)."""
    order = np.argsort(np.asarray(curve, dtype=float), kind="stable")
    return [int(i) for i in order[:k]]


def plot_frame_curves(curves: dict[str, dict[str, np.ndarray]], title: str, flagged: Sequence[str] = (),
                      worst: int = 3) -> Figure | None:
    """Per-frame J&F, one colour per method: solid = the variant, dotted = the same method's clean run
    (its baseline), x = the ``worst`` lowest frames of the variant, grey bands = the temporal suite's freeze /
    burst events (``curves[m]["events"]``). The legend sits outside the axes, so it
    never covers a curve; the y axis spans 0-100."""
    if not curves:
        return None
    fig = Figure(figsize=(7.6, 3.4))
    ax = fig.add_subplot()
    events = next((c["events"] for c in curves.values() if "events" in c and len(c["events"])), None)
    if events is not None:  # the temporal suite's freeze / burst runs, shaded (the same data for every method)
        for i, (s, e) in enumerate(events):
            ax.axvspan(s - 0.5, e - 0.5, color="0.85", zorder=0, label="corruption event" if i == 0 else None)
    for method, c in curves.items():
        y = 100 * np.asarray(c["variant"], dtype=float)
        x = np.asarray(c.get("x", np.arange(1, len(y) + 1)))
        seed = int(c["seed"]) if "seed" in c else None
        label = _label(method, flagged) + (f" (seed {seed})" if seed is not None else "")
        line, = ax.plot(x, y, "-", lw=1.6, label=label)
        if "clean" in c:
            yc = 100 * np.asarray(c["clean"], dtype=float)
            xc = np.asarray(c.get("clean_x", np.arange(1, len(yc) + 1)))
            ax.plot(xc, yc, ":", lw=1.4, color=line.get_color(), label=f"{method}, clean run")
        if worst:
            w = worst_frames(y, max(1, min(worst, len(y) // 4)))
            ax.plot(x[w], y[w], "x", ms=7, mew=2, color=line.get_color())
    ax.set_ylim(0, 102)
    xs = np.concatenate([np.asarray(c.get("x", np.arange(1, len(c["variant"]) + 1))) for c in curves.values()])
    ax.set_xlim(xs.min() - 0.5, xs.max() + 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("frame")
    ax.set_ylabel("J&F (%)")
    ax.set_title(title + (" (x = worst frames)" if worst else ""), fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    return fig


def plot_per_frame(results: Results, tables: Tables, video: str, variant: str) -> Figure | None:
    """Per-frame J&F of one video and variant, one curve per method, over its clean run (paper Figure 16)."""
    return plot_frame_curves(frame_curves(results, tables, video, variant), f"per-frame J&F: {video}, {variant}",
                             tables.random_init_methods)


def make_all_plots(results: Results, tables: Tables, out_dir: Path, *, strength: str | None = None,
                   frame_video: str | None = None, frame_variant: str | None = None,
                   comparison: pd.DataFrame | None = None) -> dict[str, dict[str, Path]]:
    """Every plot the data allows; returns {plot name: {"png": path, "svg": path}}."""
    made: dict[str, dict[str, Path]] = {}

    def keep(name: str, fig: Figure | None) -> None:
        if fig is not None:
            made[name] = save_figure(fig, out_dir, name)

    keep("jf_vs_strength", plot_strength(tables))
    keep("heatmap", plot_heatmap(tables))
    keep("paper_comparison", plot_paper_comparison(comparison))
    strengths = [s for s in tables.corruptions]
    chosen = strength if strength in strengths else ("med" if "med" in strengths else (strengths[0] if strengths else None))
    for method in sorted(tables.ttt_pairs):
        safe = method.replace("+", "_plus_").replace("/", "_")
        if chosen:
            keep(f"ttt_per_video_{safe}_{chosen}", plot_ttt_per_video(tables, method, chosen))
        keep(f"ttt_gain_{safe}", plot_gain_bars(tables, method))
    if tables.videos and tables.variants:
        video = frame_video or tables.videos[0]
        variant = frame_variant or next((v for v in tables.variants if v != "clean"), tables.variants[0])
        keep("per_frame", plot_per_frame(results, tables, video, variant))
    return made
