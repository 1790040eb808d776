"""Read a harness results tree (the files harness.run and harness.score write) into pandas tables, from files only.

The leaderboard must run on a laptop from results produced elsewhere, so this module reads JSON
files and never imports ``models`` or ``torch`` (only the harness's plain-Python file helpers in
``harness.results``). Layout (under ``--results``)::

    <method>/run.json
    <method>/clean/<video>/seed<seed>.json
    <method>/<strength>/<corruption>/<video>/seed<seed>.json

Values stay fractions in [0, 1] as the official evaluator writes them; only the human-facing
tables and plots show them x100.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

# The harness's file helpers are plain-Python (no torch); reusing them keeps one definition of the layout.
from harness.results import UNIT_SCHEMA, iter_unit_files
#: strength folder names in the order the paper plots them.
STRENGTHS: tuple[str, ...] = ("low", "med", "high")
#: the 14 DAVIS-C corruptions in the official generator's order (spec davis_c.md section 1).
#: Kept here rather than imported from ``davis_c`` so the leaderboard stays free of heavy imports.
CORRUPTIONS: tuple[str, ...] = (
    "gaussian_noise", "contrast", "brightness", "saturate", "glass_blur", "defocus_blur", "pixelate",
    "cartoon", "motion_blur", "crf_compression", "style1", "style2", "style3", "style4",
)

#: the corruptions that need no style-transfer weights (a build without them has exactly these 10).
WEIGHT_FREE_CORRUPTIONS: tuple[str, ...] = tuple(c for c in CORRUPTIONS if not c.startswith("style"))

_SEED_FILE = re.compile(r"^seed(-?\d+)\.json$")

UNIT_COLUMNS = [
    "method", "variant", "strength", "corruption", "video", "seed", "status", "error", "random_init",
    "J", "F", "JF", "n_objects", "n_frames", "ttt_s", "inference_s", "fps", "peak_memory_mb", "path",
]
OBJECT_COLUMNS = [
    "method", "variant", "video", "seed", "object_id", "J", "F", "JF",
    "J_recall", "J_decay", "F_recall", "F_decay",
]


class ResultsError(ValueError):
    """A results tree or one of its files cannot be read; the message names the file."""


@dataclass
class Results:
    """Everything the leaderboard needs from one results tree.

    ``units``: one row per unit file (columns ``UNIT_COLUMNS``); ``objects``: one row per object of
    every ok unit; ``runs``: method -> its ``run.json`` (empty dict when absent); ``problems``:
    human-readable notes on files that could not be used (they are reported, never hidden).
    """

    root: Path
    units: pd.DataFrame
    objects: pd.DataFrame
    runs: dict[str, dict[str, Any]]
    problems: list[str] = field(default_factory=list)

    @property
    def methods(self) -> list[str]:
        return sorted(set(self.runs) | set(self.units["method"]))

    def per_frame(self, method: str, variant: str, video: str, seed: int) -> dict[str, list[list[float]]] | None:
        """The unit's ``per_frame`` dict (J and F per object per frame), read on demand."""
        sel = self.units[(self.units.method == method) & (self.units.variant == variant)
                         & (self.units.video == video) & (self.units.seed == seed)]
        if sel.empty:
            return None
        data = _read_json(Path(sel.iloc[0]["path"]))
        pf = data.get("per_frame")
        return pf if isinstance(pf, dict) and pf.get("J") else None


def parse_variant(variant: str) -> tuple[str | None, str | None]:
    """``"clean"`` -> (None, None); ``"low/contrast"`` -> ("low", "contrast")."""
    if variant == "clean":
        return None, None
    parts = variant.split("/")
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"variant {variant!r} is neither 'clean' nor '<strength>/<corruption>'")
    return parts[0], parts[1]


def variant_sort_key(variant: str) -> tuple[int, int, str]:
    """Clean first, then strengths low -> high, corruptions in the official order."""
    strength, corruption = parse_variant(variant)
    if strength is None:
        return (0, 0, "")
    s = STRENGTHS.index(strength) + 1 if strength in STRENGTHS else len(STRENGTHS) + 1
    c = CORRUPTIONS.index(corruption) if corruption in CORRUPTIONS else len(CORRUPTIONS)
    return (s, c, corruption or "")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, json.JSONDecodeError) as exc:
        raise ResultsError(f"{path}: cannot read JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ResultsError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _num(value: Any) -> float:
    return float("nan") if value is None else float(value)


class PropagationUnit(Exception):
    """A JHMDB / VIP unit (no J&F): tabulated by :mod:`leaderboard.propagation`, skipped here."""


def read_unit(path: Path, method: str, variant: str, video: str, seed: int) -> tuple[dict, list[dict]]:
    """Validate one unit file against its place in the tree; return (unit row, object rows)."""
    data = _read_json(path)
    if data.get("protocol") in ("jhmdb-pck", "vip-miou"):  # pooled PCK / mIoU: leaderboard.propagation
        raise PropagationUnit(str(path))
    if data.get("schema") != UNIT_SCHEMA:
        raise ResultsError(f"{path}: schema is {data.get('schema')!r}, expected {UNIT_SCHEMA!r}")
    for key, expected in (("method", method), ("variant", variant), ("video", video), ("seed", seed)):
        if key in data and data[key] != expected:
            raise ResultsError(f"{path}: field {key!r} is {data[key]!r} but the file's place in the tree says {expected!r}")
    status = data.get("status")
    if status not in ("ok", "failed"):
        raise ResultsError(f"{path}: status must be 'ok' or 'failed', got {status!r}")
    strength, corruption = parse_variant(variant)
    timing = data.get("timing") or {}
    objects = data.get("objects") or []
    row = {
        "method": method, "variant": variant, "strength": strength, "corruption": corruption,
        "video": video, "seed": seed, "status": status, "error": data.get("error"),
        "random_init": bool(data.get("random_init", False)),
        "J": _num(data.get("J")), "F": _num(data.get("F")), "JF": _num(data.get("JF")),
        "n_objects": len(objects), "n_frames": data.get("n_frames"),
        "ttt_s": _num(timing.get("ttt_s")), "inference_s": _num(timing.get("inference_s")),
        "fps": _num(timing.get("fps")), "peak_memory_mb": _num(data.get("peak_memory_mb")),
        "path": str(path),
    }
    obj_rows = []
    if status == "ok" and data.get("scoring") == "server":
        # a private benchmark split (harness.protocols): nothing scored locally, see harness.submission
        row["status"] = "submit"
        return row, obj_rows
    if status == "ok":
        if not objects:
            raise ResultsError(f"{path}: status 'ok' but no objects were scored")
        for obj in objects:
            try:
                obj_rows.append({
                    "method": method, "variant": variant, "video": video, "seed": seed,
                    "object_id": int(obj["id"]), "J": _num(obj["J"]), "F": _num(obj["F"]),
                    "JF": _num(obj["JF"]) if "JF" in obj else (_num(obj["J"]) + _num(obj["F"])) / 2,
                    "J_recall": _num(obj.get("J_recall")), "J_decay": _num(obj.get("J_decay")),
                    "F_recall": _num(obj.get("F_recall")), "F_decay": _num(obj.get("F_decay")),
                })
            except (KeyError, TypeError, ValueError) as exc:
                raise ResultsError(f"{path}: malformed object entry {obj!r} ({exc})") from exc
        bad = _non_finite(row, obj_rows)
        if bad:  # a NaN score must not shrink the average to the other objects: the unit failed
            row.update(status="failed", error=f"non-finite score in an 'ok' unit: {bad}",
                       J=float("nan"), F=float("nan"), JF=float("nan"))
            obj_rows = []
    return row, obj_rows


def _non_finite(row: dict, obj_rows: list[dict]) -> str:
    """'object 2: J=NaN, F=NaN' for the first non-finite score of a unit, '' when every score is finite."""
    for o in obj_rows:
        bad = [f"{k}={o[k]}" for k in ("J", "F", "JF") if not math.isfinite(o[k])]
        if bad:
            return f"object {o['object_id']}: " + ", ".join(bad).replace("nan", "NaN")
    bad = [f"{k}={row[k]}" for k in ("J", "F", "JF") if not math.isfinite(row[k])]
    return ("unit " + ", ".join(bad).replace("nan", "NaN")) if bad else ""


def _unit_location(rel: Path) -> tuple[str, str, int] | None:
    """(variant, video, seed) from a path relative to the method folder, or None if not a unit."""
    m = _SEED_FILE.match(rel.name)
    if not m:
        return None
    parts = rel.parts[:-1]
    if len(parts) == 2 and parts[0] == "clean":
        return "clean", parts[1], int(m.group(1))
    if len(parts) == 3:
        return f"{parts[0]}/{parts[1]}", parts[2], int(m.group(1))
    return None


def load_results(root: str | Path, *, strict: bool = False) -> Results:
    """Read every ``run.json`` and unit file under ``root``.

    A unit file that cannot be used (bad JSON, wrong schema, fields contradicting its path) is
    recorded as a failed unit with the reason, so a partial tree still builds; ``strict=True``
    raises :class:`ResultsError` instead.
    """
    root = Path(root)
    if not root.is_dir():
        raise ResultsError(f"results folder {root} does not exist")
    units: list[dict] = []
    objects: list[dict] = []
    runs: dict[str, dict] = {}
    problems: list[str] = []
    for method_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        method = method_dir.name
        run_path = method_dir / "run.json"
        unit_files = list(iter_unit_files(root, method))
        if not run_path.is_file() and not unit_files:
            continue  # not a method folder (e.g. a leaderboard output placed inside results/)
        if run_path.is_file():
            try:
                runs[method] = _read_json(run_path)
            except ResultsError as exc:
                if strict:
                    raise
                problems.append(str(exc))
                runs[method] = {}
        else:
            problems.append(f"{run_path}: missing (run metadata unknown for method {method!r})")
            runs[method] = {}
        for path in unit_files:
            loc = _unit_location(path.relative_to(method_dir))
            if loc is None:
                msg = (f"{path}: not at <method>/clean/<video>/seed<N>.json or "
                       "<method>/<strength>/<corruption>/<video>/seed<N>.json; ignored")
                if strict:
                    raise ResultsError(msg)
                problems.append(msg)
                continue
            variant, video, seed = loc
            try:
                row, obj_rows = read_unit(path, method, variant, video, seed)
            except PropagationUnit:
                continue
            except (ResultsError, ValueError) as exc:
                if strict:
                    raise ResultsError(str(exc)) from exc
                problems.append(str(exc))
                strength, corruption = (None, None)
                try:
                    strength, corruption = parse_variant(variant)
                except ValueError:
                    pass
                row = {c: float("nan") for c in UNIT_COLUMNS}
                row.update(method=method, variant=variant, strength=strength, corruption=corruption,
                           video=video, seed=seed, status="failed", error=f"unreadable unit file: {exc}",
                           random_init=bool(runs[method].get("random_init", False)), n_objects=0,
                           n_frames=None, path=str(path))
                obj_rows = []
            units.append(row)
            objects.extend(obj_rows)
    unit_df = pd.DataFrame(units, columns=UNIT_COLUMNS)
    unit_df["seed"] = unit_df["seed"].astype("int64")
    obj_df = pd.DataFrame(objects, columns=OBJECT_COLUMNS)
    return Results(root=root, units=unit_df, objects=obj_df, runs=runs, problems=problems)
