"""Projected GPU-hours of a planned run (``python -m harness.run ... --estimate``), before booking GPUs.

Two sources of seconds per unit, in this order:

1. ``--figures FILE``: the small JSON the benchmarks write (``benchmarks/bench_ttt.py --device cuda
   --figures figures.json``): per method, seconds per unit on a DAVIS-sized synthetic video
   (480x854, 70 frames, 2 objects; DAVIS-2017 val has 1999 frames over 30 videos, 67 per video) and
   units per hour per GPU with 1, 2 and 4 workers;
2. otherwise the finished units of the same method (``--name``) in ``--out``: their recorded TTT +
   inference seconds, per video where that video has finished units (the same video costs about
   the same in every variant and seed), else the mean over all finished units.

Nothing is run, no model is built and nothing is written.  The figure file format::

    {"schema": "davis_c.figures/1",
     "methods": {"stcn+mcc": {"device": "NVIDIA H100 80GB HBM3", "mode": "exact",
                              "video": {"height": 480, "width": 854, "frames": 70, "objects": 2},
                              "seconds_per_unit": 61.0, "peak_memory_mb": 5200.0,
                              "units_per_hour": {"1": 59.0, "2": 95.0, "4": 110.0}}}}
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

__all__ = ["FIGURES_SCHEMA", "EstimateError", "Estimate", "add_arguments", "read_figures", "merge_figures",
           "write_figures", "estimate_from_figures", "estimate_from_units", "planned_units", "format_estimate",
           "main_estimate"]

FIGURES_SCHEMA = "davis_c.figures/1"


class EstimateError(ValueError):
    """No figures to estimate from, or a figures file that cannot be read."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``--estimate`` / ``--figures`` options of ``harness.run``."""
    g = parser.add_argument_group("estimate (nothing is run)")
    g.add_argument("--estimate", action="store_true", help="print the projected GPU-hours of this run and exit: "
                   "from --figures, else from finished units of the same method in --out")
    g.add_argument("--figures", metavar="FILE", help="benchmark figures JSON (benchmarks/bench_*.py --figures FILE)")


# --------------------------------------------------------------------------------------------- figures
def read_figures(path: str | os.PathLike) -> dict[str, Any]:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise EstimateError(f"--figures {path}: cannot read it: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise EstimateError(f"--figures {path}: not JSON: {exc}") from exc
    if not isinstance(data, dict) or data.get("schema") != FIGURES_SCHEMA or not isinstance(data.get("methods"), dict):
        raise EstimateError(f"--figures {path}: not a figures file (expected schema {FIGURES_SCHEMA!r} with "
                            "'methods'; the benchmarks write it with --figures FILE)")
    return data


def merge_figures(old: dict[str, Any] | None, method: str, entry: dict[str, Any]) -> dict[str, Any]:
    """``old`` with ``methods[method]`` replaced by ``entry`` (a pure function)."""
    methods = dict((old or {}).get("methods") or {})
    methods[method] = entry
    return {"schema": FIGURES_SCHEMA, "methods": dict(sorted(methods.items()))}


def write_figures(path: str | os.PathLike, method: str, entry: dict[str, Any]) -> dict[str, Any]:
    """Add (or replace) one method's figures in ``path``, atomically; returns the whole file."""
    from common.atomic import write_text_atomic

    path = Path(path)
    old = read_figures(path) if path.is_file() else None
    data = merge_figures(old, method, entry)
    write_text_atomic(path, json.dumps(data, indent=1) + "\n")
    return data


# --------------------------------------------------------------------------------------------- estimates
@dataclass
class Estimate:
    method: str
    units: int                      # units of the planned run (this shard)
    done: int                       # already finished ok
    pending: int
    seconds_per_unit: float         # mean projected seconds of a pending unit, one unit at a time per GPU
    gpu_hours: float                # pending units, one worker per GPU
    source: str                     # where the seconds come from
    per_workers: dict[int, float] = field(default_factory=dict)   # workers per GPU -> GPU-hours
    notes: list[str] = field(default_factory=list)


def estimate_from_figures(figures: dict[str, Any], method: str, units: int, done: int, pending: int,
                          origin: str = "figures") -> Estimate:
    entry = figures["methods"].get(method)
    if entry is None:
        known = ", ".join(figures["methods"]) or "none"
        raise EstimateError(f"{origin} has no figures for method {method!r} (it has: {known}); run the method's "
                            "benchmark with --figures, or pass --name of a method in it")
    spu = float(entry["seconds_per_unit"])
    if not math.isfinite(spu) or spu <= 0:
        raise EstimateError(f"{origin}: seconds_per_unit of {method!r} is {entry['seconds_per_unit']!r}")
    per = {}
    for w, uph in (entry.get("units_per_hour") or {}).items():
        if uph and float(uph) > 0:
            per[int(w)] = pending / float(uph)
    video = entry.get("video") or {}
    size = (f"{video.get('height')}x{video.get('width')}, {video.get('frames')} frames, {video.get('objects')} objects"
            if video else "unknown video size")
    est = Estimate(method, units, done, pending, spu, pending * spu / 3600,
                   f"{origin}: {entry.get('device', 'unknown device')}, {entry.get('mode', 'exact')} mode, "
                   f"synthetic video {size}", per)
    if str(entry.get("device", "")).lower().startswith("cpu"):
        est.notes.append("these figures were measured on a CPU, not a GPU: the GPU-hours are CPU-hours")
    return est


def estimate_from_units(records: Sequence[dict], planned_videos: Sequence[str], method: str, units: int, done: int,
                        device: str | None = None) -> Estimate:
    """From finished unit records (``status: ok`` with ``timing``): seconds per pending unit's video."""
    secs: dict[str, list[float]] = {}
    for rec in records:
        timing = rec.get("timing") or {}
        if rec.get("status") != "ok" or timing.get("inference_s") is None:
            continue
        secs.setdefault(rec["video"], []).append(float(timing.get("ttt_s") or 0.0) + float(timing["inference_s"]))
    if not secs:
        raise EstimateError(f"no finished units of {method!r} to estimate from: pass --figures FILE (benchmarks/"
                            "bench_ttt.py --figures FILE writes one), or run a few units first (e.g. --videos NAME "
                            "--variants clean)")
    overall = sum(sum(v) for v in secs.values()) / sum(len(v) for v in secs.values())
    total = sum((sum(secs[v]) / len(secs[v])) if v in secs else overall for v in planned_videos)
    pending = len(planned_videos)
    spu = total / pending if pending else overall
    n = sum(len(v) for v in secs.values())
    unseen = len({v for v in planned_videos if v not in secs})
    est = Estimate(method, units, done, pending, spu, total / 3600,
                   f"{n} finished unit(s) of {method} in --out ({len(secs)} video(s); device {device or 'unknown'}; "
                   "TTT + inference seconds, without loading and scoring)")
    if unseen:
        est.notes.append(f"{unseen} pending video(s) have no finished unit yet: counted at the mean, "
                         f"{overall:.1f} s/unit")
    if device and not str(device).startswith("cuda"):
        est.notes.append(f"the finished units ran on {device}, not on a GPU")
    return est


def planned_units(req) -> tuple[list, Any]:
    """This run's unit list (shard applied) without building the model; returns (units, source spec text)."""
    from harness.data import open_source, select_variants, select_videos
    from harness.methods import load_method
    from harness.planner import default_data
    from harness.units import make_units, shard_units

    method, _config = load_method(req.method, config_file=req.config_file, overrides=req.overrides)
    name = req.name or method
    data = Path(req.data) if req.data else default_data(lambda msg: print(msg, file=sys.stderr))
    with open_source(data, req.annotations) as source:
        variants = select_variants(source.variants, req.variants, str(data))
        videos = select_videos(source.videos, req.videos, str(data))
        desc = source.describe()
    return shard_units(make_units(name, variants, videos, [int(s) for s in req.seeds]), *req.shard), desc


def _hours(h: float) -> str:
    return f"{h:.1f} GPU-hours" if h >= 10 else f"{h:.2f} GPU-hours" if h >= 0.1 else f"{h * 60:.1f} GPU-minutes"


def format_estimate(est: Estimate, tasks: int | None = None) -> str:
    lines = [f"{est.method}: {est.units} unit(s) planned, {est.done} done, {est.pending} to run",
             f"  {est.seconds_per_unit:.1f} s per unit ({est.source})",
             f"  projected: {_hours(est.gpu_hours)} with one unit at a time per GPU (from the seconds per unit)"]
    for w in sorted(est.per_workers):
        lines.append(f"  projected: {_hours(est.per_workers[w])} with {w} worker(s) per GPU "
                     f"(measured units per hour; --workers {w} --device cuda)")
    if tasks:
        best = min([est.gpu_hours, *est.per_workers.values()])
        lines.append(f"  with --tasks {tasks} (one GPU each, all running at once): about "
                     f"{_hours(best / tasks).replace('GPU-', '')} wall-clock")
    lines.extend(f"  note: {n}" for n in est.notes)
    return "\n".join(lines)


def main_estimate(args: argparse.Namespace, log: Callable[[str], None] = print) -> int:
    """``harness.run --estimate``: print the estimate of the planned run; returns 0."""
    from harness.results import read_run_json, read_unit
    from harness.planner import RunRequest
    from harness.units import parse_shard

    req = RunRequest(method=args.method, config_file=args.config, overrides=args.overrides, data=args.data,
                     annotations=args.annotations, variants=args.variants, videos=args.videos, seeds=args.seeds,
                     shard=parse_shard(args.shard), out=args.out, name=args.name)
    units, _desc = planned_units(req)
    if not units:
        raise EstimateError("the planned run has no units")
    method = units[0].method
    records, pending_videos, done = [], [], 0
    for unit in units:
        rec = read_unit(unit.path(args.out))
        if rec is not None and rec.get("status") == "ok":
            done += 1
        else:
            pending_videos.append(unit.video)
    if args.figures:
        figures = read_figures(args.figures)
        # a run renamed with --name uses the figures of its preset (--method) unless it has its own
        key = method if method in figures["methods"] or not args.method else args.method
        est = estimate_from_figures(figures, key, len(units), done, len(pending_videos),
                                    origin=f"--figures {args.figures}")
        est.method = method
    else:
        from harness.results import iter_unit_files

        records = [r for r in (read_unit(p) for p in iter_unit_files(args.out, method)) if r is not None]
        info = read_run_json(args.out, method) or {}
        est = estimate_from_units(records, pending_videos, method, len(units), done, info.get("device"))
    log(format_estimate(est, getattr(args, "tasks", None)))
    return 0
