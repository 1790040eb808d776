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
# The benchmark's vocabulary (strengths low/med/high, the 14 corruptions in the official order, variant
# strings) is the ground floor's; these names are re-exported for the leaderboard's readers.
from common.vocabulary import (CORRUPTION_NAMES as CORRUPTIONS, STRENGTHS, WEIGHT_FREE_CORRUPTIONS,  # noqa: F401
                               parse_variant, variant_sort_key)

_SEED_FILE = re.compile(r"^seed(-?\d+)\.json$")

UNIT_COLUMNS = [
    "method", "variant", "strength", "corruption", "video", "seed", "status", "error", "random_init",
    "J", "F", "JF", "n_objects", "n_frames", "ttt_s", "inference_s", "fps", "peak_memory_mb", "path",
    "build_key", "frames_sha256", "annotations_sha256",
]
#: the identity fields compared across a results tree (like with like): a unit that differs is excluded
IDENTITY_COLUMNS = ("build_key", "frames_sha256", "annotations_sha256")
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

    def events(self, method: str, variant: str, video: str, seed: int) -> list[dict[str, Any]] | None:
        """The unit's ``events`` (temporal suite: freeze / burst runs, :mod:`harness.recovery`), read on
        demand; None when the unit has none recorded."""
        sel = self.units[(self.units.method == method) & (self.units.variant == variant)
                         & (self.units.video == video) & (self.units.seed == seed)]
        if sel.empty:
            return None
        ev = _read_json(Path(sel.iloc[0]["path"])).get("events")
        return ev if isinstance(ev, list) else None


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
        "path": str(path), **_identity_fields(data),
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


def _identity_fields(data: dict) -> dict:
    """The parts of a unit's identity (``harness.units``) that must agree across a results tree: the store's
    build key, the digest of the variant's frames and that of the decoded annotations (None where the unit
    does not record it)."""
    ident = data.get("data") if isinstance(data.get("data"), dict) else {}
    def text(v: Any) -> str | None:
        return str(v) if isinstance(v, (str, int)) and str(v) else None
    return {"build_key": text(ident.get("build_key")), "frames_sha256": text(ident.get("frames_sha256")),
            "annotations_sha256": text(data.get("annotations_sha256"))}


def _majority(values: pd.Series) -> str | None:
    """The value more units share than any other; None on a tie (then no side can be trusted)."""
    counts = values.value_counts()
    top = counts[counts == counts.max()].index
    return str(top[0]) if len(top) == 1 else None


def check_same_data(units: pd.DataFrame, objects: pd.DataFrame, problems: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Like with like: a unit computed on other data than the rest of the tree is named in ``problems`` and
    excluded (status ``failed`` with the reason), never averaged in.

    Compared among the ok units that record them: the store build key over the whole tree, and per
    (variant, video) the frames digest and the annotations digest.  The reference is the value most units
    share."""
    if units.empty:
        return units, objects
    units = units.copy()
    bad: dict[int, str] = {}
    ok = units[units.status == "ok"]
    scopes = [("build_key", [ok])]
    groups = [g for _, g in ok.groupby(["variant", "video"], sort=True)]
    scopes += [("frames_sha256", groups), ("annotations_sha256", groups)]
    for col, parts in scopes:
        for g in parts:
            vals = g[col].dropna()
            if vals.nunique() <= 1:
                continue
            ref = _majority(vals)
            what = {"build_key": "store build", "frames_sha256": "frames", "annotations_sha256": "annotations"}[col]
            if ref is None:  # a tie: no side is the tree's data, none is averaged
                kinds = ", ".join(sorted(str(v)[:12] for v in vals.unique()))
                for idx, r in g[g[col].notna()].iterrows():
                    bad.setdefault(idx, f"{r.path}: computed on other data than other units of the tree "
                                        f"({what} {str(r[col])[:12]}; the tree holds {vals.nunique()} different "
                                        f"{what} digests here: {kinds}, equally often); not averaged")
                continue
            holders = g[g[col] == ref]
            example = holders.iloc[0]
            for idx, r in g[g[col].notna() & (g[col] != ref)].iterrows():
                bad.setdefault(idx, f"{r.path}: computed on other data than the rest of the tree ({what} "
                                    f"{str(r[col])[:12]}; {len(holders)} other unit(s), e.g. {example.path}, have "
                                    f"{ref[:12]}); not averaged")
    for idx, msg in bad.items():
        problems.append(msg)
        units.loc[idx, ["status", "error"]] = ["failed", msg]
        units.loc[idx, ["J", "F", "JF"]] = float("nan")
    if bad:
        dropped = units.loc[list(bad), ["method", "variant", "video", "seed"]]
        key = ["method", "variant", "video", "seed"]
        objects = objects.merge(dropped.assign(_drop=True), on=key, how="left")
        objects = objects[objects["_drop"].isna()].drop(columns="_drop").reset_index(drop=True)
    return units, objects


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
    for hidden in sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith(".")):
        if (hidden / "run.json").is_file() or next(iter_unit_files(root, hidden.name), None) is not None:
            problems.append(f"{hidden}: results in a hidden folder are not read (the harness refuses to write "
                            "method names starting with '.'; rename the folder to show them)")
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
    unit_df, obj_df = check_same_data(unit_df, obj_df, problems)
    return Results(root=root, units=unit_df, objects=obj_df, runs=runs, problems=problems)
