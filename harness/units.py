"""Units of work: (method, variant, video, seed), their deterministic order and sharding, and the one
record of a finished unit (``davis-c-unit/1``): its fields, its identity and the only function that writes it.

Everything resumable follows from one rule: a unit is done when its result file exists.  The unit
list depends only on the command line and the data (never on what is already finished), so every
shard of a SLURM array computes the same list and takes a disjoint slice of it.

The unit record
---------------
:func:`new_record` makes a record's fields (``harness.run``, ``harness.score`` and every dataset protocol
start from it; none builds the dict itself) and :func:`write_unit` is the only writer: it checks the record
against its unit (method, variant, video, seed, status, scores), stamps its identity and writes it
atomically.  The identity (:class:`UnitIdentity`) is what the unit was computed on:

* ``data`` / ``data_id``: the frames and annotations (``harness.identity.data_identity``: the store's build
  key and the digests of the variant's frames and of the annotations, or the digests of a folder's files);
* ``annotations_sha256``: the SHA-256 of the decoded annotation label maps (``davis_c.store.masks_digest``,
  the value a store records), the same for every entrance, so the leaderboard can compare units of
  different tools;
* ``predictions_sha256``: for imported masks (``harness.score``), the digest of the PNG files scored;
* ``seed`` and the method's settings (``run.json``, checked by ``harness.results.write_run_json``).

Whether a finished unit is reused is decided in one place, :func:`harness.identity.reuse_decision`.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from common.vocabulary import parse_variant
from harness.results import (UNIT_SCHEMA, RecordError, check_method_name, mask_dir, unit_path, unit_status,
                             write_json_atomic)

__all__ = ["Unit", "make_units", "parse_shard", "shard_units", "pending_units", "UNIT_SCHEMA", "UnitIdentity",
           "RecordError", "new_record", "write_unit", "check_method_name", "unit_id"]


@dataclass(frozen=True, order=False)
class Unit:
    method: str
    variant: str
    video: str
    seed: int

    def path(self, out: str | os.PathLike) -> Path:
        return unit_path(out, self.method, self.variant, self.video, self.seed)

    def mask_dir(self, out: str | os.PathLike) -> Path:
        return mask_dir(out, self.method, self.variant, self.video, self.seed)

    def __str__(self) -> str:
        return f"{self.method} {self.variant} {self.video} seed{self.seed}"


def make_units(method: str, variants: Sequence[str], videos: Sequence[str], seeds: Sequence[int]) -> list[Unit]:
    """The full unit list in a fixed order: variant, then video, then seed."""
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds lists a seed twice: {list(seeds)}")
    return [Unit(method, v, vid, int(s)) for v in variants for vid in videos for s in seeds]


def parse_shard(text: str | None) -> tuple[int, int]:
    """``"i/N"`` with 0 <= i < N -> (i, N); None -> (0, 1)."""
    if text is None:
        return 0, 1
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard expects i/N (e.g. 0/4), got {text!r}") from None
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"--shard {text}: need 0 <= i < N")
    return i, n


def shard_units(units: Sequence[Unit], index: int, count: int) -> list[Unit]:
    """Round-robin slice ``index`` of ``count``: disjoint, covering, and balanced across variants."""
    return list(units[index::count])


def pending_units(units: Iterable[Unit], out: str | os.PathLike) -> tuple[list[Unit], int, int]:
    """Units still to run (missing or failed) and the counts of (ok, failed) ones found."""
    todo, ok, failed = [], 0, 0
    for unit in units:
        status = unit_status(unit.path(out))
        if status == "ok":
            ok += 1
            continue
        failed += status == "failed"
        todo.append(unit)
    return todo, ok, failed


@dataclass(frozen=True)
class UnitIdentity:
    """What a unit was computed on (see the module doc); ``None`` fields are not known for this entrance."""

    data: dict | None = None                 # harness.identity.data_identity(...)
    data_path: str | None = None             # where the data was (informative: a store may move)
    annotations_sha256: str | None = None    # davis_c.store.masks_digest of the decoded annotations
    predictions_sha256: str | None = None    # imported masks: digest of the scored PNG files

    def fields(self) -> dict:
        from harness.identity import data_id

        return {"data": self.data, "data_id": data_id(self.data) if self.data is not None else None,
                "data_path": self.data_path, "annotations_sha256": self.annotations_sha256,
                "predictions_sha256": self.predictions_sha256}


def unit_id(record: dict) -> str:
    """SHA-256 over everything that identifies a unit's number: data, annotations, predictions, seed and
    the unit's place (method, variant, video)."""
    key = {k: record.get(k) for k in ("method", "variant", "video", "seed", "data_id", "annotations_sha256",
                                      "predictions_sha256")}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def new_record(unit: Unit, *, random_init: bool = False, **extra: Any) -> dict:
    """The fields of a unit record before it is scored (status ok, no scores); ``extra`` adds fields."""
    strength, corruption = parse_variant(unit.variant)
    rec = {"schema": UNIT_SCHEMA, "method": unit.method, "variant": unit.variant, "strength": strength,
           "corruption": corruption, "video": unit.video, "seed": int(unit.seed), "status": "ok", "error": None,
           "random_init": bool(random_init), "objects": [], "J": None, "F": None, "JF": None,
           "n_frames": None, "per_frame": None, "timing": None, "peak_memory_mb": None,
           "data": None, "data_id": None, "data_path": None, "annotations_sha256": None,
           "predictions_sha256": None}
    rec.update(extra)
    return rec


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


#: protocols whose unit records carry what a set-level metric pools instead of per-object J&F
#: (``harness.correspondence``): JHMDB's per-joint distances, VIP's confusion histogram
POOLED_PROTOCOLS = ("jhmdb-pck", "vip-miou")


def _check_pooled(unit: Unit, rec: dict) -> None:
    if rec["protocol"] == "jhmdb-pck":
        dist = rec.get("pck_dist")
        if not isinstance(dist, list) or not dist or not all(
                isinstance(d, list) and all(_finite(x) and x >= 0 for x in d) for d in dist):
            raise RecordError(f"unit record of {unit}: status ok without per-joint distances (pck_dist) "
                              "of finite non-negative values")
    else:
        hist = rec.get("hist")
        if (not isinstance(hist, list) or not hist or any(not isinstance(r, list) or len(r) != len(hist) for r in hist)
                or not all(_finite(x) and x >= 0 for r in hist for x in r)):
            raise RecordError(f"unit record of {unit}: status ok without a square confusion histogram (hist) "
                              "of finite non-negative counts")


def write_unit(out: str | os.PathLike, unit: Unit, record: dict, identity: UnitIdentity | None = None) -> Path:
    """Check ``record`` against ``unit``, stamp its identity and write it (atomically) at ``unit.path(out)``.

    The only writer of unit records.  Refused (:class:`RecordError`): a record of another unit, a status other
    than ok/failed, an ok record without a finite J&F and objects (unless scored by a benchmark server), an
    ok record without a data identity, and a method name the results reader would skip."""
    check_method_name(unit.method)
    for key in ("method", "variant", "video", "seed"):
        if record.get(key) != getattr(unit, key):
            raise RecordError(f"unit record of {unit}: field {key!r} is {record.get(key)!r}")
    if record.get("schema") != UNIT_SCHEMA:
        raise RecordError(f"unit record of {unit}: schema {record.get('schema')!r}, expected {UNIT_SCHEMA!r}")
    status = record.get("status")
    if status not in ("ok", "failed"):
        raise RecordError(f"unit record of {unit}: status {status!r}")
    rec = dict(record)
    if identity is not None:
        rec.update(identity.fields())
    if status == "ok":
        if rec.get("protocol") in POOLED_PROTOCOLS:  # JHMDB / VIP: the fields their set-level metric pools
            _check_pooled(unit, rec)
        elif rec.get("scoring") != "server":
            scores = [o.get("JF") for o in rec.get("objects") or []]
            if not scores or not all(_finite(x) for x in scores + [rec.get("J"), rec.get("F"), rec.get("JF")]):
                raise RecordError(f"unit record of {unit}: status ok without a finite score for every object")
        if rec.get("data_id") is None:
            raise RecordError(f"unit record of {unit}: status ok but no data identity (what it was computed on)")
    rec["unit_id"] = unit_id(rec)
    return write_json_atomic(unit.path(out), rec)
