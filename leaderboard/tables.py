"""Aggregate unit results into the leaderboard tables (pure functions on DataFrames).

Conventions (the paper's and the official evaluator's):

* A (method, variant, seed) score is the official global score: J and F are averaged over **all
  objects of all videos** (objects weighted equally) and J&F = (J + F) / 2. The mean over videos of
  the per-video J&F is given alongside (``*_video`` columns).
* A cell is computed only when **every expected video** has an ``ok`` unit for **every expected
  seed**; otherwise it is NaN with ``status`` ``incomplete`` (or ``missing`` when nothing exists).
  Nothing is ever averaged over fewer videos without saying so.
* Expected units of a method: the variants and videos its ``run.json`` planned (plus any found on
  disk); for a run that does not record them, the union of those found anywhere in the tree (or the
  lists the caller passes). A unit with a non-finite score is a failed unit. Expected seeds of a
  method: its ``run.json`` ``seeds`` plus any seed found on disk.
* Across seeds: mean and population standard deviation (ddof=0, numpy's default), reported only
  when there are several seeds.
* Strength averages ("low", "med", "high") need all 14 DAVIS-C corruptions complete, "avg" (the
  paper's Table 1: mean of clean, low, med, high) and "DAVIS-C" (Table 3: mean over the 42 corrupted
  variants) need all their variants; otherwise they are NaN and an explicitly labelled partial mean
  over the complete variants is given in ``<col>_partial`` with the count in ``<col>_n``. The ``*_10``
  columns do the same over the 10 weight-free corruptions (no style1-4).
* TTT gain per video: J&F(method+ttt) - J&F(method), each averaged over its own seeds.
* The temporal suite (``common.vocabulary.TEMPORAL_CORRUPTIONS``) is a separate benchmark: its variants
  are in the per-variant leaderboard and in their own tables (``temporal``, ``recovery``:
  :mod:`leaderboard.temporal`), never in the summary columns nor the per-corruption tables.
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from common.vocabulary import (CORRUPTION_NAMES as CORRUPTIONS, STRENGTHS, WEIGHT_FREE_CORRUPTIONS, make_variant,
                               parse_variant, variant_sort_key)
from leaderboard.results import Results
from leaderboard.robustness import build_costs, build_relative_gain, build_robustness
from leaderboard.temporal import build_recovery, build_temporal_table, is_temporal

#: the paper's columns: Table 1 right (clean, low, med, high, avg) and Table 3 (DAVIS-C).
SUMMARY_COLUMNS = ("clean", *STRENGTHS, "avg", "DAVIS-C")
#: the same over the 10 weight-free corruptions (a build without the style weights has only these).
WEIGHT_FREE_COLUMNS = tuple(f"{c}_10" for c in (*STRENGTHS, "avg", "DAVIS-C"))
ALL_SUMMARY_COLUMNS = SUMMARY_COLUMNS + WEIGHT_FREE_COLUMNS
#: how each summary column is named in the report (the header says which paper column it is).
COLUMN_TITLES: dict[str, str] = {
    "clean": "clean", "low": "low", "med": "med", "high": "high",
    "avg": "avg (Table 1: mean of clean, low, med, high)",
    "DAVIS-C": "DAVIS-C (Table 3: mean of the 42 corrupted variants)",
    "low_10": "low, 10 weight-free", "med_10": "med, 10 weight-free", "high_10": "high, 10 weight-free",
    "avg_10": "avg, 10 weight-free", "DAVIS-C_10": "DAVIS-C, 10 weight-free (30 variants)",
}


@dataclass
class Tables:
    """All tables of one leaderboard (values are fractions in [0, 1]; gains are differences)."""

    grid: pd.DataFrame            # every expected (method, variant, video, seed) with its status
    seed_scores: pd.DataFrame     # per (method, variant, seed)
    leaderboard: pd.DataFrame     # per (method, variant): mean ± std across seeds, mean cost per ok unit
    summary: pd.DataFrame         # per method: clean, low, med, high, avg (+ partial columns)
    corruptions: dict[str, pd.DataFrame]  # strength -> methods x corruptions J&F
    per_video: pd.DataFrame       # per (method, variant, video) + TTT gain
    ttt_gain: pd.DataFrame        # per (ttt method, variant): mean per-video gain
    missing: pd.DataFrame         # every non-ok expected unit
    runs: pd.DataFrame            # run metadata per method
    videos: list[str]
    variants: list[str]
    ttt_pairs: dict[str, str]     # ttt method -> its base method
    random_init_methods: list[str]
    problems: list[str] = field(default_factory=list)
    robustness: pd.DataFrame = field(default_factory=pd.DataFrame)     # per method: mCP, rP (leaderboard.robustness)
    relative_gain: pd.DataFrame = field(default_factory=pd.DataFrame)  # per (ttt method, variant)
    costs: pd.DataFrame = field(default_factory=pd.DataFrame)          # per method: seconds and memory per video
    temporal: pd.DataFrame = field(default_factory=pd.DataFrame)       # the temporal suite (leaderboard.temporal)
    recovery: pd.DataFrame = field(default_factory=pd.DataFrame)       # its recovery metric per (method, variant)


# ----------------------------------------------------------------------------- helpers

def _sorted_variants(variants: Iterable[str]) -> list[str]:
    return sorted(set(variants), key=variant_sort_key)


def _std(values: pd.Series) -> float:
    """Population std across seeds; NaN for a single seed (no spread to report)."""
    v = values.to_numpy(dtype=float)
    return float(np.std(v)) if len(v) > 1 else float("nan")


def expected_seeds(results: Results) -> dict[str, list[int]]:
    """Seeds each method should have: ``run.json`` seeds plus every seed found on disk."""
    out: dict[str, list[int]] = {}
    all_seeds = sorted(set(int(s) for s in results.units["seed"]))
    for method in results.methods:
        declared = results.runs.get(method, {}).get("seeds") or []
        found = results.units.loc[results.units.method == method, "seed"]
        seeds = sorted(set(int(s) for s in declared) | set(int(s) for s in found))
        out[method] = seeds or all_seeds or [0]
    return out


def ttt_pairs(results: Results) -> dict[str, str]:
    """Map each test-time-training method to its no-TTT base method.

    A method whose ``run.json`` config names ``pairs_with`` pairs with that method (``eosvos-10`` with
    ``eosvos-0``: fine-tuning vs the meta-learned init); otherwise ``stcn+mcc`` pairs with ``stcn`` by name
    (``sam2.1-b++mcc`` with ``sam2.1-b+``: the last ``+``); otherwise a method whose ``run.json`` config has a
    ``ttt`` preset pairs with a method of the same ``model`` and no ``ttt``.
    """
    methods = results.methods
    pairs: dict[str, str] = {}
    for method in methods:
        explicit = (results.runs.get(method, {}).get("config") or {}).get("pairs_with")
        if explicit:
            if explicit in methods and explicit != method:
                pairs[method] = explicit
            continue
        base = method.rsplit("+", 1)[0]
        if "+" in method and base in methods:
            pairs[method] = base
            continue
        cfg = results.runs.get(method, {}).get("config") or {}
        if not cfg.get("ttt"):
            continue
        for other in methods:
            ocfg = results.runs.get(other, {}).get("config") or {}
            if other != method and ocfg.get("model") == cfg.get("model") and not ocfg.get("ttt") and ocfg:
                pairs[method] = other
                break
    return pairs


def random_init_methods(results: Results) -> list[str]:
    """Methods whose run or any unit used random-init weights (their numbers mean nothing)."""
    flagged = {m for m, run in results.runs.items() if run.get("random_init")}
    flagged |= set(results.units.loc[results.units.random_init.astype(bool), "method"])
    return sorted(flagged)


# ----------------------------------------------------------------------------- tables

def planned_units(results: Results, method: str) -> tuple[list[str] | None, list[str] | None]:
    """(variants, videos) a method's ``run.json`` says were planned (``harness.run`` and
    ``harness.score`` record them), or None where the run does not say (an older tree)."""
    run = results.runs.get(method, {})
    out = []
    for key in ("variants", "videos"):
        value = run.get(key)
        out.append([str(v) for v in value] if isinstance(value, list) and value else None)
    return out[0], out[1]


def build_grid(results: Results, videos: list[str] | None = None, variants: list[str] | None = None) -> pd.DataFrame:
    """Every expected (method, variant, video, seed) with status ok / failed / missing.

    Expected units of a method are those its ``run.json`` planned (variants and videos), plus any found
    on disk; a run that does not record its plan expects every variant and video found anywhere in the
    tree. ``videos`` / ``variants`` given by the caller replace the plan for every method.
    """
    all_videos = sorted(set(results.units.video))
    all_variants = _sorted_variants(results.units.variant)
    seeds = expected_seeds(results)
    rows = []
    for m in results.methods:
        plan_variants, plan_videos = planned_units(results, m)
        own = results.units[results.units.method == m]
        m_videos = list(videos) if videos is not None else (
            sorted(set(plan_videos) | set(own.video)) if plan_videos else all_videos)
        m_variants = list(variants) if variants is not None else (
            _sorted_variants(set(plan_variants) | set(own.variant)) if plan_variants else all_variants)
        rows += [(m, v, vid, s) for v in m_variants for vid in m_videos for s in seeds[m]]
    grid = pd.DataFrame(rows, columns=["method", "variant", "video", "seed"])
    units = results.units.drop(columns=["strength", "corruption"])
    grid = grid.merge(units, on=["method", "variant", "video", "seed"], how="left")
    grid["status"] = grid["status"].fillna("missing")
    parsed = [parse_variant(v) for v in grid["variant"]]
    grid.insert(2, "strength", [p[0] for p in parsed])
    grid.insert(3, "corruption", [p[1] for p in parsed])
    grid["n_objects"] = grid["n_objects"].fillna(0).astype(int)
    return grid


def build_seed_scores(grid: pd.DataFrame, objects: pd.DataFrame) -> pd.DataFrame:
    """Official global score per (method, variant, seed); NaN unless all expected videos are ok."""
    keys = ["method", "variant", "seed"]
    ok = grid[grid.status == "ok"]
    counts = grid.groupby(keys, sort=False).agg(
        n_expected=("video", "size"),
        n_ok=("status", lambda s: int((s == "ok").sum())),
        n_failed=("status", lambda s: int((s == "failed").sum())),
        n_missing=("status", lambda s: int((s == "missing").sum())),
        n_submit=("status", lambda s: int((s == "submit").sum())),
    ).reset_index()
    video_mean = ok.groupby(keys).agg(JF_video=("JF", "mean"), J_video=("J", "mean"), F_video=("F", "mean"))
    ok_keys = ok[["method", "variant", "video", "seed"]]
    objs = objects.merge(ok_keys, on=["method", "variant", "video", "seed"], how="inner")
    obj_mean = objs.groupby(keys).agg(J=("J", "mean"), F=("F", "mean"), n_objects=("object_id", "size"))
    out = counts.merge(obj_mean.reset_index(), on=keys, how="left").merge(video_mean.reset_index(), on=keys, how="left")
    out["JF"] = (out["J"] + out["F"]) / 2
    out["complete"] = out["n_ok"] == out["n_expected"]
    for col in ("J", "F", "JF", "J_video", "F_video", "JF_video"):
        out.loc[~out.complete, col] = np.nan
    out["n_objects"] = out["n_objects"].fillna(0).astype(int)
    return out[keys + ["JF", "J", "F", "JF_video", "J_video", "F_video", "n_objects",
                       "n_expected", "n_ok", "n_failed", "n_missing", "n_submit", "complete"]]


def _cell_status(group: pd.DataFrame) -> str:
    if group["complete"].all():
        return "ok"
    if (group["n_submit"] == group["n_expected"]).all():  # private ground truth (harness.submission)
        return "submit to score"
    return "missing" if (group["n_ok"] + group["n_failed"]).sum() == 0 else "incomplete"


def _missing_note(group: pd.DataFrame) -> str:
    notes = []
    for _, r in group.iterrows():
        if not r.complete:
            notes.append(f"seed {r.seed}: {r.n_ok}/{r.n_expected} videos ok"
                         + (f", {r.n_failed} failed" if r.n_failed else "")
                         + (f", {r.n_missing} missing" if r.n_missing else ""))
    return "; ".join(notes)


def build_leaderboard(seed_scores: pd.DataFrame) -> pd.DataFrame:
    """One row per (method, variant): mean ± std across seeds of the official scores."""
    rows = []
    for (method, variant), g in seed_scores.groupby(["method", "variant"], sort=False):
        status = _cell_status(g)
        complete = status == "ok"
        strength, corruption = parse_variant(variant)
        row: dict[str, Any] = {
            "method": method, "variant": variant, "strength": strength or "clean", "corruption": corruption,
            "status": status, "seeds": " ".join(str(s) for s in g["seed"]), "n_seeds": len(g),
            "n_videos": int(g["n_expected"].iloc[0]), "n_objects": int(g["n_objects"].max()),
        }
        for col in ("JF", "J", "F", "JF_video", "J_video", "F_video"):
            row[col] = float(g[col].mean()) if complete else np.nan
            row[f"{col}_std"] = _std(g[col]) if complete else np.nan
        row["note"] = _missing_note(g)
        rows.append(row)
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    df["_k"] = [variant_sort_key(v) for v in df.variant]
    return df.sort_values(["method", "_k"]).drop(columns="_k").reset_index(drop=True)


def _strength_variants(strength: str, corruptions: Sequence[str]) -> list[str]:
    return [make_variant(strength, c) for c in corruptions]


#: summary column -> (corruption set, variants it averages); "avg" is derived (see build_summary).
def _column_variants(col: str) -> list[str]:
    base, _, suffix = col.partition("_")
    corr = WEIGHT_FREE_CORRUPTIONS if suffix == "10" else CORRUPTIONS
    if base == "clean":
        return ["clean"]
    if base == "DAVIS-C":
        return [v for s in STRENGTHS for v in _strength_variants(s, corr)]
    if base == "avg":
        return ["clean"] + [v for s in STRENGTHS for v in _strength_variants(s, corr)]
    return _strength_variants(base, corr)


def _aggregate(ss: pd.DataFrame, wanted: list[str]) -> dict[str, Any]:
    """Mean over ``wanted`` variants of the official J&F, per seed; NaN unless all are complete."""
    sub = ss[ss.variant.isin(wanted)]
    done = [v for v, g in sub.groupby("variant") if g["complete"].all()]
    per_variant = sub[sub.variant.isin(done)].groupby("variant")["JF"].mean()
    counted = sub[sub.variant.isin(done)] if done else sub
    out = {"n": len(done), "of": len(wanted), "partial": float(per_variant.mean()) if done else np.nan,
           "per_seed": None, "videos": int(counted["n_expected"].max()) if len(counted) else 0,
           "objects": int(counted["n_objects"].max()) if len(counted) else 0}
    if len(done) == len(wanted):
        out["per_seed"] = sub.groupby("seed")["JF"].mean()  # complete: every seed has every variant
    return out


def build_summary(seed_scores: pd.DataFrame, methods: list[str]) -> pd.DataFrame:
    """Methods x the paper's aggregate columns (values are fractions).

    * ``clean``; ``low``/``med``/``high``: mean over the 14 corruptions at that strength (Table 1 right);
    * ``avg``: mean of the four columns clean, low, med and high (the paper's Table 1 / Table 2 ``avg``);
    * ``DAVIS-C``: mean over the 42 corrupted variants, clean excluded (the paper's Table 3 ``DAVIS-C``,
      the *mean corruption performance*);
    * ``*_10``: the same over the 10 weight-free corruptions (no style1-4), complete on a build made
      without the style-transfer weights.

    Each is computed per seed and then averaged (± population std across seeds); it is NaN unless every
    variant it needs is complete for every seed, and ``<col>_partial`` (over the complete variants,
    labelled partial everywhere it is shown) with ``<col>_n`` / ``<col>_of`` (variants) say how far it got.
    """
    rows = []
    for method in methods:
        ss = seed_scores[seed_scores.method == method]
        row: dict[str, Any] = {"method": method}
        for suffix in ("", "_10"):
            parts: dict[str, dict[str, Any]] = {}
            for base in ("clean", *STRENGTHS, "DAVIS-C"):
                col = base + (suffix if base != "clean" else "")
                parts[base] = _aggregate(ss, _column_variants(col))
            # avg = mean of the four columns (per seed), not of the variants
            comps = [parts[b] for b in ("clean", *STRENGTHS)]
            avg: dict[str, Any] = {"n": sum(c["n"] for c in comps), "of": sum(c["of"] for c in comps),
                                   "per_seed": None, "videos": max(c["videos"] for c in comps),
                                   "objects": max(c["objects"] for c in comps)}
            vals = [c["per_seed"].mean() if c["per_seed"] is not None else c["partial"] for c in comps]
            vals = [v for v in vals if np.isfinite(v)]
            avg["partial"] = float(np.mean(vals)) if vals else np.nan
            if all(c["per_seed"] is not None for c in comps):
                avg["per_seed"] = pd.concat([c["per_seed"] for c in comps], axis=1).mean(axis=1)
            parts["avg"] = avg
            for base in ("clean", *STRENGTHS, "avg", "DAVIS-C"):
                if base == "clean" and suffix:
                    continue
                col = base + (suffix if base != "clean" else "")
                agg = parts[base]
                row[f"{col}_n"], row[f"{col}_of"], row[f"{col}_partial"] = agg["n"], agg["of"], agg["partial"]
                row[f"{col}_videos"], row[f"{col}_objects"] = agg["videos"], agg["objects"]
                if agg["per_seed"] is not None:
                    row[col] = float(agg["per_seed"].mean())
                    row[f"{col}_std"] = _std(agg["per_seed"])
                else:
                    row[col] = np.nan
                    row[f"{col}_std"] = np.nan
        rows.append(row)
    order = ["method"] + [f"{c}{x}" for c in ALL_SUMMARY_COLUMNS for x in ("", "_std")]
    order += [f"{c}{x}" for c in ALL_SUMMARY_COLUMNS for x in ("_n", "_of", "_partial", "_videos", "_objects")]
    return pd.DataFrame(rows, columns=order)


def coverage(grid: pd.DataFrame) -> pd.DataFrame:
    """Per method: the videos it is expected on against the videos of the whole tree.  A method scored on
    fewer videos than the tree holds is **partial**: its numbers average other videos than the complete
    methods' and every table marks it (``partial``, ``coverage``)."""
    cols = ["method", "n_videos", "n_tree_videos", "partial", "coverage"]
    if grid.empty:
        return pd.DataFrame(columns=cols)
    tree = set(grid.video)
    rows = []
    for method, g in grid.groupby("method", sort=True):
        n = g.video.nunique()
        partial = n < len(tree)
        rows.append({"method": method, "n_videos": n, "n_tree_videos": len(tree), "partial": partial,
                     "coverage": f"partial: {n} of {len(tree)} videos" if partial else f"{n} videos"})
    return pd.DataFrame(rows, columns=cols)


def _with_coverage(df: pd.DataFrame, cov: pd.DataFrame) -> pd.DataFrame:
    """``df`` with the method's ``partial`` and ``coverage`` columns (every table and CSV carries them)."""
    if df.empty or "method" not in df.columns:
        out = df.copy()
        for c in ("partial", "coverage"):
            if c not in out.columns:
                out[c] = pd.Series(dtype=object)
        return out
    extra = cov[["method", "partial", "coverage"]]
    out = df.drop(columns=[c for c in ("partial", "coverage") if c in df.columns]).merge(extra, on="method", how="left")
    out["partial"] = out["partial"].fillna(False).astype(bool)
    out["coverage"] = out["coverage"].fillna("")
    return out


def method_label(method: str, partial_methods: Iterable[str] = (), random_init: Iterable[str] = (),
                 coverage_text: dict[str, str] | None = None) -> str:
    """How a method is named in a displayed table: flagged when random-init, marked when partial."""
    label = method
    if method in set(random_init):
        label += " ⚠ random-init"
    if method in set(partial_methods):
        label += f" ({(coverage_text or {}).get(method, 'partial')})"
    return label


def build_corruption_tables(leaderboard: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per strength: methods x corruptions J&F (Figure 6's grouping); NaN marks missing cells."""
    out: dict[str, pd.DataFrame] = {}
    if leaderboard.empty:
        return out
    corrupted = leaderboard[(leaderboard.variant != "clean") & ~leaderboard.corruption.map(is_temporal).astype(bool)]
    for strength in [s for s in STRENGTHS if s in set(corrupted.strength)] + sorted(
            set(corrupted.strength) - set(STRENGTHS)):
        sub = corrupted[corrupted.strength == strength]
        cols = [c for c in CORRUPTIONS if c in set(sub.corruption)] + sorted(set(sub.corruption) - set(CORRUPTIONS))
        out[strength] = sub.pivot(index="method", columns="corruption", values="JF").reindex(columns=cols)
    return out


def build_per_video(grid: pd.DataFrame, pairs: dict[str, str]) -> pd.DataFrame:
    """Each video's J&F per method and variant (mean over seeds) and the TTT gain per video."""
    rows = []
    for (method, variant, video), g in grid.groupby(["method", "variant", "video"], sort=False):
        ok = g[g.status == "ok"]
        complete = len(ok) == len(g)
        if complete:
            status = "ok"
        elif ok.empty and (g.status == "missing").all():
            status = "missing"
        elif (g.status == "submit").all():
            status = "submit to score"
        elif ok.empty:
            status = "failed"
        else:
            status = "incomplete"
        errors = [e for e in g["error"].dropna().unique() if e]
        rows.append({
            "method": method, "variant": variant, "video": video,
            "seeds": " ".join(str(s) for s in g["seed"]), "n_seeds_ok": len(ok), "n_seeds": len(g),
            "status": status,
            "JF": float(ok["JF"].mean()) if complete else np.nan,
            "JF_std": _std(ok["JF"]) if complete else np.nan,
            "J": float(ok["J"].mean()) if complete else np.nan,
            "F": float(ok["F"].mean()) if complete else np.nan,
            "n_objects": int(g["n_objects"].max()),
            "error": "; ".join(errors) if errors else "",
        })
    pv = pd.DataFrame(rows)
    if pv.empty:
        return pv
    base_of = [pairs.get(m, "") for m in pv["method"]]
    lookup = pv.set_index(["method", "variant", "video"])["JF"]
    base_jf = [lookup.get((b, v, vid), np.nan) if b else np.nan for b, v, vid in zip(base_of, pv.variant, pv.video)]
    pv["base_method"] = base_of
    pv["base_JF"] = base_jf
    pv["ttt_gain"] = pv["JF"] - pv["base_JF"]
    pv["_k"] = [variant_sort_key(v) for v in pv.variant]
    return pv.sort_values(["method", "_k", "video"]).drop(columns="_k").reset_index(drop=True)


def build_ttt_gain(per_video: pd.DataFrame, pairs: dict[str, str]) -> pd.DataFrame:
    """Mean over videos of the per-video TTT gain; NaN unless every video has both numbers."""
    rows = []
    for method, base in pairs.items():
        sub = per_video[per_video.method == method]
        for variant, g in sub.groupby("variant", sort=False):
            strength, corruption = parse_variant(variant)
            have = g["ttt_gain"].notna()
            complete = bool(have.all())
            rows.append({
                "method": method, "base_method": base, "variant": variant,
                "strength": strength or "clean", "corruption": corruption,
                "n_videos": int(have.sum()), "n_expected": len(g), "complete": complete,
                "gain": float(g["ttt_gain"].mean()) if complete else np.nan,
                "n_hurt": int((g["ttt_gain"] < 0).sum()),
                "base_JF_video": float(g["base_JF"].mean()) if complete else np.nan,
                "JF_video": float(g["JF"].mean()) if complete else np.nan,
            })
    df = pd.DataFrame(rows, columns=["method", "base_method", "variant", "strength", "corruption", "n_videos",
                                     "n_expected", "complete", "gain", "n_hurt", "base_JF_video", "JF_video"])
    if df.empty:
        return df
    df["_k"] = [variant_sort_key(v) for v in df.variant]
    return df.sort_values(["method", "_k"]).drop(columns="_k").reset_index(drop=True)


def build_runs(results: Results, seeds: dict[str, list[int]], flagged: list[str]) -> pd.DataFrame:
    """Run metadata per method (toolkit version, checkpoint hash, seeds, device, random-init)."""
    rows = []
    for method in results.methods:
        run = results.runs.get(method, {})
        cfg = run.get("config") or {}
        rows.append({
            "method": method,
            "model": cfg.get("model", ""),
            "ttt": cfg.get("ttt") or "",
            "toolkit_version": run.get("toolkit_version", ""),
            "checkpoint": run.get("checkpoint") or "",
            "checkpoint_sha256": run.get("checkpoint_sha256") or "",
            "random_init": method in flagged,
            "device": run.get("device", ""),
            "seeds": " ".join(str(s) for s in seeds.get(method, [])),
            "created": run.get("created", ""),
            "imported_from": ((run.get("imported") or {}).get("source") or "unknown tool")
            if isinstance(run.get("imported"), dict) else "",
        })
    return pd.DataFrame(rows)


def build_tables(results: Results, videos: list[str] | None = None) -> Tables:
    """All leaderboard tables from one results tree."""
    grid = build_grid(results, videos=videos)
    seeds = expected_seeds(results)
    pairs = ttt_pairs(results)
    flagged = random_init_methods(results)
    seed_scores = build_seed_scores(grid, results.objects)
    lb = build_leaderboard(seed_scores)
    if not lb.empty:
        ok = grid[grid.status == "ok"]
        cost = ok.groupby(["method", "variant"]).agg(ttt_s=("ttt_s", "mean"), inference_s=("inference_s", "mean"),
                                                     fps=("fps", "mean"), peak_memory_mb=("peak_memory_mb", "max"))
        lb = lb.merge(cost.reset_index(), on=["method", "variant"], how="left")
    per_video = build_per_video(grid, pairs)
    missing = grid[grid.status != "ok"][["method", "variant", "video", "seed", "status", "error", "path"]]
    summary = build_summary(seed_scores, results.methods)
    cov = coverage(grid)
    robustness = build_robustness(summary)
    if not robustness.empty:  # each robustness cell: the videos and objects of the columns it divides
        robustness = robustness.merge(summary[["method", "clean_videos", "clean_objects", "DAVIS-C_videos",
                                               "DAVIS-C_objects"]], on="method", how="left")
    relative = build_relative_gain(lb, pairs)
    if not relative.empty and not lb.empty:
        counts = lb.set_index(["method", "variant"])[["n_videos", "n_objects"]]
        relative["n_videos"] = [counts["n_videos"].get((m, v), 0) for m, v in zip(relative.method, relative.variant)]
        relative["base_n_videos"] = [counts["n_videos"].get((b, v), 0)
                                     for b, v in zip(relative.base_method, relative.variant)]
        relative["n_objects"] = [counts["n_objects"].get((m, v), 0) for m, v in zip(relative.method, relative.variant)]
    return Tables(
        grid=grid, seed_scores=seed_scores, leaderboard=_with_coverage(lb, cov), summary=_with_coverage(summary, cov),
        robustness=_with_coverage(robustness, cov), relative_gain=_with_coverage(relative, cov),
        costs=build_costs(grid),
        corruptions=build_corruption_tables(lb), per_video=_with_coverage(per_video, cov),
        ttt_gain=_with_coverage(build_ttt_gain(per_video, pairs), cov), missing=missing.reset_index(drop=True),
        runs=build_runs(results, seeds, flagged),
        temporal=build_temporal_table(lb), recovery=build_recovery(results, grid),
        videos=sorted(set(grid.video)), variants=_sorted_variants(grid.variant) if len(grid) else [],
        ttt_pairs=pairs, random_init_methods=flagged, problems=list(results.problems),
    )


# ----------------------------------------------------------------------------- text output

def pct(value: float, std: float = float("nan"), missing: str = "—") -> str:
    """A fraction shown as the paper does: x100, one decimal, '± std' when there is a spread."""
    if value is None or not np.isfinite(value):
        return missing
    text = f"{100 * value:.1f}"
    if std is not None and np.isfinite(std):
        text += f" ± {100 * std:.1f}"
    return text


def summary_display(summary: pd.DataFrame, columns: Sequence[str] = ALL_SUMMARY_COLUMNS) -> pd.DataFrame:
    """The summary as strings; an incomplete cell says so and shows its partial mean labelled; a method
    scored on fewer videos than the tree holds is named partial; every cell carries its video count where it
    differs from the row's ``videos (objects)``."""
    partial = list(summary["method"][summary["partial"]]) if "partial" in summary.columns else []
    cov = dict(zip(summary["method"], summary["coverage"])) if "coverage" in summary.columns else {}
    out = pd.DataFrame({"method": [method_label(m, partial, (), cov) for m in summary["method"]]})
    row_videos = [max([int(r[f"{c}_videos"]) for c in columns if f"{c}_videos" in r] or [0])
                  for _, r in summary.iterrows()]
    row_objects = [max([int(r[f"{c}_objects"]) for c in columns if f"{c}_objects" in r] or [0])
                   for _, r in summary.iterrows()]
    for col in columns:
        cells = []
        for i, (_, r) in enumerate(summary.iterrows()):
            n_v = int(r.get(f"{col}_videos", row_videos[i]))
            count = f" [{n_v} videos]" if n_v != row_videos[i] else ""
            if np.isfinite(r[col]):
                cells.append(pct(r[col], r[f"{col}_std"]) + count)
            elif r[f"{col}_n"] == 0:
                cells.append("missing")
            else:
                cells.append(f"incomplete ({r[f'{col}_n']}/{r[f'{col}_of']} variants, partial mean "
                             f"{pct(r[f'{col}_partial'])})")
        out[COLUMN_TITLES.get(col, col)] = cells
    out["videos (objects)"] = [f"{v} ({o})" for v, o in zip(row_videos, row_objects)]
    return out


def leaderboard_display(lb: pd.DataFrame, random_init: Iterable[str] = ()) -> pd.DataFrame:
    """The leaderboard as strings for Markdown / HTML."""
    flagged = set(random_init)
    partial = set(lb.method[lb["partial"]]) if "partial" in lb.columns and len(lb) else set()
    cov = dict(zip(lb.method, lb["coverage"])) if "coverage" in lb.columns else {}
    rows = []
    for _, r in lb.iterrows():
        rows.append({
            "method": method_label(r.method, partial, flagged, cov),
            "variant": r.variant,
            "J&F": pct(r.JF, r.JF_std, missing=r.status), "J": pct(r.J, r.J_std, missing=r.status),
            "F": pct(r.F, r.F_std, missing=r.status), "J&F (video mean)": pct(r.JF_video, r.JF_video_std, missing=r.status),
            "videos": r.n_videos, "objects": r.n_objects, "seeds": r.seeds, "note": r.note,
        })
    return pd.DataFrame(rows)


_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*[]|"})


def md_escape(text: Any) -> str:
    """Text safe inside Markdown: HTML is escaped (``<img ...>`` shows as text, as in index.html), Markdown
    syntax characters and table pipes are backslash-escaped, newlines become spaces."""
    return html.escape(str(text), quote=False).translate(_MD_SPECIAL).replace("\n", " ").replace("\r", " ")


def markdown_table(df: pd.DataFrame, index: bool = False) -> str:
    """A GitHub Markdown table (no extra dependency); floats are shown as x100 percentages; every cell
    and header is escaped with :func:`md_escape`."""
    frame = df.reset_index() if index else df
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return pct(v)
        return md_escape(v)
    header = "| " + " | ".join(md_escape(c) for c in frame.columns) + " |"
    sep = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, sep, *body])


def corruption_display(leaderboard: pd.DataFrame, random_init: Iterable[str] = ()) -> dict[str, pd.DataFrame]:
    """Per strength: methods x corruptions as strings; a missing cell says 'missing' or 'incomplete'."""
    flagged = set(random_init)
    out: dict[str, pd.DataFrame] = {}
    if leaderboard.empty:
        return out
    lb = leaderboard[(leaderboard.variant != "clean") & ~leaderboard.corruption.map(is_temporal).astype(bool)].copy()
    if lb.empty:
        return out
    lb["cell"] = [pct(r.JF, r.JF_std, missing=r.status) + (f" [{r.n_videos} videos]" if r.status == "ok" else "")
                  for r in lb.itertuples()]
    partial = set(lb.method[lb["partial"]]) if "partial" in lb.columns and len(lb) else set()
    cov = dict(zip(lb.method, lb["coverage"])) if "coverage" in lb.columns else {}
    lb["method"] = [method_label(m, partial, flagged, cov) for m in lb.method]
    for strength in [s for s in STRENGTHS if s in set(lb.strength)] + sorted(set(lb.strength) - set(STRENGTHS)):
        sub = lb[lb.strength == strength]
        cols = [c for c in CORRUPTIONS if c in set(sub.corruption)] + sorted(set(sub.corruption) - set(CORRUPTIONS))
        table = sub.pivot(index="method", columns="corruption", values="cell").reindex(columns=cols).fillna("missing")
        table.columns.name = None
        out[strength] = table.reset_index()
    return out


def per_video_display(per_video: pd.DataFrame) -> pd.DataFrame:
    """Per-video rows as strings (J&F ± std across seeds, TTT gain in points)."""
    rows = []
    for r in per_video.itertuples():
        rows.append({
            "method": r.method + (f" ({r.coverage})" if getattr(r, "partial", False) else ""),
            "variant": r.variant, "video": r.video,
            "J&F": pct(r.JF, r.JF_std, missing=r.status), "J": pct(r.J, missing=r.status),
            "F": pct(r.F, missing=r.status), "objects": r.n_objects, "seeds ok": f"{r.n_seeds_ok}/{r.n_seeds}",
            "TTT gain": f"{100 * r.ttt_gain:+.1f}" if np.isfinite(r.ttt_gain) else "",
            "vs": r.base_method, "error": r.error,
        })
    return pd.DataFrame(rows)
